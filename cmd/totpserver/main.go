// Command totpserver is totpbox's registration server: the admin console
// where MFA devices are registered, the user portal, the admin JSON API and
// the verify API applications call at sign-in.
//
//	totpserver init --data DIR
//	totpserver serve --data DIR [--listen ADDR] [--config FILE]
//	totpserver admin create --username NAME [--password-stdin]
//	totpserver token create NAME | token list | token revoke NAME
//	totpserver config check FILE
//
// Configuration comes from a YAML file (see configs/totpserver.yaml),
// TOTPSERVER_* environment variables and flags, in rising order.
package main

import (
	"errors"
	"fmt"
	"os"
)

// version is stamped by the build with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := rootCommand().Execute(); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "totpserver:", err)
		os.Exit(1)
	}
}

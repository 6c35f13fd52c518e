// Command totpctl works with TOTP keys from the command line — it prints the
// code of an otpauth:// URI and makes new URIs — and with the running totpd
// over its local socket: status, local accounts, pairing.
//
// Exit status: 0 on success, 2 on bad input (with a one-line error on
// stderr), 1 when the command itself failed.
package main

import (
	"os"

	"github.com/totpbox/totpbox/cmd/totpctl/internal/cli"
)

// version is stamped by the build with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	cli.Version = version
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
)

// exitError asks main to exit with code, having said everything already.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func configCommand() *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Work with config files"}
	cfg.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file: report every unknown key and invalid value at once",
		Long: `Check reads FILE as serve would (defaults, then the file, then TOTPSERVER_*
variables) and reports every problem, one a line: unknown keys and
variables, values that do not parse, values out of range. It prints
"FILE: ok" and exits 0 when there is none, and exits 2 otherwise.

It also warns, without failing, when the master key sits in the data
directory beside the SQLite database, where a copy of the disk holds the
secrets and their key: keep it in the systemd credential master.key
(systemd-creds encrypt; the packaged unit loads
/etc/credstore.encrypted/totpserver-master.key).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			c, problems := serve.Read(path, nil)
			if len(problems) == 0 {
				for _, w := range c.MasterKeyWarnings() {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", path, w)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
				return nil
			}
			for _, p := range problems {
				msg := p.Error()
				msg = strings.TrimPrefix(msg, "config "+path+": ")
				msg = strings.TrimPrefix(msg, "config: ")
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", path, msg)
			}
			return exitError{2}
		},
	})
	return cfg
}

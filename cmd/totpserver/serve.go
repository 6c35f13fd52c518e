package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
)

func serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (on a data directory made by init)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := serve.Assemble(ctx, c, serve.Options{})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().String("listen", "", "address to listen on (overrides the config's listen)")
	return cmd
}

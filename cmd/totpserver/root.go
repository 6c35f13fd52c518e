package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "totpserver",
		Short:         "totpbox registration server: MFA devices console, user portal, admin and verify APIs",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", os.Getenv("TOTPSERVER_CONFIG"), "YAML config file (see configs/totpserver.yaml)")
	root.PersistentFlags().String("data", "", "data directory: SQLite database and master key (overrides the config's data)")
	root.AddCommand(serveCommand(), initCommand(), adminCommand(), tokenCommand(), tokensCommand(), configCommand(), directoryCommand())
	return root
}

// loadConfig reads the config file named by --config, TOTPSERVER_*
// variables, and the --data and --listen flags when set (serve.Load).
func loadConfig(cmd *cobra.Command) (serve.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	return serve.Load(path, func(c *serve.Config) {
		if f := cmd.Flags().Lookup("data"); f != nil && f.Changed {
			c.Data = f.Value.String()
		}
		if f := cmd.Flags().Lookup("listen"); f != nil && f.Changed {
			c.Listen = f.Value.String()
		}
	})
}

// withStore runs f with the configured store, which must exist.
func withStore(cmd *cobra.Command, f func(ctx context.Context, c serve.Config, st store.Store) error) error {
	return runWithStore(cmd, false, f)
}

// runWithStore runs f with the configured store, creating it when create
// is set.
func runWithStore(cmd *cobra.Command, create bool, f func(ctx context.Context, c serve.Config, st store.Store) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	st, err := serve.OpenStore(cmd.Context(), c, create)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(cmd.Context(), c, st)
}

func initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data directory, its master key and database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWithStore(cmd, true, func(ctx context.Context, c serve.Config, st store.Store) error {
				if _, err := c.LoadSealerFor(ctx, st); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Data directory %s is ready (master key from %s).\n", c.Data, c.KeySource())
				return adminHint(ctx, cmd, c, st)
			})
		},
	}
}

// adminHint says how to create the first admin when there is none.
func adminHint(ctx context.Context, cmd *cobra.Command, c serve.Config, st store.Store) error {
	n, err := st.CountAdmins(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "No admin yet. Create one with:\n  totpserver admin create --data %s --username NAME\n", c.Data)
	}
	return nil
}

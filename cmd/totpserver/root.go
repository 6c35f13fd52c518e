package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
	root.AddCommand(serveCommand(), initCommand(), adminCommand(), tokenCommand(), configCommand())
	return root
}

// openStore opens the configured store; callers close it.
func openStore(ctx context.Context, c config) (store.Store, error) {
	st, err := store.Open(ctx, c.Data, c.Database.DSN)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// withStore runs f with the configured store.
func withStore(cmd *cobra.Command, f func(ctx context.Context, c config, st store.Store) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	st, err := openStore(cmd.Context(), c)
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
			return withStore(cmd, func(ctx context.Context, c config, st store.Store) error {
				if _, err := c.loadSealer(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Data directory %s is ready (master key from %s).\n", c.Data, c.masterKey())
				return adminHint(ctx, cmd, c, st)
			})
		},
	}
}

// adminHint says how to create the first admin when there is none.
func adminHint(ctx context.Context, cmd *cobra.Command, c config, st store.Store) error {
	n, err := st.CountAdmins(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "No admin yet. Create one with:\n  totpserver admin create --data %s --username NAME\n", c.Data)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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

// openStore opens the configured store; callers close it. Unless create
// is set (init), a data directory without its SQLite database is refused,
// naming the path: a missing or mistyped --data must not quietly create
// an empty database that no server uses.
func openStore(ctx context.Context, c config, create bool) (store.Store, error) {
	if !create && c.Database.DSN == "" && c.Data != "" {
		db := filepath.Join(c.Data, store.SQLiteFile)
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: check --data (or the config's data), or create it with: totpserver init --data %s", db, c.Data)
		}
	}
	st, err := store.Open(ctx, c.Data, c.Database.DSN)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// withStore runs f with the configured store, which must exist.
func withStore(cmd *cobra.Command, f func(ctx context.Context, c config, st store.Store) error) error {
	return runWithStore(cmd, false, f)
}

// runWithStore runs f with the configured store, creating it when create
// is set.
func runWithStore(cmd *cobra.Command, create bool, f func(ctx context.Context, c config, st store.Store) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	st, err := openStore(cmd.Context(), c, create)
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
			return runWithStore(cmd, true, func(ctx context.Context, c config, st store.Store) error {
				if _, err := c.loadSealerFor(ctx, st); err != nil {
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

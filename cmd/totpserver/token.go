package main

import (
	"github.com/totpbox/totpbox/enroll/server/api"

	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

func tokenCommand() *cobra.Command {
	tok := &cobra.Command{Use: "token", Short: "Manage admin API bearer tokens"}
	var scope string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print it once",
		Long: "Create a token and print it once. --scope api (the default) makes an admin API token (/api/v1);\n" +
			"--scope scim makes a token for SCIM provisioning that reaches only /scim/v2.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := api.TokenScope(scope); err != nil {
				return err
			}
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				v, err := api.CreateScopedToken(ctx, st, args[0], scope)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), v)
				fmt.Fprintln(cmd.ErrOrStderr(), "This is the only time the token is shown; only its hash is stored.")
				return nil
			})
		},
	}
	create.Flags().StringVar(&scope, "scope", "api", "what the token reaches: api (the admin API) or scim (/scim/v2 only)")
	tok.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				ts, err := st.ListTokens(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSCOPE\tCREATED\tLAST USED\tSTATE")
				for _, t := range ts {
					last, state := "never", "active"
					if !t.LastUsed.IsZero() {
						last = t.LastUsed.UTC().Format("2006-01-02 15:04 UTC")
					}
					if t.Revoked {
						state = "revoked"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, api.ScopeName(t), t.Created.UTC().Format("2006-01-02 15:04 UTC"), last, state)
				}
				return w.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token; running servers refuse it within the cache TTL",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				if err := api.RevokeToken(ctx, st, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Token %s revoked.\n", args[0])
				return nil
			})
		},
	})
	return tok
}

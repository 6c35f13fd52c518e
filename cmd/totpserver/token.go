package main

import (
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

func tokenCommand() *cobra.Command {
	tok := &cobra.Command{Use: "token", Short: "Manage admin API bearer tokens"}
	var scope, roleFlag string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print it once",
		Long: "Create a token and print it once. --scope api (the default) makes an admin API token (/api/v1);\n" +
			"--scope scim makes a token for SCIM provisioning that reaches only /scim/v2.\n" +
			"--role (admin API tokens) says what the token may do: admin (the default: everything), helpdesk,\n" +
			"auditor, or verify (only POST /api/v1/verify, for an application that checks codes).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := api.TokenScope(scope)
			if err != nil {
				return err
			}
			role, err := core.ParseRole(roleFlag)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if sc != "" && cmd.Flags().Changed("role") {
				return fmt.Errorf("--role is for admin API tokens; a token of scope %s reaches only /scim/v2", sc)
			}
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				v, err := api.CreateTokenFor(ctx, st, args[0], sc, role)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), v)
				if sc == "" && !cmd.Flags().Changed("role") {
					fmt.Fprintln(cmd.ErrOrStderr(), "Warning: this admin token can do everything; for an application that only checks codes, create one with --role verify.")
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "This is the only time the token is shown; only its hash is stored.")
				return nil
			})
		},
	}
	create.Flags().StringVar(&scope, "scope", "api", "what the token reaches: api (the admin API) or scim (/scim/v2 only)")
	create.Flags().StringVar(&roleFlag, "role", string(core.RoleAdmin), "what an admin API token may do: admin, helpdesk, auditor or verify (only POST /api/v1/verify)")
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
				fmt.Fprintln(w, "NAME\tSCOPE\tROLE\tCREATED\tLAST USED\tSTATE")
				for _, t := range ts {
					last, state := "never", "active"
					if !t.LastUsed.IsZero() {
						last = t.LastUsed.UTC().Format("2006-01-02 15:04 UTC")
					}
					if t.Revoked {
						state = "revoked"
					}
					role := t.Role
					switch {
					case t.Scope != "":
						role = "-" // a role counts on the admin API only
					case role == "":
						role = string(core.RoleAdmin)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, api.ScopeName(t), role, t.Created.UTC().Format("2006-01-02 15:04 UTC"), last, state)
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

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/serve"
)

func directoryCommand() *cobra.Command {
	dir := &cobra.Command{Use: "directory", Short: "Users from the LDAP/AD directory (directory.ldap)"}
	dir.AddCommand(&cobra.Command{
		Use:   "sync",
		Short: "Sync the directory's users now (also while serve runs on the same database)",
		Long: "sync reads directory.ldap's users once and applies them: users who appeared are created,\n" +
			"changed ones updated, those who left the group or are disabled in the directory are\n" +
			"disabled (their MFA devices kept), those who came back are enabled again. It prints\n" +
			"created N, updated N, disabled N, re-enabled N, unchanged N, and the entries skipped.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			y, closeStore, err := serve.DirectorySync(cmd.Context(), c, c.Logger())
			if err != nil {
				return err
			}
			defer closeStore()
			r, err := y.Sync(cmd.Context())
			for _, s := range r.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s\n", s)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), r.String())
			return nil
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "Bind to the directory, count its users and say what is wrong, one line each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if !c.Directory.LDAP.Enabled() {
				return fmt.Errorf("directory.ldap.url is not set: no directory is configured")
			}
			l, err := directory.NewLDAP(c.Directory.LDAP)
			if err != nil {
				return err
			}
			users, err := l.Users()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: bound, %d users\n", l, len(users))
			problems := 0
			admins, disabled := 0, 0
			for _, u := range users {
				if _, err := core.CleanUsername(u.Username); err != nil {
					fmt.Fprintf(out, "%s: skipped: %v\n", u.DN, err)
					problems++
				}
				if u.Admin {
					admins++
				}
				if u.Disabled {
					disabled++
				}
			}
			fmt.Fprintf(out, "%d admins, %d disabled in the directory\n", admins, disabled)
			if len(users) == 0 {
				fmt.Fprintln(out, "no users: check base_dn, user_filter and member_of_group")
				problems++
			}
			if problems > 0 {
				return fmt.Errorf("%d problems", problems)
			}
			return nil
		},
	})
	return dir
}

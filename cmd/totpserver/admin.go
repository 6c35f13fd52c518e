package main

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

func adminCommand() *cobra.Command {
	admin := &cobra.Command{Use: "admin", Short: "Manage admins"}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin; the password is read from a prompt, or from stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			username, _ := cmd.Flags().GetString("username")
			if username == "" {
				return errors.New("give --username NAME")
			}
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				pw, err := readPassword(cmd)
				if err != nil {
					return err
				}
				u, err := core.CreateAdmin(ctx, st, username, pw)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Admin %s created. Sign in at the console with this username.\n", u.Username)
				return nil
			})
		},
	}
	create.Flags().String("username", "", "the admin's username")
	admin.AddCommand(create)
	return admin
}

// readPassword prompts twice without echo on a terminal; otherwise it
// reads the first line of stdin.
func readPassword(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		p1, err := readNoEcho(f)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Password again: ")
		p2, err := readNoEcho(f)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the passwords differ")
		}
		return p1, nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

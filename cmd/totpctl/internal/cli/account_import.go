package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/enroll/seedfile"
)

// newAccountImportCmd builds "account import": accounts from another
// authenticator's export into the appliance's vault, as local accounts.
func newAccountImportCmd(e *env, client func() (*localapi.Client, error)) *cobra.Command {
	var migration string
	cmd := &cobra.Command{
		Use:   "import --otpauth-migration URI",
		Short: "Add the TOTP accounts of a Google Authenticator export (otpauth-migration URI)",
		Long: "import reads the otpauth-migration://offline?data=… URI that Google Authenticator's\n" +
			"\"Transfer accounts\" QR code holds (decode the picture with any QR reader, or give - to\n" +
			"read it from stdin) and adds its TOTP accounts as local accounts. HOTP accounts are\n" +
			"refused with a line each: the appliance shows time-based codes only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if migration == "" {
				return errors.New("give the export with --otpauth-migration URI (or - for stdin)")
			}
			uri, err := readValue(e, "otpauth-migration", migration)
			if err != nil {
				return err
			}
			tokens, err := seedfile.ReadMigration(uri)
			if err != nil {
				return fmt.Errorf("--otpauth-migration: %v", err)
			}
			added, refused := 0, 0
			for _, t := range tokens {
				name := t.Key.Account
				if t.Key.Issuer != "" {
					name = t.Key.Issuer + ": " + name
				}
				if t.Kind == seedfile.HOTP {
					refused++
					if _, err := fmt.Fprintf(e.stderr, "totpctl: account %s (%s) not imported: HOTP (counter-based) accounts are not supported\n", t.Serial, name); err != nil {
						return failure(err)
					}
					continue
				}
				var a localapi.Account
				if err := call(client, "POST", "/v1/accounts", localapi.AddRequest{URI: t.Key.URI()}, &a); err != nil {
					return fmt.Errorf("account %s (%s): %w (%d added before it)", t.Serial, name, err, added)
				}
				added++
				if err := println(e.stdout, fmt.Sprintf("added %s %s", a.ID, a.Name)); err != nil {
					return err
				}
			}
			return println(e.stdout, fmt.Sprintf("imported %d of %d accounts (%d HOTP not imported)", added, len(tokens), refused))
		},
	}
	cmd.Flags().StringVar(&migration, "otpauth-migration", "", "Google Authenticator export URI (otpauth-migration://offline?data=…), or - to read it from stdin")
	return cmd
}

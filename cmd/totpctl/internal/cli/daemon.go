package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // QR pictures may be photos
	_ "image/png"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/device/localapi"
)

// DefaultSocket is where totpd's local API listens unless configured
// otherwise; TOTPCTL_SOCKET or --socket override it.
const DefaultSocket = "/var/lib/totpbox/totpd.sock"

// daemonFlags adds --socket and --daemon-user and returns a function
// giving the client. The client talks only to a socket served by root,
// the calling user or the daemon's user (SO_PEERCRED), so a local user who
// bound the socket's path first is sent nothing.
func daemonFlags(cmd *cobra.Command) func() (*localapi.Client, error) {
	def := DefaultSocket
	if v := os.Getenv("TOTPCTL_SOCKET"); v != "" {
		def = v
	}
	sock := cmd.PersistentFlags().String("socket", def, "totpd's local API socket (env TOTPCTL_SOCKET)")
	user := cmd.PersistentFlags().String("daemon-user", os.Getenv("TOTPCTL_DAEMON_USER"),
		"the user totpd runs as, whom (besides root and you) totpctl trusts to serve the socket; default "+localapi.DefaultDaemonUser+" (env TOTPCTL_DAEMON_USER)")
	return func() (*localapi.Client, error) {
		uids, err := localapi.TrustedUIDs(*user)
		if err != nil {
			return nil, fmt.Errorf("--daemon-user: %w", err)
		}
		return localapi.NewClientTrusting(*sock, uids), nil
	}
}

// call runs one API request, sorting its errors into bad input (the
// daemon refused what was asked) and failure (the daemon is unreachable,
// or the socket is served by a user totpctl does not trust).
func call(client func() (*localapi.Client, error), method, path string, in, out any) error {
	c, err := client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Do(ctx, method, path, in, out)
	if pe := (*localapi.PeerError)(nil); errors.As(err, &pe) && pe.UID >= 0 {
		return failure(fmt.Errorf("%w (if uid %d is totpd's own user, name it with --daemon-user)", err, pe.UID))
	}
	var se *localapi.StatusError
	if errors.As(err, &se) && se.Code < 500 {
		return err
	}
	return failure(err)
}

func newStatusCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the appliance's clock, server link and accounts",
		Args:  cobra.NoArgs,
	}
	client := daemonFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var st map[string]any
		if err := call(client, "GET", "/v1/status", nil, &st); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e, st)
		}
		return printStatus(e, st)
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func writeJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return failure(err)
	}
	return println(e.stdout, string(b))
}

// printStatus prints the status's well-known fields as "key: value" lines.
func printStatus(e *env, st map[string]any) error {
	var b strings.Builder
	line := func(k string, v any) {
		if v != nil && v != "" {
			fmt.Fprintf(&b, "%-10s %v\n", k+":", v)
		}
	}
	if c, ok := st["clock"].(map[string]any); ok {
		line("time", c["time"])
		line("clock", fmt.Sprintf("%v, bound %v s, frequency %v ppm", c["state"], c["bound_s"], c["frequency_ppm"]))
		line("reason", c["reason"])
		if servers, ok := c["servers"].([]any); ok {
			for _, s := range servers {
				if m, ok := s.(map[string]any); ok {
					role := "candidate"
					switch {
					case m["selected"] == true:
						role = "selected"
					case m["falseticker"] == true:
						role = "FALSETICKER"
					case m["set_aside"] == true:
						role = "set aside"
					}
					line("server", fmt.Sprintf("%v offset %v s delay %v s reach %03o %s", m["address"], m["offset_s"], m["delay_s"], toInt(m["reach"]), role))
				}
			}
		}
	}
	if l, ok := st["link"].(map[string]any); ok {
		line("server", fmt.Sprintf("%v (%v)", l["server"], l["state"]))
	}
	if a, ok := st["appliance"].(map[string]any); ok {
		line("screen", a["view"])
		line("accounts", a["account_count"])
	}
	printSecrets(line, st["secrets"])
	if b.Len() == 0 {
		return writeJSON(e, st)
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	if err != nil {
		return failure(err)
	}
	return nil
}

func toInt(v any) int {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return 0
}

func newAccountCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Add, list, rename and remove the appliance's local accounts",
		Long: "account manages accounts for servers that are not totpbox (any site that shows an\n" +
			"otpauth QR code or secret). They stay on the appliance: the registration server\n" +
			"never sees or removes them, and its accounts can't be changed from here.",
	}
	client := daemonFlags(cmd)
	cmd.AddCommand(newAccountAddCmd(e, client), newAccountImportCmd(e, client), newAccountListCmd(e, client), newAccountRenameCmd(e, client), newAccountRemoveCmd(e, client))
	return cmd
}

// accountAddFlags are account add's flags: one of a URI argument, --secret
// (with its parameters) or --qr.
type accountAddFlags struct {
	secret, issuer, name, label, algorithm, qr string
	digits, period                             int
}

// request builds the local API's add request from the argument and flags,
// reading the URI or secret from stdin when given as -.
func (f *accountAddFlags) request(e *env, args []string) (localapi.AddRequest, error) {
	var req localapi.AddRequest
	sources := 0
	if len(args) == 1 {
		sources++
		u, err := readValue(e, "uri", args[0])
		if err != nil {
			return req, err
		}
		req.URI = u
	}
	if f.qr != "" {
		sources++
		u, err := decodeQR(f.qr)
		if err != nil {
			return req, err
		}
		req.URI = u
	}
	if f.secret != "" {
		sources++
		s, err := readValue(e, "secret", f.secret)
		if err != nil {
			return req, err
		}
		req.Secret, req.Issuer, req.Name, req.Algorithm, req.Digits, req.Period = s, f.issuer, f.name, f.algorithm, f.digits, f.period
	}
	if sources != 1 {
		return req, errors.New("give exactly one of a URI, --secret or --qr")
	}
	req.Label = f.label
	return req, nil
}

func newAccountAddCmd(e *env, client func() (*localapi.Client, error)) *cobra.Command {
	var flags accountAddFlags
	add := &cobra.Command{
		Use:   "add [otpauth://...] | --secret S --issuer I --name N | --qr IMAGE.png",
		Short: "Add an account from a URI, a secret or a QR code picture",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := flags.request(e, args)
			if err != nil {
				return err
			}
			var a localapi.Account
			if err := call(client, "POST", "/v1/accounts", req, &a); err != nil {
				return err
			}
			return println(e.stdout, fmt.Sprintf("added %s %s", a.ID, a.Name))
		},
	}
	f := add.Flags()
	f.StringVar(&flags.secret, "secret", "", "base32 secret, or - to read it from stdin")
	f.StringVar(&flags.issuer, "issuer", "", "issuer, with --secret")
	f.StringVar(&flags.name, "name", "", "account name, with --secret")
	f.StringVar(&flags.algorithm, "algorithm", "", "SHA1, SHA256 or SHA512, with --secret")
	f.IntVar(&flags.digits, "digits", 0, "6 or 8, with --secret")
	f.IntVar(&flags.period, "period", 0, "seconds per code, 15 to 120, with --secret")
	f.StringVar(&flags.qr, "qr", "", "PNG or JPEG picture of an otpauth QR code")
	f.StringVar(&flags.label, "label", "", "friendly name shown on the appliance")
	return add
}

func newAccountListCmd(e *env, client func() (*localapi.Client, error)) *cobra.Command {
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the appliance's accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var accts []localapi.Account
			if err := call(client, "GET", "/v1/accounts", nil, &accts); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e, accts)
			}
			return writeAccountTable(e, accts)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return list
}

// writeAccountTable prints accounts as a table, each marked local or
// server by where it came from.
func writeAccountTable(e *env, accts []localapi.Account) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tSOURCE")
	for _, a := range accts {
		src := "local"
		if a.Source != "local" {
			src = "server"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, a.Name, a.State, src)
	}
	if err := tw.Flush(); err != nil {
		return failure(err)
	}
	return nil
}

func newAccountRenameCmd(e *env, client func() (*localapi.Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "rename ID LABEL",
		Short: "Rename a local account",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a localapi.Account
			if err := call(client, "PATCH", "/v1/accounts/"+args[0], localapi.RenameRequest{Label: args[1]}, &a); err != nil {
				return err
			}
			return println(e.stdout, fmt.Sprintf("renamed %s to %s", a.ID, a.Name))
		},
	}
}

func newAccountRemoveCmd(e *env, client func() (*localapi.Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a local account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := call(client, "DELETE", "/v1/accounts/"+args[0], nil, nil); err != nil {
				return err
			}
			return println(e.stdout, "removed "+args[0])
		},
	}
}

func newPairCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pair",
		Short: "Show the appliance's pairing with its registration server",
		Args:  cobra.NoArgs,
	}
	client := daemonFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var st map[string]any
		if err := call(client, "GET", "/v1/pairing", nil, &st); err != nil {
			return err
		}
		return writeJSON(e, st)
	}
	return cmd
}

// decodeQR reads an otpauth URI from a picture of a QR code.
func decodeQR(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--qr: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return "", fmt.Errorf("--qr %s: not a PNG or JPEG picture", path)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("--qr %s: %v", path, err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", fmt.Errorf("--qr %s: no QR code found", path)
	}
	s := res.GetText()
	if !strings.HasPrefix(strings.ToLower(s), "otpauth://") {
		return "", fmt.Errorf("--qr %s: the QR code holds no otpauth URI", path)
	}
	return s, nil
}

// printSecrets prints the secrets mode and which accounts the TPM holds.
func printSecrets(line func(string, any), v any) {
	s, ok := v.(map[string]any)
	if !ok {
		return
	}
	if w, ok := s["warning"].(string); ok {
		line("secrets", strings.TrimPrefix(w, "secrets: "))
	} else {
		line("secrets", fmt.Sprintf("%v (%v): the vault key is sealed to it", s["mode"], s["tpm"]))
	}
	if s["mode"] == "software" {
		line("tpm", s["tpm"])
	}
	names := func(v any) string {
		l, _ := v.([]any)
		out := make([]string, 0, len(l))
		for _, n := range l {
			out = append(out, fmt.Sprint(n))
		}
		return strings.Join(out, ", ")
	}
	line("in TPM", names(s["in_tpm"]))
	line("not in TPM", names(s["not_in_tpm"]))
}

func newSecretsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Where the appliance keeps its secrets",
	}
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Move a software-mode appliance to the TPM: seal the vault key and the identity to it, and move active accounts' secrets into it",
		Args:  cobra.NoArgs,
	}
	client := daemonFlags(migrate)
	migrate.RunE = func(cmd *cobra.Command, _ []string) error {
		var st map[string]any
		if err := call(client, "POST", "/v1/secrets/migrate", nil, &st); err != nil {
			return err
		}
		var b strings.Builder
		printSecrets(func(k string, v any) {
			if v != nil && v != "" {
				fmt.Fprintf(&b, "%-10s %v\n", k+":", v)
			}
		}, st)
		_, err := fmt.Fprint(e.stdout, b.String())
		return err
	}
	cmd.AddCommand(migrate)
	return cmd
}

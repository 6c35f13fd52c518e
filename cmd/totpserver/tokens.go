package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

func tokensCommand() *cobra.Command {
	tokens := &cobra.Command{Use: "tokens", Short: "Import and export hardware tokens' seed files (PSKC, OATH CSV)"}
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import hardware tokens from a PSKC file or an OATH CSV file, all or none",
		Long: `Import reads FILE, a PSKC file (RFC 6030: plain, encrypted with a
pre-shared key given by --key-file, or with a password given by
--password-file) or an OATH CSV file (Entra ID's columns: upn, serial
number, secret key, time interval, manufacturer, model), and stores its
tokens with their secrets sealed by the master key. Either every token is
imported or, on the first problem, none; the error names the token or
line. FILE itself is never kept. The tokens are then assigned to users on
the console's Hardware tokens page or with the API.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := importKeys(cmd)
			if err != nil {
				return err
			}
			tokens, err := readSeedFile(args[0], keys)
			if err != nil {
				return err
			}
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				sealer, err := c.LoadSealerFor(ctx, st)
				if err != nil {
					return err
				}
				n, err := core.ImportHardwareTokens(ctx, st, sealer, tokens, "cli", time.Now())
				if err != nil {
					return fmt.Errorf("%s: nothing imported: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Imported %d hardware tokens from %s.\n", n, args[0])
				return nil
			})
		},
	}
	imp.Flags().String("password-file", "", "file whose first line is the password of an encrypted PSKC file")
	imp.Flags().String("key-file", "", "file holding the pre-shared key of an encrypted PSKC file (16, 24 or 32 bytes, raw or hex)")
	imp.MarkFlagsMutuallyExclusive("password-file", "key-file")

	exp := &cobra.Command{
		Use:   "export",
		Short: "Write every imported hardware token to standard output as a password-protected PSKC file",
		Long: `Export writes the imported hardware tokens, with their secrets, as a PSKC
file (RFC 6030 §6.2: PBKDF2, AES-128-CBC and HMAC-SHA1) encrypted with the
password in --password-file, to standard output, for a migration to
another system. It is refused unless allow_export is true in the config
or --allow-export is given; every token exported is audited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f, _ := cmd.Flags().GetString("format"); f != "pskc" {
				return fmt.Errorf("--format must be pskc, not %q", f)
			}
			pwFile, _ := cmd.Flags().GetString("password-file")
			if pwFile == "" {
				return errors.New("give --password-file FILE: the export is encrypted with its password")
			}
			pw, err := readPasswordFile(pwFile)
			if err != nil {
				return err
			}
			return withStore(cmd, func(ctx context.Context, c serve.Config, st store.Store) error {
				if allow, _ := cmd.Flags().GetBool("allow-export"); !allow && !c.AllowExport {
					return errors.New("export refused: secrets leave the server only with allow_export: true in the config or --allow-export")
				}
				sealer, err := c.LoadSealerFor(ctx, st)
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				n, err := core.ExportHardwareTokens(ctx, st, sealer, &buf, pw, seedfile.WriteOptions{}, "cli", time.Now())
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d hardware tokens.\n", n)
				return nil
			})
		},
	}
	exp.Flags().String("format", "pskc", "file format: pskc")
	exp.Flags().String("password-file", "", "file whose first line is the password the export is encrypted with")
	exp.Flags().Bool("allow-export", false, "allow this export although the config's allow_export is false")
	tokens.AddCommand(imp, exp)
	return tokens
}

// importKeys reads the password or pre-shared key named by the flags.
func importKeys(cmd *cobra.Command) (seedfile.Keys, error) {
	var keys seedfile.Keys
	if f, _ := cmd.Flags().GetString("password-file"); f != "" {
		pw, err := readPasswordFile(f)
		if err != nil {
			return keys, err
		}
		keys.Password = pw
	}
	if f, _ := cmd.Flags().GetString("key-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return keys, fmt.Errorf("--key-file: %v", err)
		}
		keys.PSK, err = parsePSK(b)
		if err != nil {
			return keys, fmt.Errorf("--key-file %s: %v", f, err)
		}
	}
	return keys, nil
}

// parsePSK reads a pre-shared AES key: 16, 24 or 32 raw bytes, or their
// hex digits (python-pskc's csv2pskc takes either).
func parsePSK(b []byte) ([]byte, error) {
	if t := strings.TrimSpace(string(b)); len(t) == 32 || len(t) == 48 || len(t) == 64 {
		if k, err := hex.DecodeString(t); err == nil {
			return k, nil
		}
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("the key must be 16, 24 or 32 bytes (or as many in hex), not %d bytes", len(b))
}

// readPasswordFile returns the first line of file, without its line end.
func readPasswordFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--password-file: %v", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("--password-file %s: %v", file, err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return nil, fmt.Errorf("--password-file %s: the first line is empty", file)
	}
	return line, nil
}

// readSeedFile reads a PSKC file (XML) or an OATH CSV file, telling them
// apart by the first character that is not a byte order mark or space.
func readSeedFile(path string, keys seedfile.Keys) ([]seedfile.Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	head := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	var tokens []seedfile.Token
	if bytes.HasPrefix(head, []byte("<")) {
		tokens, err = seedfile.ReadPSKC(bytes.NewReader(b), keys)
	} else {
		if keys.Password != nil || keys.PSK != nil {
			return nil, fmt.Errorf("%s: an OATH CSV file is not encrypted; --password-file and --key-file are for PSKC", path)
		}
		tokens, err = seedfile.ReadOATHCSV(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: nothing imported: %w", path, err)
	}
	return tokens, nil
}

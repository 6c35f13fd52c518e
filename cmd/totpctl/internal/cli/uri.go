package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/enroll"
)

func newURICmd(e *env) *cobra.Command {
	var issuer, account, secret, algorithm, digits, period string
	cmd := &cobra.Command{
		Use:   "uri --issuer I --account A [--secret S] [--algorithm SHA1|SHA256|SHA512] [--digits 6|8] [--period N]",
		Short: "Print a normalised otpauth:// URI",
		Long: "uri prints an otpauth://totp/ URI for the account, with parameters equal to\n" +
			"their defaults left out. Without --secret a new random 160-bit secret is made.\n" +
			"--secret accepts base32 as people paste it (spaces, dashes, lower case, no\n" +
			"padding); --secret - reads it from stdin.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			key, err := keyFromFlags(e, issuer, account, secret, algorithm, digits, period)
			if err != nil {
				return err
			}
			return println(e.stdout, key.URI())
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer", "", "who issued the key, e.g. Example Corp")
	f.StringVar(&account, "account", "", "the account name, e.g. alice@example.com")
	f.StringVar(&secret, "secret", "", "base32 secret, or - to read it from stdin (default: a new random secret)")
	f.StringVar(&algorithm, "algorithm", "SHA1", "HMAC algorithm: SHA1, SHA256 or SHA512")
	f.StringVar(&digits, "digits", "6", "code length: 6 or 8")
	f.StringVar(&period, "period", "30", "time step in seconds, 15 to 120")
	cmd.MarkFlagRequired("issuer")
	cmd.MarkFlagRequired("account")
	return cmd
}

func keyFromFlags(e *env, issuer, account, secret, algorithm, digits, period string) (enroll.Key, error) {
	issuer, account = strings.TrimSpace(issuer), strings.TrimSpace(account)
	switch {
	case issuer == "":
		return enroll.Key{}, errors.New("--issuer is empty")
	case strings.Contains(issuer, ":"):
		return enroll.Key{}, errors.New("--issuer must not contain a colon")
	case account == "":
		return enroll.Key{}, errors.New("--account is empty")
	}
	alg, err := enroll.ParseAlgorithm(strings.TrimSpace(algorithm))
	if err != nil {
		return enroll.Key{}, fmt.Errorf("--algorithm: %w", err)
	}
	d, err := strconv.Atoi(strings.TrimSpace(digits))
	if err != nil || (d != 6 && d != 8) {
		return enroll.Key{}, fmt.Errorf("--digits must be 6 or 8, not %q", digits)
	}
	p, err := parsePeriod(period)
	if err != nil {
		return enroll.Key{}, err
	}
	var key enroll.Key
	if secret == "" {
		if key, err = enroll.NewKey(issuer, account); err != nil {
			return enroll.Key{}, failure(err)
		}
	} else {
		s, err := readValue(e, "secret", secret)
		if err != nil {
			return enroll.Key{}, err
		}
		b, err := enroll.ParseSecret(s)
		if err != nil {
			return enroll.Key{}, fmt.Errorf("--secret: %w", err)
		}
		key = enroll.Key{Issuer: issuer, Account: account, Secret: b}
	}
	key.Algorithm, key.Digits, key.Period = alg, d, p
	if err := key.Validate(); err != nil {
		return enroll.Key{}, err
	}
	return key, nil
}

// parsePeriod accepts whole seconds ("30") or a Go duration ("30s", "1m").
func parsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var p time.Duration
	if n, err := strconv.Atoi(s); err == nil {
		p = time.Duration(n) * time.Second
	} else if p, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("--period must be whole seconds from 15 to 120, not %q", s)
	}
	if p < enroll.MinPeriod || p > enroll.MaxPeriod || p%time.Second != 0 {
		return 0, fmt.Errorf("--period must be whole seconds from 15 to 120, not %q", s)
	}
	return p, nil
}

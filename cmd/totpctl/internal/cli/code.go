package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/enroll"
)

func newCodeCmd(e *env) *cobra.Command {
	var uri, at string
	cmd := &cobra.Command{
		Use:   "code --uri URI [--at TIME]",
		Short: "Print the code of an otpauth:// key",
		Long: "code prints the one-time code of the key in URI at TIME, one line, nothing else.\n\n" +
			"TIME is RFC 3339 (2026-03-01T12:00:00Z) or unix seconds; the default is now.\n" +
			"--uri - reads the URI from stdin, keeping the secret out of the process list.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := readValue(e, "uri", uri)
			if err != nil {
				return err
			}
			key, err := enroll.ParseURI(s)
			if err != nil {
				return err
			}
			t := e.now()
			if cmd.Flags().Changed("at") {
				if t, err = parseTime(at); err != nil {
					return err
				}
			}
			return println(e.stdout, enroll.Code(key, t))
		},
	}
	cmd.Flags().StringVar(&uri, "uri", "", "otpauth://totp/ URI of the key, or - to read it from stdin")
	cmd.Flags().StringVar(&at, "at", "", "time of the code: RFC 3339 or unix seconds (default now)")
	cmd.MarkFlagRequired("uri")
	return cmd
}

// parseTime parses an RFC 3339 time or a count of unix seconds. Times
// before 1970 have no TOTP code and are refused.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1<<40 { // past year 36000: a millisecond count, most likely
			return time.Time{}, fmt.Errorf("--at %q is too far in the future for unix seconds", s)
		}
		t = time.Unix(n, 0)
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, fmt.Errorf("--at %q is neither RFC 3339 (2026-03-01T12:00:00Z) nor unix seconds", s)
	}
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("--at %q is before 1970", s)
	}
	return t, nil
}

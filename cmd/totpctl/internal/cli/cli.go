// Package cli is totpctl's command tree. Each command lives in its own file
// and is added to the root in newRoot; main only calls Run.
//
// Errors: every error a command returns is bad input (exit status 2)
// unless it is wrapped with failure (exit status 1), which is for things
// that go wrong after the input was accepted, such as output that cannot
// be written or, later, a daemon that cannot be reached. Errors are
// printed as one line, "totpctl: ...", and never with the usage text.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Version is printed by --version; main sets it from its build stamp.
var Version = "dev"

// Exit statuses of Run.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitBadInput = 2
)

// env is what commands read and write: the streams and the clock.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// NewRoot returns totpctl's root command writing to stdout and stderr and
// reading "-" arguments from os.Stdin. Callers execute it with Execute;
// Run also maps its errors to exit statuses.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	return newRoot(&env{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now})
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "totpctl",
		Short: "Work with TOTP keys and totpbox appliances",
		Long: "totpctl prints one-time codes for otpauth:// keys, makes new keys, and talks to\n" +
			"the running totpd over its local socket (status, account, pair).\n\n" +
			"Exit status: 0 on success, 2 on bad input, 1 when a command fails.",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand, show the help rather than fail.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newCodeCmd(e),
		newURICmd(e),
		newStatusCmd(e),
		newSecretsCmd(e),
		newAccountCmd(e),
		newPairCmd(e),
	)
	return root
}

// Run executes totpctl with args and returns its exit status, having
// printed any error as one line on stderr.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now})
	return execute(root, args, stderr)
}

func execute(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "totpctl: %s\n", oneLine(err.Error()))
	var f *failureError
	if errors.As(err, &f) {
		return ExitFailure
	}
	return ExitBadInput
}

// oneLine joins the lines of a multi-line message, as cobra's
// "Did you mean this?" suggestions are.
func oneLine(s string) string {
	var parts []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// failureError marks an error that is not the user's input's fault.
type failureError struct{ err error }

func (f *failureError) Error() string { return f.err.Error() }
func (f *failureError) Unwrap() error { return f.err }

// failure marks err as a failure (exit status 1) rather than bad input.
func failure(err error) error {
	if err == nil {
		return nil
	}
	return &failureError{err}
}

// println writes one line to w, reporting a write error as a failure.
func println(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s+"\n"); err != nil {
		return failure(fmt.Errorf("write output: %w", err))
	}
	return nil
}

// readValue returns v, or one line read from stdin when v is "-", so that
// secrets need not appear in the process list or shell history.
func readValue(e *env, flag, v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
	if err != nil {
		return "", failure(fmt.Errorf("--%s: read stdin: %w", flag, err))
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("--%s: nothing on stdin", flag)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("--%s: stdin holds more than one line", flag)
	}
	return s, nil
}

// Command totpsim runs totpbox's simulator: appliances on emulated hardware
// with a page on 127.0.0.1 to watch and press them.
//
//	totpsim                      run with embedded defaults; prints its URL
//	totpsim serve --listen ADDR --data DIR --appliances N
//	totpsim --server URL --appliances N   N appliances against a server elsewhere
//	totpsim snapshot --panel ssd1306-128x64 --view code --uri URI --out F.png
//	totpsim clockbench --scenario lan
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/device/daemon"
	"github.com/totpbox/totpbox/sim/clockbench"
	"github.com/totpbox/totpbox/sim/system"
)

// version is stamped by the build.
var version = "dev"

func main() {
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "totpsim:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks bad input: exit status 2.
type usageError struct{ error }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "totpsim",
		Short:         "Run totpbox appliances on emulated hardware",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	load := serveFlags(root)
	root.RunE = func(cmd *cobra.Command, _ []string) error { return serveWith(cmd, load, stdout) }
	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the simulator (the default command)",
		Args:  cobra.NoArgs,
	}
	loadServe := serveFlags(serveCmd)
	serveCmd.RunE = func(cmd *cobra.Command, _ []string) error { return serveWith(cmd, loadServe, stdout) }
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Report every problem in a configuration file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := defaultConfig()
			if err := errors.Join(configs.Load(args[0], "TOTPSIM", &c), c.validate()); err != nil {
				return usageError{err}
			}
			fmt.Fprintf(stdout, "%s: ok\n", args[0])
			return nil
		},
	}
	cfgCmd := &cobra.Command{Use: "config", Short: "Configuration commands"}
	cfgCmd.AddCommand(check)
	bench := clockbench.Command()
	runBench := bench.RunE
	bench.RunE = func(cmd *cobra.Command, args []string) error {
		// The bench computes in virtual time: what fails is its input.
		if err := runBench(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
	root.AddCommand(serveCmd, snapshotCmd(stdout), bench, cfgCmd)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return root
}

func serveWith(cmd *cobra.Command, load func() (simConfig, error), stdout io.Writer) error {
	c, err := load()
	if err != nil {
		return usageError{err}
	}
	return serve(cmd.Context(), c.system(), stdout)
}

func serve(ctx context.Context, sc system.Config, stdout io.Writer) error {
	// Every way out runs the simulator's shutdown, which stops the
	// appliances' swtpm processes and removes their sockets: a closed
	// terminal (SIGHUP) too.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	sc.Version = version
	if sc.NoServer {
		// Appliances alone: tuned as totpd is. With the registration
		// server in the process, Go's default suits the server.
		daemon.TuneGC(ctx)
	}
	s, err := system.New(sc)
	if err != nil {
		return usageError{nameFlag(err)}
	}
	s.SetReady(func(url string) {
		fmt.Fprintf(stdout, "totpsim: simulator at %s\n", url)
		if c := s.ConsoleURL(); c != "" {
			fmt.Fprintf(stdout, "totpsim: console at %s — sign in as %s, password %s\n", c, system.AdminUser, s.AdminPassword())
		}
		if sc.Server != "" {
			fmt.Fprintf(stdout, "totpsim: %d appliances syncing with %s; each waits with its pairing code on its screen and at %ssim/appliances/N/state\n", len(s.Appliances()), sc.Server, url)
		}
	})
	return s.Run(ctx)
}

func snapshotCmd(stdout io.Writer) *cobra.Command {
	var (
		o   system.SnapshotConfig
		at  string
		out string
	)
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Render one frame of an account through the emulated bus to PNG",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTime(at)
			if err != nil {
				return usageError{err}
			}
			o.At = t
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			if err := system.Snapshot(f, o); err != nil {
				f.Close()
				os.Remove(out)
				return usageError{err}
			}
			return f.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Panel, "panel", "ssd1306-128x64", "display size name")
	f.StringVar(&o.View, "view", "code", "view: code, qr, secret, hidden, untrusted, offer, pairing, message")
	f.StringVar(&o.URI, "uri", "", "the account's otpauth URI")
	f.StringVar(&o.Server, "server", "", "server address, for the pairing view")
	f.StringVar(&o.PairingCode, "code", "", "pairing code, for the pairing view")
	f.StringVar(&at, "at", "", "time of the code: RFC 3339 or unix seconds (default now)")
	f.IntVar(&o.Scale, "scale", 1, "pixel scale of the PNG")
	f.StringVar(&out, "out", "", "PNG file to write")
	return cmd
}

// parseTime parses RFC 3339 or unix seconds; empty means now.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is neither RFC 3339 nor unix seconds", s)
	}
	return t, nil
}

// nameFlag adds to an address the simulator could not listen on the flag
// that changes it.
func nameFlag(err error) error {
	var le *system.ListenError
	if !errors.As(err, &le) {
		return err
	}
	flag := "--listen"
	what := "the simulator page"
	if le.Part == system.PartServer {
		flag, what = "--server-listen", "the registration server (console)"
	}
	hint := ""
	if errors.Is(err, syscall.EADDRINUSE) {
		hint = "another program uses it; "
	}
	return fmt.Errorf("%s cannot listen on %s: %v (%schoose another address with %s, e.g. %s 127.0.0.1:0)", what, le.Addr, le.Err, hint, flag, flag)
}

// Command totpd is the appliance daemon: it shows one-time codes on the
// panel, keeps its own disciplined time and syncs with the registration
// server.
//
//	totpd [--config /etc/totpbox/totpd.yaml]
//	totpd config check FILE
//	totpd clock check --config FILE [--for 60s] [--json]
//	totpd --version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/device/daemon"
	"github.com/totpbox/totpbox/device/hw"
)

// version is stamped by the build with -ldflags "-X main.version=...".
var version = "dev"

// exitUsage is the status for bad configuration or flags.
const exitUsage = 2

type usageError struct{ error }

func main() {
	clobberFree()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "totpd:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(exitUsage)
		}
		os.Exit(1)
	}
}

// clobberFree re-executes totpd with GODEBUG=clobberfree=1 added, so
// that the garbage collector overwrites every object it frees: copies of
// a secret made on its way into the TPM (go-tpm marshals it through
// buffers of its own) do not linger in freed memory. The setting cannot
// be built in (//go:debug does not know it). If the re-execution fails,
// totpd goes on as it is.
func clobberFree() {
	g := os.Getenv("GODEBUG")
	if strings.Contains(g, "clobberfree=1") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if g != "" {
		g += ","
	}
	os.Setenv("GODEBUG", g+"clobberfree=1")
	syscall.Exec(exe, os.Args, os.Environ())
}

// flagName is the flag for a config key: state_dir → --state-dir,
// log.level → --log-level.
func flagName(key string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(key)
}

func newRoot() *cobra.Command {
	var (
		path string
		sets []string
		flag = map[string]*string{}
	)
	root := &cobra.Command{
		Use:           "totpd",
		Short:         "The totpbox appliance daemon",
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			overrides := append([]string(nil), sets...)
			for key, v := range flag {
				if cmd.Flags().Changed(flagName(key)) {
					overrides = append(overrides, key+"="+*v)
				}
			}
			cfg, err := daemon.Load(path, overrides...)
			if err != nil {
				return usageError{err}
			}
			cfg.Version = version
			daemon.TuneGC(cmd.Context())
			err = daemon.Run(cmd.Context(), cfg, cfg.NewLogger(os.Stderr))
			// A port or pin the config names that this machine lacks is
			// found only when opening it: still bad configuration.
			if cerr := (*hw.ConfigError)(nil); errors.As(err, &cerr) {
				return usageError{err}
			}
			return err
		},
	}
	root.Flags().StringVar(&path, "config", "/etc/totpbox/totpd.yaml", "configuration file")
	root.Flags().StringArrayVar(&sets, "set", nil, "override any key of the file: --set panel.kind=ssd1306-i2c (repeatable)")
	for key, usage := range map[string]string{
		"state_dir":      "directory of the vault, drift file and socket",
		"log.level":      "debug, info, warn or error",
		"log.format":     "text or json",
		"server.url":     "registration server to pair and sync with",
		"run_as":         "user to become when started as root",
		"metrics.listen": "address of /metrics, /healthz and /readyz",
	} {
		flag[key] = root.Flags().String(flagName(key), "", usage+" (the key "+key+")")
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Report every problem in a configuration file",
		Long: "check reports every problem in a configuration file at once, one per line: the\n" +
			"file's keys and values, then what only this machine can tell (an api.socket\n" +
			"directory other users may write, GPIO pins the host lacks). Where the host has\n" +
			"no GPIO, it says the pins were not checked.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := daemon.Load(args[0])
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				return usageError{err} // no file: nothing more to check
			}
			if pe := (*configs.ParseError)(nil); errors.As(err, &pe) {
				return usageError{err} // not YAML: reported first and alone
			}
			notes, herr := cfg.CheckHost()
			for _, n := range notes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], n)
			}
			if err := errors.Join(err, herr); err != nil {
				return usageError{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}
	cfgCmd := &cobra.Command{Use: "config", Short: "Configuration commands"}
	cfgCmd.AddCommand(check)
	root.AddCommand(cfgCmd, newClockCmd())
	return root
}

// errNotTrusted is clock check's failure when the clock could not vouch
// for its time by the end.
var errNotTrusted = errors.New("the clock is not trusted: no code would be shown")

func newClockCmd() *cobra.Command {
	var (
		path    string
		d       time.Duration
		jsonOut bool
	)
	check := &cobra.Command{
		Use:   "check --config FILE [--for 60s] [--json]",
		Short: "Run only the clock against the configured servers and report",
		Long: "check runs only the clock (nothing else of the daemon; nothing is written)\n" +
			"against the configured servers for --for, then prints each server's state and\n" +
			"the clock's reading with its bound, as `chronyc sources` does. It exits 1 when\n" +
			"the clock is not trusted by then (no code would be shown).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.Load(path)
			if err != nil {
				return usageError{err}
			}
			if d <= 0 {
				return usageError{fmt.Errorf("--for: %v is not positive", d)}
			}
			st, err := clock.Check(cmd.Context(), cfg.Clock, clock.Env{Logger: cfg.NewLogger(cmd.ErrOrStderr())}, d)
			if err != nil {
				return usageError{err}
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(st.Report())
			} else {
				err = clock.WriteSources(cmd.OutOrStdout(), st)
			}
			if err != nil {
				return err
			}
			if !st.State.Trusted() {
				return errNotTrusted
			}
			return nil
		},
	}
	check.Flags().StringVar(&path, "config", "/etc/totpbox/totpd.yaml", "configuration file")
	check.Flags().DurationVar(&d, "for", time.Minute, "how long to run the clock")
	check.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object")
	c := &cobra.Command{Use: "clock", Short: "Clock commands"}
	c.AddCommand(check)
	return c
}

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/totpbox/totpbox/device/hw"
)

func TestVersionFlag(t *testing.T) {
	old := version
	version = "1.2.3+git5.abc"
	defer func() { version = old }()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "totpd version 1.2.3+git5.abc\n" {
		t.Errorf("totpd --version printed %q, want the stamped version", got)
	}
}

func TestConfigCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("run_as: \"a b\"\nmetrics:\n  listen: nope\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file      string
		wantErr   []string
		wantUsage bool
	}{
		{"../../configs/totpd.yaml", nil, false},
		{bad, []string{`unknown key "bogus"`, "run_as:", "metrics.listen:"}, true},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"config", "check", tc.file})
		err := root.Execute()
		if tc.wantErr == nil {
			if err != nil || !strings.HasSuffix(out.String(), ": ok\n") {
				t.Errorf("config check %s = %v, %q; want ok", tc.file, err, out.String())
			}
			continue
		}
		if !errors.As(err, new(usageError)) {
			t.Errorf("config check %s = %v, want a usage error (exit 2)", tc.file, err)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("config check %s error lacks %q:\n%v", tc.file, w, err)
			}
		}
	}
}

// TestFlagsOverrideKeys: named flags and --set reach the keys they name,
// and bad ones are bad input naming the key, before any hardware is touched.
func TestFlagsOverrideKeys(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"--config", "", "--state-dir", "relative", "--log-level", "loud", "--set", "panel.kind=lcd", "--set", "bogus=1"})
	err := root.Execute()
	if !errors.As(err, new(usageError)) {
		t.Fatalf("totpd with bad flags = %v, want a usage error (exit 2)", err)
	}
	for _, w := range []string{"state_dir:", "log.level:", "panel.kind:", `unknown key "bogus"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// checkFile runs "totpd config check" on a file holding yaml and returns
// its output and error.
func checkFile(t *testing.T, yaml string) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "totpd.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"config", "check", p})
	err := root.Execute()
	return out.String(), err
}

// TestConfigCheckReportsEverything: a file with problems in every section
// gets every one of them reported in one pass, each on its own line naming
// its key, those found only after the rest was fixed (rotate, contrast,
// duplicate pins, ppm, poll order) and the shared socket directory
// included.
func TestConfigCheckReportsEverything(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	private := t.TempDir()
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each must start a line of the error
	}{
		{"every section", `
state_dir: relative
log: {level: loud}
panel: {kind: ssd1306, width: 100, height: 64, rotate: 90, contrast: 300}
buttons: {next: GPIO5, ok: GPIO5, back: GPIO6, debounce: 0s}
clock: {max_clock_error_ppm: 900, min_poll: 1h, max_poll: 1m}
screen: {reveal_for: 0s}
api: {socket: ` + shared + `/totpd.sock}
`, []string{"state_dir:", "log.level:", "panel.width:", "panel.rotate:", "panel.contrast:",
			"buttons.debounce:", "buttons.ok: pin \"GPIO5\" already used by buttons.next",
			"clock.max_clock_error_ppm:", "clock.max_poll: 1m0s is under clock.min_poll",
			"screen.reveal_for:", "api.socket: socket directory " + shared + " (mode 0777) is writable by group or others"}},
		{"epd", `
state_dir: /var/lib/totpbox
panel: {kind: epd2in13v2, rotate: 45, full_refresh_every: -1, busy: none}
api: {socket: ` + private + `/totpd.sock}
`, []string{"panel.rotate:", "panel.full_refresh_every:", "panel.busy:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkFile(t, tc.yaml)
			if !errors.As(err, new(usageError)) {
				t.Fatalf("config check = %v, want a usage error (exit 2)", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("config check lacks a line starting %q:\n%v", w, err)
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("config check = %d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
		})
	}
}

// TestConfigCheckPins: where the host has GPIO pins, config check names
// each pin the panel and buttons use that it lacks; where it has none, it
// says the pins were not checked and does not fail.
func TestConfigCheckPins(t *testing.T) {
	sock := "api: {socket: " + t.TempDir() + "/totpd.sock}\n"
	yaml := "state_dir: /var/lib/totpbox\npanel: {kind: ssd1306, dc: TP_DC, reset: TP_NORESET}\n" +
		"buttons: {next: TP_NEXT, ok: TP_OK, back: TP_NOBACK}\n" + sock
	if err := hw.Init(); err == nil && len(gpioreg.All()) == 0 {
		out, err := checkFile(t, yaml)
		if err != nil || !strings.Contains(out, "GPIO pins not checked") || !strings.HasSuffix(out, ": ok\n") {
			t.Errorf("config check on a host without GPIO = %q, %v; want a note that pins were not checked, then ok", out, err)
		}
	}
	for _, n := range []string{"TP_DC", "TP_NEXT", "TP_OK"} {
		if err := gpioreg.Register(&gpiotest.Pin{N: n, Num: -1}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gpioreg.Unregister(n) })
	}
	_, err := checkFile(t, yaml)
	if !errors.As(err, new(usageError)) {
		t.Fatalf("config check naming missing pins = %v, want a usage error", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `panel.reset: no GPIO pin named "TP_NORESET"`) ||
		!strings.HasPrefix(lines[1], `buttons.back: no GPIO pin named "TP_NOBACK"`) {
		t.Errorf("config check = %v, want panel.reset and buttons.back named", err)
	}
}

// TestConfigCheckUnparsedAndDurations: a file that does not parse is
// reported first and alone, in one line naming the file (no host notes,
// no complaints about the defaults it fell back to); a bad duration
// names its key, its value and the file, and is not followed by a
// complaint about the zero it left (issue 22, item 16).
func TestConfigCheckUnparsedAndDurations(t *testing.T) {
	out, err := checkFile(t, "run_as: [unclosed\nlog:\n  level: info\n")
	if err == nil || out != "" || strings.Count(err.Error(), "\n") > 0 || !strings.Contains(err.Error(), "totpd.yaml") || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("config check of a file that does not parse = %q, %v; want only one line saying the file does not parse", out, err)
	}
	_, err = checkFile(t, "screen:\n  reveal_for: 5 minutes\n  blank_after: 2x\n")
	if err == nil {
		t.Fatal("config check accepted bad durations")
	}
	for _, w := range []string{`screen.reveal_for: "5 minutes" is not a duration`, `screen.blank_after: "2x" is not a duration`, "totpd.yaml"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("config check error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "outside") || strings.Contains(err.Error(), "must be 0") || strings.Contains(err.Error(), "decoding failed") {
		t.Errorf("config check adds noise about the zero a bad duration left:\n%v", err)
	}
}

// TestConfigCheckPinSharedByPanelAndButton: a button on the panel's dc
// pin is reported, naming both keys (issue 22, item 7).
func TestConfigCheckPinSharedByPanelAndButton(t *testing.T) {
	_, err := checkFile(t, "panel:\n  kind: ssd1306-spi\n  dc: GPIO25\nbuttons:\n  next: GPIO25\n")
	if err == nil || !strings.Contains(err.Error(), `buttons.next: pin "GPIO25" already used by panel.dc`) {
		t.Errorf("config check of a pin shared by the panel and a button = %v, want it named", err)
	}
}

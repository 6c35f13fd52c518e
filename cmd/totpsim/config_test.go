package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/totpbox/totpbox/configs"
)

// TestShippedConfigIsTheDefault: configs/totpsim.yaml documents every key
// with the value totpsim uses without a file.
func TestShippedConfigIsTheDefault(t *testing.T) {
	got := simConfig{}
	if err := configs.Load("../../configs/totpsim.yaml", "TOTPSIM_TEST_NONE", &got); err != nil {
		t.Fatal(err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("configs/totpsim.yaml = %+v\nwant the defaults %+v", got, want)
	}
	body, _ := os.ReadFile("../../configs/totpsim.yaml")
	for _, key := range configs.Keys(&simConfig{}) {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(body), leaf+":") {
			t.Errorf("configs/totpsim.yaml lacks key %q", key)
		}
	}
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestConfigCheck(t *testing.T) {
	if out, _, err := run(t, "config", "check", "../../configs/totpsim.yaml"); err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("config check of the shipped file = %q, %v", out, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("appliances: 0\npanel: lcd\nbogus: 1\nscreen:\n  reveal_for: 0s\nntp:\n  servers: 99\n"), 0o600)
	_, _, err := run(t, "config", "check", bad)
	if err == nil {
		t.Fatal("config check accepted a bad file")
	}
	if _, ok := err.(usageError); !ok {
		t.Errorf("error %T is not bad input (exit 2)", err)
	}
	for _, want := range []string{`unknown key "bogus"`, "appliances:", "panel:", "screen.reveal_for:", "ntp.servers:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config check error lacks %q:\n%v", want, err)
		}
	}
}

// TestFlagsOverrideFile: a flag given wins over the file; the file wins
// over the defaults.
func TestFlagsOverrideFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sim.yaml")
	os.WriteFile(file, []byte("appliances: 3\npanel: epd-250x122\n"), 0o600)
	cmd := &cobra.Command{Use: "serve"}
	load := serveFlags(cmd)
	if err := cmd.ParseFlags([]string{"--config", file, "--appliances", "2"}); err != nil {
		t.Fatal(err)
	}
	c, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Appliances != 2 || c.Panel != "epd-250x122" || c.Listen != "127.0.0.1:8460" {
		t.Errorf("loaded %+v; want appliances 2 (flag), panel epd-250x122 (file), listen default", c)
	}
}

// TestManualPairingFlag: --manual-pairing turns the simulator's own
// pairing off.
func TestManualPairingFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--manual-pairing"}, true},
	} {
		cmd := &cobra.Command{Use: "serve"}
		load := serveFlags(cmd)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		c, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.system().NoAutoPair; got != tc.want {
			t.Errorf("%v: NoAutoPair = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestServerFlag: --server points the appliances at a server elsewhere;
// a URL that cannot be one, or --server with --no-server, is refused.
func TestServerFlag(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" when valid
	}{
		{[]string{"--server", "http://127.0.0.1:8080", "--appliances", "5"}, ""},
		{[]string{"--server", "https://totp.example.org/"}, ""},
		{[]string{"--server", "127.0.0.1:8080"}, `server: "127.0.0.1:8080" is not an http:// or https:// URL`},
		{[]string{"--server", "ftp://x"}, `server: "ftp://x" is not an http:// or https:// URL`},
		{[]string{"--server", "http://x", "--no-server"}, "server: set together with no_server"},
	}
	for _, tc := range tests {
		cmd := &cobra.Command{Use: "serve"}
		load := serveFlags(cmd)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		c, err := load()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want == "" && c.system().Server != tc.args[1]:
			t.Errorf("%v: system server = %q", tc.args, c.system().Server)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestNTPNTSOption: ntp.nts in the file, TOTPSIM_NTP_NTS and --ntp-nts
// each turn the fake servers' NTS on; it is off by default.
func TestNTPNTSOption(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sim.yaml")
	os.WriteFile(file, []byte("ntp:\n  nts: true\n"), 0o600)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want bool
	}{
		{"default", "", nil, false},
		{"file", "", []string{"--config", file}, true},
		{"environment", "true", nil, true},
		{"flag", "", []string{"--ntp-nts"}, true},
		{"flag over file", "", []string{"--config", file, "--ntp-nts=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("TOTPSIM_NTP_NTS", tc.env)
			}
			cmd := &cobra.Command{Use: "serve", RunE: func(*cobra.Command, []string) error { return nil }}
			load := serveFlags(cmd)
			cmd.SetArgs(tc.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			c, err := load()
			if err != nil {
				t.Fatal(err)
			}
			if got := c.system().NTS; got != tc.want {
				t.Errorf("system NTS = %v, want %v", got, tc.want)
			}
		})
	}
}

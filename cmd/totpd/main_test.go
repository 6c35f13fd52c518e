package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

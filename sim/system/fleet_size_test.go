package system

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManyAppliancesRunWithoutTPM: above MaxTPMAppliances the simulator
// starts no swtpm: every appliance runs in software mode, the TPM state
// directory stays empty, and a warning says so. More than MaxAppliances
// is refused with a one-line error.
func TestManyAppliancesRunWithoutTPM(t *testing.T) {
	var logs bytes.Buffer
	tpms := t.TempDir()
	n := MaxTPMAppliances + 1
	s, err := New(Config{Listen: "127.0.0.1:0", NoServer: true, DataDir: t.TempDir(), TPMDir: tpms, Appliances: n,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("New with %d appliances: %v", n, err)
	}
	defer s.close()
	if got := len(s.Appliances()); got != n {
		t.Fatalf("%d appliances, want %d", got, n)
	}
	for i, a := range s.Appliances() {
		if a.Secrets() != "software" {
			t.Errorf("appliance %d: secrets %s, want software", i, a.Secrets())
		}
	}
	if entries, _ := os.ReadDir(tpms); len(entries) != 0 {
		t.Errorf("TPM state directory holds %d entries, want none", len(entries))
	}
	if !strings.Contains(logs.String(), "without a TPM") {
		t.Errorf("no warning about running without a TPM; logs:\n%s", logs.String())
	}

	_, err = New(Config{Listen: "127.0.0.1:0", NoServer: true, DataDir: filepath.Join(t.TempDir(), "d"), Appliances: MaxAppliances + 1})
	if err == nil || !strings.Contains(err.Error(), "appliances: 1001 is outside 1..1000") || strings.Contains(err.Error(), "\n") {
		t.Errorf("New with %d appliances = %v, want the one-line range error", MaxAppliances+1, err)
	}
}

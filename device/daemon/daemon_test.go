package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/vault"
	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/oled"
)

// TestRunOnEmulatedHardware runs totpd's whole start-up and shutdown path —
// periph host init, panel and buttons opened by name, vault, disciplined
// clock over UDP — against an SSD1306 emulated on the SPI bus, virtual
// GPIO buttons and fake NTP servers.
func TestRunOnEmulatedHardware(t *testing.T) {
	em := oled.New(oled.Options{Name: "TOTPDTEST"})
	if err := em.Register("TOTPDTEST"); err != nil {
		t.Fatal(err)
	}
	btn := map[string]string{}
	for _, b := range []string{"NEXT", "OK", "BACK"} {
		p := hw.NewVirtualButton("TOTPDTEST_" + b)
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
		btn[b] = p.Name()
	}
	var servers []string
	for range 2 {
		s, err := ntpsim.ListenUDP("127.0.0.1:0", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers = append(servers, s.Addr())
	}

	state := t.TempDir()
	v, err := vault.Open(filepath.Join(state, "vault"), vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := enroll.NewKey("ACME", "alice")
	if _, err := v.Add(vault.Account{Key: k, State: vault.Active}); err != nil {
		t.Fatal(err)
	}
	v.Close()

	yaml := "state_dir: " + state + "\n" +
		"panel:\n  port: TOTPDTEST\n  dc: " + em.DC().Name() + "\n  reset: " + em.RES().Name() + "\n" +
		"buttons:\n  next: " + btn["NEXT"] + "\n  ok: " + btn["OK"] + "\n  back: " + btn["BACK"] + "\n" +
		"clock:\n  servers: [" + strings.Join(servers, ", ") + "]\n"
	path := filepath.Join(t.TempDir(), "totpd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, cfg.NewLogger(os.Stderr)) }()

	// The panel is initialised, switched on and shows a frame.
	deadline := time.Now().Add(20 * time.Second)
	for litPixels(em) < 400 || !em.State().DisplayOn {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no frame on the emulated panel after 20 s (%d pixels lit, on=%v)", litPixels(em), em.State().DisplayOn)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the stop signal")
	}
	if em.State().DisplayOn {
		t.Error("panel still on after shutdown; want it halted")
	}
	// The vault was closed: it opens again, with its account.
	v, err = vault.Open(filepath.Join(state, "vault"), vault.Options{})
	if err != nil {
		t.Fatalf("vault after shutdown: %v", err)
	}
	defer v.Close()
	if v.Len() != 1 {
		t.Errorf("vault holds %d accounts after shutdown, want 1", v.Len())
	}
	if _, err := os.Stat(filepath.Join(state, "drift.json")); err != nil {
		t.Logf("no drift file yet (frequency not known after a short run): %v", err)
	}
}

func litPixels(em *oled.Device) int {
	n := 0
	for _, b := range em.RAM() {
		for ; b != 0; b &= b - 1 {
			n++
		}
	}
	return n
}

func TestLoadReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	body := "state_dir: relative\nbogus: 1\npanel:\n  kind: lcd\n  widht: 3\nscreen:\n  reveal_for: 0s\nlog:\n  level: loud\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load() accepted a bad file")
	}
	for _, want := range []string{`unknown key "bogus"`, `unknown key "panel.widht"`, "state_dir", "panel.kind", "screen.reveal_for", "log.level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load() error lacks %q:\n%v", want, err)
		}
	}
}

func TestShippedConfigIsValid(t *testing.T) {
	if _, err := Load("../../configs/totpd.yaml"); err != nil {
		t.Fatalf("configs/totpd.yaml: %v", err)
	}
}

package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/device/hw/hwtest"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/oled"
)

// emulated is an appliance's hardware on emulated buses, registered in
// periph's registries under names of its own, with fake NTP servers.
type emulated struct {
	panel   *oled.Device
	buttons map[string]*hwtest.Button
	state   string // the state directory, holding a vault with one account
	yaml    string // config naming all of it
}

// newEmulated registers the hardware under prefix (unique per test) and
// writes a vault with one account into a fresh state directory.
func newEmulated(t *testing.T, prefix string) *emulated {
	t.Helper()
	em := oled.New(oled.Config{Name: prefix})
	if err := em.Register(prefix); err != nil {
		t.Fatal(err)
	}
	e := &emulated{panel: em, buttons: map[string]*hwtest.Button{}, state: t.TempDir()}
	for _, b := range []string{"NEXT", "OK", "BACK"} {
		p := hwtest.NewButton(prefix + "_" + b)
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
		e.buttons[b] = p
	}
	var servers []string
	for range 2 {
		s, err := ntpsim.ListenUDP("127.0.0.1:0", 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers = append(servers, s.Addr())
	}
	v, err := vault.Open(filepath.Join(e.state, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := enroll.NewKey("ACME", "alice")
	if _, err := v.Add(vault.Account{Key: k, State: vault.Active}); err != nil {
		t.Fatal(err)
	}
	v.Close()
	e.yaml = "state_dir: " + e.state + "\n" +
		"panel:\n  port: " + prefix + "\n  dc: " + em.DC().Name() + "\n  reset: " + em.RES().Name() + "\n" +
		"buttons:\n  next: " + e.buttons["NEXT"].Name() + "\n  ok: " + e.buttons["OK"].Name() + "\n  back: " + e.buttons["BACK"].Name() + "\n" +
		"clock:\n  servers: [" + strings.Join(servers, ", ") + "]\n"
	return e
}

// config loads e's configuration followed by extra keys. Unless extra sets
// run_as, run_as is root: the test process is root, and by default a root
// totpd drops its privileges — for the whole test binary.
func (e *emulated) config(t *testing.T, extra string) Config {
	t.Helper()
	if !strings.Contains(extra, "run_as:") {
		extra = "run_as: root\n" + extra
	}
	path := filepath.Join(t.TempDir(), "totpd.yaml")
	if err := os.WriteFile(path, []byte(e.yaml+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return cfg
}

// waitFor polls cond every 20 ms until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunOnEmulatedHardware runs totpd's whole start-up and shutdown path —
// periph host init, panel and buttons opened by name, vault, disciplined
// clock over UDP — against an SSD1306 emulated on the SPI bus, virtual
// GPIO buttons and fake NTP servers.
func TestRunOnEmulatedHardware(t *testing.T) {
	e := newEmulated(t, "TOTPDTEST")
	em, state := e.panel, e.state
	cfg := e.config(t, "")

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
	v, err := vault.Open(filepath.Join(state, "vault"), vault.Config{})
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

// TestShippedConfigHasEveryKey checks that configs/totpd.yaml shows every
// key totpd reads, so it documents them all.
func TestShippedConfigHasEveryKey(t *testing.T) {
	v := viper.New()
	v.SetConfigFile("../../configs/totpd.yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../configs/totpd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range configs.Keys(&Config{}) {
		// A key left empty (clock.require_authenticated: its default
		// depends on the servers) is shown too, though viper drops it.
		if !v.InConfig(k) && !hasKey(doc, strings.Split(k, ".")) {
			t.Errorf("configs/totpd.yaml lacks key %q", k)
		}
	}
}

// hasKey reports whether the YAML document holds the key path, whatever
// its value, null included.
func hasKey(doc map[string]any, path []string) bool {
	v, ok := doc[path[0]]
	if !ok || len(path) == 1 {
		return ok
	}
	m, _ := v.(map[string]any)
	return m != nil && hasKey(m, path[1:])
}

func TestValidateNewKeys(t *testing.T) {
	for _, tc := range []struct {
		runAs, listen string
		wantErr       string
	}{
		{"", "", ""},
		{"totpbox", "127.0.0.1:9464", ""},
		{"1000:1000", ":9464", ""},
		{"", "[::1]:0", ""},
		{"bad name", "", "run_as"},
		{"", "9464", "metrics.listen"},
		{"", "127.0.0.1:http", "metrics.listen"},
		{"", "127.0.0.1:70000", "metrics.listen"},
	} {
		cfg := DefaultConfig()
		cfg.RunAs, cfg.Metrics.Listen = tc.runAs, tc.listen
		err := cfg.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr+":")) {
			t.Errorf("Validate(run_as %q, metrics.listen %q) = %v, want error naming %q", tc.runAs, tc.listen, err, tc.wantErr)
		}
	}
}

package system

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/totpbox/totpbox/internal/testkit"
	"image/png"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func startSystem(t *testing.T, cfg Config) (*System, *httptest.Server) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.ServerListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return s.appliances[0].State().Frames > 0 })
	return s, ts
}

func getState(t *testing.T, url string) State {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSimulatorShowsDemoCodesOnTheEmulatedBus(t *testing.T) {
	s, ts := startSystem(t, Config{})
	// The appliance shows no code until its clock has synced to the fake
	// NTP servers.
	if st := getState(t, ts.URL+"/sim/state"); st.CodeShown && st.TimeState != "SYNCED" {
		t.Fatalf("code shown while time is %s", st.TimeState)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, ts.URL+"/sim/state").CodeShown })
	st := getState(t, ts.URL+"/sim/state")
	if st.View != "code" || !st.CodeShown || st.AccountCount != 3 {
		t.Fatalf("state = %+v, want the code view of 3 demo accounts", st)
	}
	if st.ClockStatus == nil || len(st.ClockStatus.Servers) != 3 || !st.ClockStatus.Servers[0].Selected {
		t.Fatalf("state's clock = %+v, want the status of 3 selected fake NTP servers", st.ClockStatus)
	}
	resp, err := http.Get(ts.URL + "/sim/display.png?scale=2")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("display.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 128 {
		t.Fatalf("display.png at scale 2 is %v, want 256x128", b)
	}
	lit := 0
	for y := 0; y < 128; y++ {
		for x := 0; x < 256; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r > 0x8000 {
				lit++
			}
		}
	}
	if lit < 500 {
		t.Errorf("display.png has %d lit pixels; the emulated GDDRAM looks empty", lit)
	}
	if stats := s.appliances[0].OLED().Stats(); len(stats.Unknown) > 0 {
		t.Errorf("the driver sent commands the emulator does not know: %x", stats.Unknown)
	}

	if acct := s.appliances[0].Vault().List()[0]; st.AccountID != acct.ID {
		t.Fatalf("shown account %q, want the first, %q", st.AccountID, acct.ID)
	}

	resp, err = http.Post(ts.URL+"/sim/buttons/next", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST next = %d", resp.StatusCode)
	}
	testkit.WaitFor(t, 10*time.Second, "the simulator to get there", func() bool { return getState(t, ts.URL+"/sim/state").AccountIndex == 1 })
}

func TestSimulatorAPIErrors(t *testing.T) {
	_, ts := startSystem(t, Config{Appliances: 2})
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/sim/buttons/reset", http.StatusBadRequest},
		{"GET", "/sim/display.png?scale=0", http.StatusBadRequest},
		{"GET", "/sim/display.png?scale=x", http.StatusBadRequest},
		{"GET", "/sim/appliances/2/state", http.StatusNotFound},
		{"GET", "/sim/appliances/x/state", http.StatusBadRequest},
		{"GET", "/sim/appliances/1/state", http.StatusOK},
		{"GET", "/sim/appliances/1/display.png", http.StatusOK},
		{"GET", "/", http.StatusOK},
	} {
		req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}

func TestSnapshotEveryPanel(t *testing.T) {
	uri := "otpauth://totp/ACME:al?secret=JBSWY3DPEHPK3PXP&issuer=ACME"
	for _, panel := range []string{"ssd1306-128x64", "ssd1306-128x32", "epd-250x122", "epd-296x128"} {
		for _, view := range []string{"code", "qr", "secret"} {
			var buf bytes.Buffer
			err := Snapshot(&buf, SnapshotConfig{Panel: panel, View: view, URI: uri, At: time.Unix(1_700_000_000, 0), Scale: 1})
			if err != nil {
				t.Fatalf("Snapshot(%s, %s) = %v", panel, view, err)
			}
			if _, err := png.Decode(&buf); err != nil {
				t.Fatalf("Snapshot(%s, %s) wrote no PNG: %v", panel, view, err)
			}
		}
	}
	for _, bad := range []SnapshotConfig{
		{Panel: "lcd-1x1", View: "code", URI: uri, Scale: 1},
		{Panel: "ssd1306-128x64", View: "menu", URI: uri, Scale: 1},
		{Panel: "ssd1306-128x64", View: "code", URI: "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP", Scale: 1},
		{Panel: "ssd1306-128x64", View: "code", URI: uri, Scale: 0},
	} {
		if err := Snapshot(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("Snapshot(%+v) accepted bad input", bad)
		}
	}
}

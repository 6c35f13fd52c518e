package daemon

import (
	"bufio"
	"context"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"

	"periph.io/x/conn/v3/gpio"
)

// get fetches url and returns its status and body; status 0 when nothing
// answered.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample returns the value of the series (name with its labels, exactly as
// exposed) in a text exposition, and whether it is there.
func sample(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestMetricsAndHealth runs totpd with metrics.listen on emulated hardware
// and scrapes it while the clock syncs, a hidden code is revealed and the
// panel is unplugged and plugged back.
func TestMetricsAndHealth(t *testing.T) {
	e := newEmulated(t, "TOTPDMETRICS")
	addr := testkit.FreeAddr(t)
	cfg := e.config(t, "metrics:\n  listen: "+addr+"\nscreen:\n  hidden: true\n")
	cfg.Version = "1.2.3-test"
	base := "http://" + addr

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, cfg.NewLogger(io.Discard)) }()

	metric := func(series string) float64 {
		t.Helper()
		code, body := get(base + "/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d", code)
		}
		v, ok := sample(body, series)
		if !ok {
			return math.NaN()
		}
		return v
	}
	testkit.WaitFor(t, 10*time.Second, "GET /readyz = 200", func() bool { c, _ := get(base + "/readyz"); return c == http.StatusOK })
	if c, body := get(base + "/healthz"); c != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", c, body)
	}
	for series, want := range map[string]float64{
		`totpd_build_info{version="1.2.3-test"}`: 1,
		`totpd_accounts`:                         1,
		`totpd_panel_up`:                         1,
		`totpd_panel_errors_total{kind="bus"}`:   0,
		`totpd_panel_reopens_total`:              0,
		`totpd_code_reveals_total`:               0,
	} {
		if got := metric(series); got != want {
			t.Errorf("%s = %v at start, want %v", series, got, want)
		}
	}

	// The clock syncs with the fake NTP servers.
	testkit.WaitFor(t, 30*time.Second, `totpd_clock_state{state="SYNCED"} = 1`, func() bool { return metric(`totpd_clock_state{state="SYNCED"}`) == 1 })
	if got := metric(`totpd_clock_state{state="UNSYNCED"}`); got != 0 {
		t.Errorf(`totpd_clock_state{state="UNSYNCED"} = %v once synced, want 0`, got)
	}
	if b := metric("totpd_clock_error_bound_seconds"); !(b >= 0 && b <= 1) {
		t.Errorf("totpd_clock_error_bound_seconds = %v once synced, want within 0..1", b)
	}
	for _, s := range cfg.Clock.Servers {
		if off := metric(`totpd_clock_server_offset_seconds{server="` + s + `"}`); math.IsNaN(off) || math.Abs(off) > 0.5 {
			t.Errorf("offset of %s = %v, want present and small", s, off)
		}
	}

	// OK reveals the hidden code.
	testkit.WaitFor(t, 5*time.Second, "frames drawn", func() bool { return metric("totpd_frames_total") >= 2 })
	// The finger stays on OK until the reveal is counted: a fixed hold may
	// end before a slow machine (an ARM run under qemu-user) has polled the
	// line past its debounce.
	ok := e.buttons["OK"]
	ok.EdgesChan <- gpio.Low
	testkit.WaitFor(t, 30*time.Second, "totpd_code_reveals_total = 1", func() bool { return metric("totpd_code_reveals_total") == 1 })
	if err := ok.Out(gpio.High); err != nil {
		t.Fatal(err)
	}

	// The panel is unplugged: a bus error, the panel down, not ready.
	e.panel.Unplug()
	testkit.WaitFor(t, 5*time.Second, `totpd_panel_errors_total{kind="bus"} = 1`, func() bool { return metric(`totpd_panel_errors_total{kind="bus"}`) == 1 })
	if got := metric("totpd_panel_up"); got != 0 {
		t.Errorf("totpd_panel_up = %v while unplugged, want 0", got)
	}
	if c, body := get(base + "/readyz"); c != http.StatusServiceUnavailable || !strings.Contains(body, "panel down") {
		t.Errorf("GET /readyz while unplugged = %d %q, want 503 naming the panel", c, body)
	}
	testkit.WaitFor(t, 5*time.Second, `totpd_panel_errors_total{kind="open"} >= 1`, func() bool { return metric(`totpd_panel_errors_total{kind="open"}`) >= 1 })
	e.panel.Plug()
	testkit.WaitFor(t, 10*time.Second, "totpd_panel_reopens_total = 1", func() bool { return metric("totpd_panel_reopens_total") == 1 })
	testkit.WaitFor(t, 5*time.Second, "GET /readyz = 200 after replug", func() bool { c, _ := get(base + "/readyz"); return c == http.StatusOK })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the stop signal")
	}
	if c, _ := get(base + "/healthz"); c != 0 {
		t.Errorf("GET /healthz after Run returned = %d, want nothing listening", c)
	}
}

// TestReadyz checks /readyz's answer for each readiness.
func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		why      []string
		wantCode int
		wantBody string
	}{
		{nil, 200, "ok\n"},
		{[]string{"panel down"}, 503, "panel down\n"},
		{[]string{"panel down", "vault closed"}, 503, "panel down\nvault closed\n"},
	} {
		h := newMetrics("x").handler(func() []string { return tc.why })
		srv := &http.Server{Handler: h}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		code, body := get("http://" + ln.Addr().String() + "/readyz")
		srv.Close()
		if code != tc.wantCode || body != tc.wantBody {
			t.Errorf("readyz with %q = %d %q, want %d %q", tc.why, code, body, tc.wantCode, tc.wantBody)
		}
	}
}

type fakeClock struct{ st clock.Status }

func (c fakeClock) Status() clock.Status { return c.st }

// TestClockCollector checks the clock's series for an unsynced and a
// synced status: an unknown bound is +Inf, an unknown frequency absent.
func TestClockCollector(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   clock.Status
		want map[string]float64 // NaN: absent
	}{
		{"unsynced", clock.Status{State: clock.Unsynced, Bound: -1, SinceUpdate: -1, PollInterval: 16,
			Servers: []clock.ServerStatus{{Address: "a:123"}}},
			map[string]float64{
				`totpd_clock_state{state="UNSYNCED"}`:               1,
				`totpd_clock_state{state="SYNCED"}`:                 0,
				`totpd_clock_error_bound_seconds`:                   math.Inf(1),
				`totpd_clock_frequency_ppm`:                         math.NaN(),
				`totpd_clock_since_update_seconds`:                  math.NaN(),
				`totpd_clock_poll_interval_seconds`:                 16,
				`totpd_clock_server_reach{server="a:123"}`:          0,
				`totpd_clock_server_offset_seconds{server="a:123"}`: math.NaN(),
			}},
		{"synced", clock.Status{State: clock.Synced, Bound: 0.004, Frequency: -12.5, Skew: 0.2, FrequencyKnown: true,
			SinceUpdate: 3, PollInterval: 64,
			Servers: []clock.ServerStatus{{Address: "a:123", Offset: 0.001, Delay: 0.02, Reach: 255, Selected: true}}},
			map[string]float64{
				`totpd_clock_state{state="SYNCED"}`:                 1,
				`totpd_clock_state{state="UNSYNCED"}`:               0,
				`totpd_clock_error_bound_seconds`:                   0.004,
				`totpd_clock_frequency_ppm`:                         -12.5,
				`totpd_clock_frequency_skew_ppm`:                    0.2,
				`totpd_clock_since_update_seconds`:                  3,
				`totpd_clock_server_reach{server="a:123"}`:          255,
				`totpd_clock_server_selected{server="a:123"}`:       1,
				`totpd_clock_server_offset_seconds{server="a:123"}`: 0.001,
				`totpd_clock_server_delay_seconds{server="a:123"}`:  0.02,
				`totpd_clock_server_failures_total{server="a:123"}`: 0,
				// A plain NTP server has no NTS series.
				`totpd_clock_server_authenticated{server="a:123"}`: math.NaN(),
				`totpd_clock_server_nts_cookies{server="a:123"}`:   math.NaN(),
			}},
		{"nts under attack", clock.Status{State: clock.Holdover, Bound: 0.01, SinceUpdate: 90, PollInterval: 64,
			Servers: []clock.ServerStatus{{Address: "nts://t.example", Reach: 0xf0, Failures: 4, NTS: true,
				Authenticated: false, Cookies: 4, SinceKE: 120, AuthFailures: 4, KEFailures: 1, NAKs: 2}}},
			map[string]float64{
				`totpd_clock_state{state="HOLDOVER"}`:                                          1,
				`totpd_clock_server_failures_total{server="nts://t.example"}`:                  4,
				`totpd_clock_server_authenticated{server="nts://t.example"}`:                   0,
				`totpd_clock_server_nts_cookies{server="nts://t.example"}`:                     4,
				`totpd_clock_server_nts_since_key_exchange_seconds{server="nts://t.example"}`:  120,
				`totpd_clock_server_nts_auth_failures_total{server="nts://t.example"}`:         4,
				`totpd_clock_server_nts_key_exchange_failures_total{server="nts://t.example"}`: 1,
				`totpd_clock_server_nts_naks_total{server="nts://t.example"}`:                  2,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics("x")
			m.watch(fakeClock{tc.st}, func() bool { return true }, func() int { return 0 })
			_, body := scrape(t, m)
			for series, want := range tc.want {
				got, ok := sample(body, series)
				switch {
				case math.IsNaN(want) && ok:
					t.Errorf("%s = %v, want absent", series, got)
				case !math.IsNaN(want) && (!ok || got != want):
					t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
				}
			}
		})
	}
}

// TestRevealCounting feeds frames to the reveal counter: only the hidden
// view followed by the code view is a reveal.
func TestRevealCounting(t *testing.T) {
	for _, tc := range []struct {
		views []string
		want  float64
	}{
		{[]string{"code", "code", "code"}, 0},
		{[]string{"untrusted", "hidden", "code", "hidden", "code"}, 2},
		{[]string{"hidden", "blank", "hidden", "qr", "code"}, 0},
		{[]string{"code", "hidden", "hidden", "code"}, 1},
	} {
		m := newMetrics("x")
		for _, v := range tc.views {
			m.frame(device.Status{View: v})
		}
		_, body := scrape(t, m)
		if got, _ := sample(body, "totpd_code_reveals_total"); got != tc.want {
			t.Errorf("reveals after %v = %v, want %v", tc.views, got, tc.want)
		}
		if got, _ := sample(body, "totpd_frames_total"); got != float64(len(tc.views)) {
			t.Errorf("frames after %v = %v, want %d", tc.views, got, len(tc.views))
		}
	}
}

// scrape serves m on a loopback port and fetches /metrics.
func scrape(t *testing.T, m *metrics) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.handler(func() []string { return nil })}
	go srv.Serve(ln)
	defer srv.Close()
	return get(fmt.Sprintf("http://%s/metrics", ln.Addr()))
}

package testkit

import (
	"strings"
	"testing"
	"time"
)

// TestHostDisturbance: a host clock at a steady rate (even far from the
// oscillator's) is steady; a slew that starts midway, or a step, is
// reported with its size.
func TestHostDisturbance(t *testing.T) {
	// series builds 10 s of samples every 100 ms from diff(raw seconds).
	series := func(diff func(s float64) float64) []hostSample {
		var out []hostSample
		for i := range 101 {
			s := float64(i) / 10
			out = append(out, hostSample{raw: int64(s * 1e9), diff: int64(diff(s) * 1e9)})
		}
		return out
	}
	for _, c := range []struct {
		name string
		diff func(s float64) float64
		want string // "" or a part of the report
	}{
		{"the same rate", func(s float64) float64 { return 0 }, ""},
		{"a steady 300 ppm", func(s float64) float64 { return 300e-6 * s }, ""},
		{"a microsecond of read noise", func(s float64) float64 { return 1e-6 * float64(int(s*10)%2) }, ""},
		{"a 500 ppm slew from 5 s", func(s float64) float64 { return 500e-6 * max(0, s-5) }, "500 ppm"},
		{"a 2 ms step at 3 s", func(s float64) float64 {
			if s >= 3 {
				return 2e-3
			}
			return 0
		}, "2000 ppm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hostDisturbance(series(c.diff))
			if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Fatalf("hostDisturbance = %q, want %q", got, c.want)
			}
		})
	}
}

// TestWatchHostClock: on this machine, over a second and a half, the watch
// reads both clocks about every 100 ms (what it finds of the host's clock
// is logged: this machine's clock is not the test's to judge).
func TestWatchHostClock(t *testing.T) {
	w := WatchHostClock(t)
	time.Sleep(1500 * time.Millisecond)
	if why := w.Disturbed(); why != "" {
		t.Log(why)
	}
	w.mu.Lock()
	n := len(w.samples)
	w.mu.Unlock()
	if _, ok := readHostSample(); ok && n < 10 {
		t.Fatalf("%d samples in 1.5 s, want about 15", n)
	}
}

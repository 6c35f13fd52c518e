package osc

import (
	"math"
	"testing"
	"time"
)

func TestOscillator(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		after     time.Duration
		wantLocal float64 // seconds
		tol       float64
	}{
		{"perfect", Config{}, time.Hour, 3600, 1e-9},
		{"50 ppm fast", Config{PPM: 50}, 1000 * time.Second, 1000.05, 1e-9},
		{"-20 ppm slow", Config{PPM: -20}, 1000 * time.Second, 999.98, 1e-9},
		// Over a whole period the diurnal swing integrates to nothing.
		{"diurnal full day", Config{DiurnalPPM: 1, DiurnalPhase: 1}, 24 * time.Hour, 86400, 1e-9},
		// A quarter period from phase 0 gains A·P/(2π).
		{"diurnal quarter", Config{DiurnalPPM: 1}, 6 * time.Hour, 21600 + 1e-6*86400/(2*math.Pi), 1e-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := New(tt.cfg)
			o.AdvanceTo(tt.after)
			if got := o.Exact(); math.Abs(got-tt.wantLocal) > tt.tol {
				t.Errorf("after %v: local %.9f s, want %.9f s", tt.after, got, tt.wantLocal)
			}
		})
	}
}

func TestWanderIsRepeatable(t *testing.T) {
	a, b := New(Config{Wander: 1e-9, Seed: 7}), New(Config{Wander: 1e-9, Seed: 7})
	a.AdvanceTo(time.Hour)
	b.AdvanceTo(time.Hour)
	if a.Exact() != b.Exact() || a.Frequency() == 0 {
		t.Errorf("same seed: %v vs %v, frequency %g", a.Exact(), b.Exact(), a.Frequency())
	}
}

func TestSuspendStopsTheOscillator(t *testing.T) {
	o := New(Config{PPM: 10})
	o.AdvanceTo(time.Minute)
	before := o.Exact()
	o.Suspend(time.Hour)
	if o.Exact() != before || o.Suspended() != time.Hour || o.Elapsed() != time.Hour+time.Minute {
		t.Errorf("after suspend: local %v (was %v), suspended %v, elapsed %v", o.Exact(), before, o.Suspended(), o.Elapsed())
	}
}

// TestWanderIgnoresReadings checks that how often an oscillator is read
// does not change its wander: two clocks under test that read the
// timebase at different moments must face the same oscillator.
func TestWanderIgnoresReadings(t *testing.T) {
	cfg := Config{PPM: 50, Wander: 1e-9, Noise: 100 * time.Nanosecond, Seed: 7}
	quiet, busy := New(cfg), New(cfg)
	for s := 1; s <= 3600; s++ {
		busy.AdvanceTo(time.Duration(s) * time.Second)
		busy.Local()
	}
	quiet.AdvanceTo(time.Hour)
	if quiet.Exact() != busy.Exact() || quiet.Frequency() != busy.Frequency() {
		t.Errorf("read once: local %.12f s, frequency %g; read every second: local %.12f s, frequency %g",
			quiet.Exact(), quiet.Frequency(), busy.Exact(), busy.Frequency())
	}
}

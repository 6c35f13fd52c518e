package clock

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// world feeds the discipline perfect-but-noisy samples from n servers for
// an oscillator running fast by ppm.
type world struct {
	t     *testing.T
	d     *Discipline
	epoch time.Time
	ppm   float64
	local time.Duration // current timebase value
	errs  map[string]time.Duration
}

func newWorld(t *testing.T, servers int, ppm float64) *world {
	w := &world{
		t:     t,
		epoch: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		ppm:   ppm,
		errs:  make(map[string]time.Duration),
	}
	w.d = NewDiscipline(DisciplineConfig{Epoch: w.epoch, Servers: servers})
	return w
}

// offset is the true UTC minus Epoch+local at local.
func (w *world) offset(local time.Duration) time.Duration {
	return time.Duration(-float64(local) * w.ppm * 1e-6 / (1 + w.ppm*1e-6))
}

func (w *world) sample(name string, i int) Sample {
	jit := time.Duration((i*37)%11-5) * 10 * time.Microsecond // ±50 µs, deterministic
	return Sample{
		Server: name,
		Local:  w.local,
		Offset: w.offset(w.local) + jit + w.errs[name],
		Delay:  200 * time.Microsecond,
	}
}

// round advances by d and feeds one sample from each named server.
func (w *world) round(d time.Duration, names ...string) Outcome {
	w.local += d
	var s []Sample
	for i, n := range names {
		s = append(s, w.sample(n, int(w.local/time.Second)+i))
	}
	return w.d.Update(w.local, s)
}

func (w *world) reading(after time.Duration) Reading {
	w.local += after
	return w.d.Reading(w.local)
}

// trueErr is the reading's error against true UTC.
func (w *world) trueErr(r Reading) time.Duration {
	return r.Time.Sub(w.epoch.Add(w.local).Add(w.offset(w.local)))
}

var four = []string{"a", "b", "c", "d"}

func TestStateTransitions(t *testing.T) {
	w := newWorld(t, 4, 80)
	if r := w.reading(0); r.State != Unsynced || r.Reason != "no NTP reply yet" || r.State.Trusted() {
		t.Fatalf("at start: %v %q, want UNSYNCED, no NTP reply yet", r.State, r.Reason)
	}

	// One server of four cannot form a majority.
	w.round(time.Second, "a")
	if r := w.reading(0); r.State != Unsynced || r.Reason != "no agreeing servers" {
		t.Fatalf("one server: %v %q, want UNSYNCED, no agreeing servers", r.State, r.Reason)
	}

	// UNSYNCED -> SYNCED on an agreeing majority.
	if out := w.round(time.Second, four...); !out.Updated {
		t.Fatalf("four agreeing servers: not updated: %s", out.Reason)
	}
	if r := w.reading(0); r.State != Synced || r.Reason != "" {
		t.Fatalf("after agreement: %v %q, want SYNCED", r.State, r.Reason)
	}
	for range 40 {
		w.round(16*time.Second, four...)
	}
	r := w.reading(time.Second)
	if r.State != Synced || r.Bound > time.Millisecond || w.trueErr(r).Abs() > r.Bound {
		t.Fatalf("synced: %v bound %v error %v", r.State, r.Bound, w.trueErr(r))
	}
	if math.Abs(r.Frequency-80) > 1 {
		t.Errorf("frequency %.3f ppm, want about 80", r.Frequency)
	}

	// SYNCED -> HOLDOVER when updates stop.
	r = w.reading(10 * time.Minute)
	if r.State != Holdover || !r.State.Trusted() || w.trueErr(r).Abs() > r.Bound {
		t.Fatalf("10 min without updates: %v bound %v error %v, want HOLDOVER within bound", r.State, r.Bound, w.trueErr(r))
	}

	// HOLDOVER -> UNTRUSTED when the bound passes the 5 s limit.
	r = w.reading(12 * 24 * time.Hour)
	if r.State != Untrusted || r.Reason != "error bound too large" {
		t.Fatalf("12 days without updates: %v %q (bound %v), want UNTRUSTED, error bound too large", r.State, r.Reason, r.Bound)
	}

	// UNTRUSTED -> SYNCED when servers agree again.
	if out := w.round(time.Second, four...); !out.Updated {
		t.Fatalf("back: not updated: %s", out.Reason)
	}
	if r := w.reading(0); r.State != Synced {
		t.Fatalf("after servers return: %v %q, want SYNCED", r.State, r.Reason)
	}
}

func TestUntrustedWhenServersDisagree(t *testing.T) {
	w := newWorld(t, 4, 20)
	for range 10 {
		w.round(16*time.Second, four...)
	}
	// Every server goes its own way: no majority.
	w.errs = map[string]time.Duration{"a": time.Second, "b": 2 * time.Second, "c": 3 * time.Second, "d": 4 * time.Second}
	for _, s := range four {
		w.d.servers[s].have = false // forget the agreeing past
	}
	out := w.round(16*time.Second, four...)
	r := w.reading(0)
	if out.Updated || r.State != Untrusted || r.Reason != "no agreeing servers" {
		t.Fatalf("disagreeing servers: updated %v, %v %q; want UNTRUSTED, no agreeing servers", out.Updated, r.State, r.Reason)
	}
}

func TestUntrustedWhenMeasurementContradictsPrediction(t *testing.T) {
	w := newWorld(t, 4, 20)
	for range 20 {
		w.round(16*time.Second, four...)
	}
	// The timebase jumps (an undetected suspend): all servers agree on a
	// time 2 s from the prediction.
	w.errs = map[string]time.Duration{"a": 2 * time.Second, "b": 2 * time.Second, "c": 2 * time.Second, "d": 2 * time.Second}
	out := w.round(16*time.Second, four...)
	r := w.reading(0)
	if out.Updated || r.State != Untrusted || !strings.HasPrefix(r.Reason, "measurement contradicts prediction") {
		t.Fatalf("after a jump: updated %v, %v %q; want UNTRUSTED, measurement contradicts prediction", out.Updated, r.State, r.Reason)
	}
	// The next agreeing round starts over.
	w.errs = nil
	w.round(16*time.Second, four...)
	if r := w.reading(0); r.State != Synced || w.trueErr(r).Abs() > r.Bound {
		t.Fatalf("after restart: %v error %v bound %v", r.State, w.trueErr(r), r.Bound)
	}
}

func TestSuspend(t *testing.T) {
	w := newWorld(t, 4, 20)
	for range 20 {
		w.round(16*time.Second, four...)
	}
	w.d.Suspended()
	if r := w.reading(0); r.State != Untrusted || r.Reason != "suspend detected" {
		t.Fatalf("after suspend: %v %q, want UNTRUSTED, suspend detected", r.State, r.Reason)
	}
	w.round(time.Second, four...)
	r := w.reading(0)
	if r.State != Synced {
		t.Fatalf("after resync: %v %q, want SYNCED", r.State, r.Reason)
	}
	// The frequency survives a suspend.
	if f, _, _ := w.d.Frequency(); math.Abs(f-20) > 1 {
		t.Errorf("frequency after suspend %.3f ppm, want about 20", f)
	}
}

func TestFalsetickerNamedAndIgnored(t *testing.T) {
	w := newWorld(t, 5, 30)
	w.errs = map[string]time.Duration{"e": time.Hour}
	names := []string{"a", "b", "c", "d", "e"}
	var out Outcome
	for range 20 {
		out = w.round(16*time.Second, names...)
	}
	if !out.Updated || fmt.Sprint(out.Falsetickers) != "[e]" {
		t.Fatalf("outcome %+v, want updated with falseticker e", out)
	}
	if sel, ft := w.d.ServerState("e"); sel || !ft {
		t.Errorf("ServerState(e) = %v, %v; want not selected, falseticker", sel, ft)
	}
	r := w.reading(0)
	if e := w.trueErr(r).Abs(); e > 200*time.Microsecond {
		t.Errorf("error %v with a falseticker, want ≤ 200µs", e)
	}
}

func TestNotBefore(t *testing.T) {
	w := newWorld(t, 2, 0)
	w.d.cfg.NotBefore = w.epoch.Add(time.Hour)
	out := w.round(time.Second, "a", "b")
	r := w.reading(0)
	if out.Updated || r.State != Untrusted || !strings.Contains(r.Reason, "before the last known good time") {
		t.Fatalf("servers behind the last good time: updated %v, %v %q", out.Updated, r.State, r.Reason)
	}
}

func TestBoundHoldsWhileAcquiring(t *testing.T) {
	// 100 ppm, readings every second through the first minutes, when the
	// frequency is still unknown: the bound must always hold.
	w := newWorld(t, 4, 100)
	for i := range 200 {
		if i%4 == 0 {
			w.round(time.Second, four...)
			continue
		}
		r := w.reading(time.Second)
		if r.State.Trusted() && w.trueErr(r).Abs() > r.Bound {
			t.Fatalf("t=%v: error %v over bound %v", w.local, w.trueErr(r), r.Bound)
		}
	}
}

func TestStateStrings(t *testing.T) {
	tests := []struct {
		s       State
		name    string
		trusted bool
	}{
		{Unsynced, "UNSYNCED", false},
		{Synced, "SYNCED", true},
		{Holdover, "HOLDOVER", true},
		{Untrusted, "UNTRUSTED", false},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("State(%d).String() = %q, want %q", tt.s, got, tt.name)
		}
		if got := tt.s.Trusted(); got != tt.trusted {
			t.Errorf("%v.Trusted() = %v, want %v", tt.s, got, tt.trusted)
		}
		var back State
		if err := back.UnmarshalText([]byte(tt.name)); err != nil || back != tt.s {
			t.Errorf("UnmarshalText(%q) = %v, %v", tt.name, back, err)
		}
	}
}

func TestSystem(t *testing.T) {
	r := System{}.Now()
	if r.State != Synced || r.Bound != 0 || time.Since(r.Time) > time.Second {
		t.Errorf("System{}.Now() = %+v", r)
	}
}

// TestFirstUpdatesStepOutsideTheMeasurement: before the clock has a
// frequency, a reading the new measurement shows to be wrong by more than
// its distance is stepped, not slewed: it drifted at the oscillator's
// unknown frequency, and slewing would keep it off for seconds more.
func TestFirstUpdatesStepOutsideTheMeasurement(t *testing.T) {
	w := newWorld(t, 1, 50)
	w.round(time.Second, "a")
	// 100 s later the uncorrected 50 ppm has moved the reading by 5 ms.
	if out := w.round(100*time.Second, "a"); !out.Updated {
		t.Fatalf("not updated: %s", out.Reason)
	}
	r := w.reading(0)
	if e := w.trueErr(r).Abs(); e > 200*time.Microsecond || e > r.Bound {
		t.Errorf("right after the second update: error %v, bound %v; want ≤ 200 µs (the measurement's)", e, r.Bound)
	}
}

// TestLineFollowsATurningFrequency: the oscillator's frequency moves
// steadily (a temperature swing), polled every 1024 s. A line over hours
// of points lags the turn by far more than the points' distances; the
// newest point straying from it drops old points, so the estimate stays
// near the measurements.
func TestLineFollowsATurningFrequency(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDiscipline(DisciplineConfig{Epoch: epoch, Servers: 1})
	d.SetPollInterval(1024 * time.Second)
	// The frequency goes from 0 to 2 ppm over 12 h: offset −(a/2)x².
	const a = 2e-6 / (12 * 3600)
	truth := func(x float64) float64 { return -a / 2 * x * x }
	var worst float64
	for i := range 40 {
		x := float64(i) * 1024
		local := time.Duration(x * float64(time.Second))
		noise := float64((i*7)%5-2) * 10e-6
		s := Sample{Server: "a", Local: local, Offset: seconds(truth(x) + noise), Delay: 200 * time.Microsecond}
		if out := d.Update(local, []Sample{s}); !out.Updated {
			t.Fatalf("update %d: %s", i, out.Reason)
		}
		r := d.Reading(local)
		e := math.Abs(r.Time.Sub(epoch.Add(local)).Seconds() - truth(x))
		if e > r.Bound.Seconds() {
			t.Errorf("update %d: error %.6f s outside bound %v", i, e, r.Bound)
		}
		if i >= 10 {
			// The estimate the reading slews to, not the slew's start.
			worst = max(worst, math.Abs(d.lastEst+d.refOffset.Seconds()-truth(x)))
		}
	}
	if worst > 200e-6 {
		t.Errorf("worst error right after an update = %.6f s, want ≤ 200 µs", worst)
	}
}

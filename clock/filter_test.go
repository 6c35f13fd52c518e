package clock

import (
	"math"
	"testing"
	"time"
)

func TestRegisterRejectsDelaySpikes(t *testing.T) {
	var r register
	for _, d := range []time.Duration{6, 5, 7, 4, 8} {
		if !r.push(Sample{Delay: d * time.Millisecond}) {
			t.Fatalf("push(%v ms) rejected; want accepted within twice the minimum", d)
		}
	}
	// 4 ms is the minimum: 9 ms is over the ratio of 2.
	for i := range maxRejections {
		if r.push(Sample{Delay: 9 * time.Millisecond}) {
			t.Fatalf("spike %d of 9 ms accepted; want rejected", i+1)
		}
	}
	// The path may have changed for good: after maxRejections one is taken.
	if !r.push(Sample{Delay: 9 * time.Millisecond}) {
		t.Fatalf("after %d rejections in a row, a 9 ms sample is still rejected", maxRejections)
	}
	// On a LAN the excess under minExcess is never rejected.
	var lan register
	lan.push(Sample{Delay: 20 * time.Microsecond})
	if !lan.push(Sample{Delay: 90 * time.Microsecond}) {
		t.Error("90 µs after a 20 µs minimum rejected; want accepted (under minExcess)")
	}
}

func TestSpreadCoversDistance(t *testing.T) {
	s := Sample{Delay: 9 * time.Millisecond, RootDelay: time.Millisecond, RootDispersion: 50 * time.Microsecond}
	common, random := spread(s, 4*time.Millisecond, registerSize)
	if got, want := common+random, s.distance().Seconds(); got < want {
		t.Errorf("spread: common %g + random %g = %g, under the distance %g", common, random, got, want)
	}
}

// spikyWorld is a world whose samples cross a path of 4 ms round trip.
func spikyRound(w *world, d time.Duration, spike time.Duration) Outcome {
	w.local += d
	var s []Sample
	for i, n := range four {
		smp := w.sample(n, int(w.local/time.Second)+i)
		smp.Delay = 4*time.Millisecond + time.Duration(i)*100*time.Microsecond
		if spike != 0 {
			// Queued on the way back: the delay grows and the offset
			// reads ahead by half of it.
			smp.Delay += spike
			smp.Offset += spike / 2
		}
		s = append(s, smp)
	}
	return w.d.Update(w.local, s)
}

func TestDelaySpikeDoesNotMoveTheReading(t *testing.T) {
	w := newWorld(t, 4, 30)
	for range 30 {
		spikyRound(w, 16*time.Second, 0)
	}
	before := w.reading(0)
	out := spikyRound(w, 0, 30*time.Millisecond)
	after := w.reading(0)
	if out.Updated || len(out.Filtered) != 4 {
		t.Errorf("a round of 30 ms spikes: updated %v, filtered %v; want held back by the filter", out.Updated, out.Filtered)
	}
	if d := after.Time.Sub(before.Time).Abs(); d > 10*time.Microsecond {
		t.Errorf("a 30 ms delay spike moved the reading by %v", d)
	}
}

func TestUpdateSlewsNotSteps(t *testing.T) {
	w := newWorld(t, 4, 30)
	for range 30 {
		w.round(16*time.Second, four...)
	}
	// Every server now reads 150 µs ahead (a path change within the bound).
	w.errs = map[string]time.Duration{"a": 150 * time.Microsecond, "b": 150 * time.Microsecond, "c": 150 * time.Microsecond, "d": 150 * time.Microsecond}
	w.local += 16 * time.Second
	before := w.d.Reading(w.local)
	var s []Sample
	for i, n := range four {
		s = append(s, w.sample(n, i))
	}
	if out := w.d.Update(w.local, s); !out.Updated {
		t.Fatalf("not updated: %s", out.Reason)
	}
	after := w.d.Reading(w.local)
	if d := after.Time.Sub(before.Time).Abs(); d > 5*time.Microsecond {
		t.Errorf("the update moved the reading by %v at once; want a slew", d)
	}
	// Over the next seconds the reading moves towards the new estimate at
	// no more than maxSlewRate, and its bound covers the slew still to come.
	prev := after
	for range 30 {
		r := w.reading(time.Second)
		step := r.Time.Sub(prev.Time) - time.Second
		if step.Abs() > time.Duration(maxSlewRate*float64(time.Second))+time.Microsecond+50*time.Nanosecond {
			t.Fatalf("reading moved %v beyond a second in one second; want at most %v", step, time.Duration(maxSlewRate*1e9))
		}
		prev = r
	}
}

// TestCombineDoesNotRestOnOneSample: the sample at the register's minimum
// delay is not trusted far beyond the others. Its random part is only the
// floor, but its true error may be tens of µs; weights by the random part
// alone let it pull the combined offset nearly all the way to its error.
func TestCombineDoesNotRestOnOneSample(t *testing.T) {
	w := newWorld(t, 4, 30)
	for range 20 {
		w.round(16*time.Second, four...)
	}
	w.local += 16 * time.Second
	var s []Sample
	for i, n := range four {
		smp := w.sample(n, i)
		smp.Offset = w.offset(w.local)
		if n == "a" {
			smp.Offset += 80 * time.Microsecond // within its λ of 101 µs
		} else {
			smp.Delay = 380 * time.Microsecond // λ 191 µs, no error
		}
		s = append(s, smp)
	}
	out := w.d.Update(w.local, s)
	if !out.Updated {
		t.Fatalf("not updated: %s", out.Reason)
	}
	if e := (out.Offset - w.offset(w.local)).Abs(); e > 50*time.Microsecond {
		t.Errorf("combined offset off by %v, pulled towards the one low-delay sample's 80 µs; want ≤ 50 µs", e)
	}
}

func TestSlewTime(t *testing.T) {
	tests := []struct {
		name            string
		c, random, poll float64
		want            float64
	}{
		{"within the noise: over the polling interval", 50e-6, 100e-6, 32, 32},
		{"within the noise, long polls: over maxSlewTime", -50e-6, 100e-6, 1024, maxSlewTime},
		{"four times the noise: a quarter of the time", 400e-6, 100e-6, 1024, maxSlewTime / 4},
		{"large: at the most maxSlewRate", 20e-3, 100e-6, 1024, 20e-3 / maxSlewRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slewTime(tt.c, tt.random, tt.poll); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("slewTime(%g, %g, %g) = %g, want %g", tt.c, tt.random, tt.poll, got, tt.want)
			}
		})
	}
}

// TestBoundCountsThePathsShareOnce: on a path of 4 ms round trip the bound
// holds half of it whole, as the path's unknown asymmetry; the regression's
// own error comes from what differs from sample to sample, not from the
// whole distance again. Counting the distance in both left over 0.5 ms
// more in the bound after 30 samples than their scatter allows.
func TestBoundCountsThePathsShareOnce(t *testing.T) {
	w := newWorld(t, 1, 20)
	var r Reading
	for i := range 30 {
		w.local += 16 * time.Second
		s := w.sample("a", i)
		s.Delay = 4 * time.Millisecond
		if out := w.d.Update(w.local, []Sample{s}); !out.Updated {
			t.Fatalf("round %d not updated: %s", i, out.Reason)
		}
		r = w.d.Reading(w.local)
		if e := w.trueErr(r).Abs(); e > r.Bound {
			t.Fatalf("round %d: error %v outside bound %v", i, e, r.Bound)
		}
	}
	if r.Bound > 2200*time.Microsecond {
		t.Errorf("bound after 30 samples of a 4 ms path = %v, want ≤ 2.2 ms (half the round trip, plus the samples' scatter)", r.Bound)
	}
}

// TestBoundTermsAddUp: the parts BoundTerms reports make up the reading's
// bound, while a slew is under way and long after.
func TestBoundTermsAddUp(t *testing.T) {
	w := newWorld(t, 4, 30)
	for range 20 {
		w.round(16*time.Second, four...)
	}
	w.errs = map[string]time.Duration{"a": 150 * time.Microsecond, "b": 150 * time.Microsecond, "c": 150 * time.Microsecond, "d": 150 * time.Microsecond}
	w.round(16*time.Second, four...)
	for _, after := range []time.Duration{0, time.Second, 10 * time.Second, time.Hour} {
		r := w.reading(after)
		p := w.d.BoundTerms(w.local)
		sum := p.Path + p.Estimate + p.Frequency + p.Drift + p.Slew
		if d := (seconds(sum) - r.Bound).Abs(); d > time.Nanosecond {
			t.Errorf("%v after the update: terms %+v add up to %v, bound %v", after, p, seconds(sum), r.Bound)
		}
		if p.Path <= 0 || p.Drift < 0 || p.Slew < 0 {
			t.Errorf("%v after the update: terms %+v", after, p)
		}
	}
}

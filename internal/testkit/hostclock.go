package testkit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// HostClockWatch follows, while a test runs, how the host's clock
// (CLOCK_REALTIME: the time chronyd and the simulated NTP servers on this
// machine serve) runs against the raw oscillator (CLOCK_MONOTONIC_RAW:
// the timebase totpbox's clock disciplines). On a quiet host the two keep
// one rate. When something slews or steps the host's clock meanwhile (a
// time daemon, a hypervisor correcting its guest after a pause), every
// server on the machine serves a time whose rate moved under the clock
// being tested, and a comparison of that clock with the host's says
// nothing about it: the test should say so and skip, not fail.
type HostClockWatch struct {
	mu      sync.Mutex
	samples []hostSample
	done    chan struct{}
	stopped chan struct{}
}

// hostSample is one reading of both clocks: raw, and realtime minus raw.
type hostSample struct{ raw, diff int64 }

// hostClockSpacing is how often the watch reads both clocks.
const hostClockSpacing = 100 * time.Millisecond

// hostRateWindow is the span over which a rate is measured.
const hostRateWindow = time.Second

// HostRateLimit is the largest change of the host clock's rate against the
// oscillator taken as steady: 20 ppm, 20 µs in a second. A step shows as a
// change of its size in one window.
const HostRateLimit = 20e-6

// WatchHostClock starts a watch that ends with the test. Where the
// oscillator cannot be read apart (not Linux), it never reports anything.
func WatchHostClock(t testing.TB) *HostClockWatch {
	w := &HostClockWatch{done: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	t.Cleanup(w.stop)
	return w
}

func (w *HostClockWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.stopped
}

func (w *HostClockWatch) run() {
	defer close(w.stopped)
	tick := time.NewTicker(hostClockSpacing)
	defer tick.Stop()
	for {
		if s, ok := readHostSample(); ok {
			w.mu.Lock()
			w.samples = append(w.samples, s)
			w.mu.Unlock()
		}
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
	}
}

// Disturbed says how the host's clock changed its rate against the
// oscillator since the watch began, or "" when it kept to HostRateLimit.
func (w *HostClockWatch) Disturbed() string {
	if s, ok := readHostSample(); ok {
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return hostDisturbance(w.samples)
}

// hostDisturbance measures the rate of diff over each window of at least
// hostRateWindow and reports the spread of those rates when it passes
// HostRateLimit.
func hostDisturbance(samples []hostSample) string {
	lo, hi := 0.0, 0.0
	have := false
	j := 0
	for i, s := range samples {
		for j < i && s.raw-samples[j+1].raw >= int64(hostRateWindow) {
			j++
		}
		span := s.raw - samples[j].raw
		if span < int64(hostRateWindow) {
			continue
		}
		r := float64(s.diff-samples[j].diff) / float64(span)
		if !have {
			lo, hi, have = r, r, true
		}
		lo, hi = min(lo, r), max(hi, r)
	}
	if !have || hi-lo <= HostRateLimit {
		return ""
	}
	return fmt.Sprintf("the host's clock, which the servers serve, changed its rate against the oscillator by %.0f ppm during the test (from %+.0f to %+.0f ppm over 1 s windows): something slewed or stepped it",
		(hi-lo)*1e6, lo*1e6, hi*1e6)
}

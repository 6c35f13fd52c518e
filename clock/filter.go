package clock

import (
	"math"
	"time"
)

// The clock filter: a register of each server's recent samples, as chrony
// keeps one per source. Queueing on a loaded path only ever adds delay, and
// a sample's offset error is at most half the delay it has beyond the
// path's minimum (the excess split between the two ways). So the minimum
// delay in the register tells the good samples from the queued ones: a
// sample whose delay exceeds the minimum by a ratio is rejected outright,
// and the rest are weighted by their excess delay.

// registerSize is how many recent samples of a server the filter keeps.
const registerSize = 16

// maxDelayRatio rejects a sample whose delay exceeds the register's
// minimum by this ratio (and by more than minExcess).
const maxDelayRatio = 2

// minExcess is the excess delay never rejected, whatever the ratio: on a
// LAN the timestamps' own noise is of this order.
const minExcess = 100 * time.Microsecond

// maxRejections is how many samples in a row the filter rejects before it
// takes one anyway: the path may have changed for good, and the register
// then forgets the old minimum as it fills with the new delays.
const maxRejections = 4

// register holds one server's recent samples, newest last.
type register struct {
	samples  []Sample
	rejected int // consecutive rejections
}

// minDelay returns the smallest delay in the register.
func (r *register) minDelay() time.Duration {
	m := time.Duration(math.MaxInt64)
	for _, s := range r.samples {
		m = min(m, s.Delay)
	}
	return m
}

// push records s and reports whether it is good enough to use: its delay
// within maxDelayRatio of the register's minimum.
func (r *register) push(s Sample) bool {
	r.samples = append(r.samples, s)
	if len(r.samples) > registerSize {
		r.samples = r.samples[len(r.samples)-registerSize:]
	}
	m := r.minDelay()
	if excess := s.Delay - m; excess > minExcess && float64(s.Delay) > maxDelayRatio*float64(m) && r.rejected < maxRejections {
		r.rejected++
		return false
	}
	r.rejected = 0
	return true
}

// spread splits a sample's distance λ, given the register's minimum
// delay, into two parts: common, what every sample over the same path
// shares (half the minimum delay, the server's root distance, the
// precisions) and no averaging can shrink, since the path's asymmetry is
// unknown; and random, what differs from sample to sample (half the
// excess delay, plus a floor for the minimum's own wander), which
// averaging over samples reduces. common + random ≥ λ. held is how many
// samples the register holds.
//
// The floor is wide while the register holds few samples (its minimum may
// still be well above the path's) and narrows to 1/32 of the minimum as
// it fills.
func spread(s Sample, minDelay time.Duration, held int) (common, random float64) {
	minDelay = min(minDelay, s.Delay)
	common = (minDelay/2 + s.RootDelay/2 + s.RootDispersion + s.Precision + localPrecision).Seconds()
	floor := minDelay / time.Duration(min(32, 2*max(held, 1)))
	random = ((s.Delay-minDelay)/2 + floor + localPrecision).Seconds()
	return common, random
}

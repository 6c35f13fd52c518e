package uplink

import (
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff: the n-th retry in a row waits
// between half and all of Min·2^(n-1), capped at Max.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff is used for a zero Config.Backoff: 1 s doubling to 5 min.
var DefaultBackoff = Backoff{Min: time.Second, Max: 5 * time.Minute}

// Delay returns the wait before retry n (1 for the first), with jitter
// drawn from rnd (a float in [0, 1); nil means math/rand/v2).
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// Package ratelimit is a set of token buckets, one per key (an address, a
// username), for the registration server's sign-in, verify and pairing
// limits. Buckets start full and idle ones are forgotten by Prune. Time is
// passed in, so callers use their injected clocks.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond. A negative PerSecond means no limit; zero means Burst events
// and then none.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Limiter holds one bucket per key. It is safe for concurrent use.
type Limiter struct {
	rate Rate
	mu   sync.Mutex
	b    map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter with rate r for every key.
func New(r Rate) *Limiter { return &Limiter{rate: r, b: make(map[string]*bucket)} }

// Allow takes one token from key's bucket at now. When the bucket is empty
// it reports false and how long until a token is back.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.rate.PerSecond < 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b[key]
	if b == nil {
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.b[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(l.rate.Burst), b.tokens+el*l.rate.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate.PerSecond == 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / l.rate.PerSecond * float64(time.Second))
}

// Prune forgets buckets that have refilled completely by now.
func (l *Limiter) Prune(now time.Time) {
	if l.rate.PerSecond <= 0 {
		return
	}
	full := time.Duration(float64(l.rate.Burst) / l.rate.PerSecond * float64(time.Second))
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.b {
		if now.Sub(b.last) >= full {
			delete(l.b, k)
		}
	}
}

// Len returns how many buckets are held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.b)
}

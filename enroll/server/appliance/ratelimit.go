package appliance

import (
	"math"
	"sync"
	"time"
)

// limiter is a set of token buckets, one per key. A bucket starts full;
// prune forgets idle ones.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	b    map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate) *limiter { return &limiter{rate: r, b: make(map[string]*bucket)} }

// allow takes a token from key's bucket at now, or reports how long until
// one is back.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
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

// prune forgets buckets that have refilled by now.
func (l *limiter) prune(now time.Time) {
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

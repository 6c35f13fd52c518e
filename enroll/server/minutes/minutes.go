// Package minutes counts events per key and minute until they are taken,
// so that a flood of refusals (the console's refused sign-ins, RADIUS's
// Access-Rejects) writes one audit row per key and minute, with a count,
// instead of one row each.
package minutes

import (
	"sort"
	"sync"
	"time"
)

// Counts counts events per key within each minute. Its zero value is
// ready; it is safe for concurrent use.
type Counts[K comparable] struct {
	mu sync.Mutex
	m  map[Minute[K]]int
}

// Minute is one key's count in the minute that starts at Start.
type Minute[K comparable] struct {
	Key   K
	Start time.Time
	// N is the count; zero in the map's keys.
	N int
}

// Add counts one event of key at now. When max keys are held already,
// a new key is counted as overflow(key) instead, so a flood of distinct
// keys holds no more than max of them (and the overflow ones).
func (c *Counts[K]) Add(key K, now time.Time, max int, overflow func(K) K) {
	k := Minute[K]{Key: key, Start: now.UTC().Truncate(time.Minute)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[Minute[K]]int)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= max {
		k.Key = overflow(key)
	}
	c.m[k]++
}

// Take removes and returns the counts whose minute has ended by now
// (every count when all is true), oldest minute first and, within a
// minute, ordered by less.
func (c *Counts[K]) Take(now time.Time, all bool, less func(a, b K) bool) []Minute[K] {
	c.mu.Lock()
	var done []Minute[K]
	for k, n := range c.m {
		if all || !now.Before(k.Start.Add(time.Minute)) {
			k.N = n
			done = append(done, k)
			delete(c.m, Minute[K]{Key: k.Key, Start: k.Start})
		}
	}
	c.mu.Unlock()
	sort.Slice(done, func(i, j int) bool {
		a, b := done[i], done[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return less(a.Key, b.Key)
	})
	return done
}

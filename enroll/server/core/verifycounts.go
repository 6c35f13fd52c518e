package core

import (
	"context"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// maxVerifyCountKeys bounds the (user, day) pairs counted between two
// flushes; past it, new pairs are dropped (and logged once per flush)
// while known ones still count.
const maxVerifyCountKeys = 100_000

// verifyCountKey is a user's UTC day.
type verifyCountKey struct {
	user int64
	day  time.Time
}

// verifyCounts counts verify outcomes per user and UTC day in memory,
// so a verify costs no write; the janitor's Sweep adds them to the
// store (store.VerifyDaily) and starts again. Counts not yet flushed
// are lost when the process stops or crashes: they feed a chart, not
// an audit (failures and lockouts are audited one by one).
type verifyCounts struct {
	mu      sync.Mutex
	m       map[verifyCountKey]*store.VerifyDay
	dropped int
}

func newVerifyCounts() *verifyCounts {
	return &verifyCounts{m: make(map[verifyCountKey]*store.VerifyDay)}
}

// add counts ok successes, fail failures and lock lockouts for user at.
func (c *verifyCounts) add(user int64, at time.Time, ok, fail, lock int64) {
	k := verifyCountKey{user, store.UTCDay(at)}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.m[k]
	if d == nil {
		if len(c.m) >= maxVerifyCountKeys {
			c.dropped++
			return
		}
		d = &store.VerifyDay{UserID: user, Day: k.day}
		c.m[k] = d
	}
	d.Successes += ok
	d.Failures += fail
	d.Lockouts += lock
}

// take returns the counts so far and the events dropped, and starts
// again from zero.
func (c *verifyCounts) take() ([]store.VerifyDay, int) {
	c.mu.Lock()
	m, dropped := c.m, c.dropped
	c.m, c.dropped = make(map[verifyCountKey]*store.VerifyDay, len(m)), 0
	c.mu.Unlock()
	out := make([]store.VerifyDay, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	return out, dropped
}

// putBack returns counts a failed flush took, for the next flush to
// try again (within the bound).
func (c *verifyCounts) putBack(days []store.VerifyDay) {
	for _, d := range days {
		c.add(d.UserID, d.Day, d.Successes, d.Failures, d.Lockouts)
	}
}

// FlushVerifyCounts adds the verify counts made since the last flush
// to the store. The janitor's Sweep calls it; a server stopping calls it
// too so its last counts are kept. On error the counts are kept for the
// next flush.
func (s *Core) FlushVerifyCounts(ctx context.Context) error {
	days, dropped := s.verifyCounts.take()
	if dropped > 0 {
		s.log.Warn("verify counts: too many users in one flush interval; some not counted", "dropped", dropped)
	}
	// In transactions of verifyFlushChunk days: SQLite has one writer,
	// and one transaction for every user verified since the last flush
	// (tens of thousands of rows) held it for long enough to stall the
	// verifies' own writes behind it.
	for len(days) > 0 {
		n := min(len(days), verifyFlushChunk)
		if err := s.store.AddVerifyDays(ctx, days[:n]); err != nil {
			s.verifyCounts.putBack(days)
			return err
		}
		days = days[n:]
	}
	return nil
}

// verifyFlushChunk is how many (user, day) counts FlushVerifyCounts adds
// in one transaction. A failed chunk keeps its counts and those after it
// for the next flush; the chunks before it are added.
const verifyFlushChunk = 1000

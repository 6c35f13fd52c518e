// Package wallclock is the real clock, for the packages that take an
// injected one (tests and the simulator inject theirs), and the waits
// that end early with their context.
package wallclock

import (
	"context"
	"time"
)

// Clock reads the system's wall clock.
type Clock struct{}

// Now returns time.Now().
func (Clock) Now() time.Time { return time.Now() }

// Sleep waits d, or until ctx is done; it returns ctx's error then, and
// nil when d passed.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Within runs f with a context that ends after d, or with ctx, and
// returns f's error.
func Within(ctx context.Context, d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

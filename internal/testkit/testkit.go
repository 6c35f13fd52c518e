// Package testkit gathers the helpers that tests across totpbox share: a
// manual clock, waiting for a condition, a quiet logger and running a
// component until the test ends. Only tests import it; the architecture
// test checks that no command links it.
package testkit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// T0 is the time a Clock starts at when none is given: a fixed instant, so
// that tests and golden files do not depend on the day they run.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a manual clock: it moves only when told. Its zero value is not
// ready; use NewClock. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading start, or T0 when start is zero.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = T0
	}
	return &Clock{t: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// WaitFor polls cond every 10 ms until it holds, and fails the test naming
// what was awaited when limit passes first. It is for real time, across
// processes or sockets; inside a testing/synctest bubble use
// synctest.Wait instead.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Quiet returns a logger that drops everything: for components whose logs
// the test does not read.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Logger returns a logger that writes through t.Log, so a component's log
// shows beside the test's failure and nowhere else.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// Run starts run in a goroutine with a context that is cancelled when the
// test ends, and waits for it to return then; an error other than the
// context's is reported. It is for components that run until stopped
// (servers, loops, clients).
func Run(t testing.TB, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("run: %v", err)
		}
	})
}

// FreeAddr returns a loopback TCP address nothing listens on, for a
// component under test that must be given an address rather than a
// listener.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

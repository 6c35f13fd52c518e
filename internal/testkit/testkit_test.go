package testkit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := NewClock(time.Time{})
	if got := c.Now(); !got.Equal(T0) {
		t.Fatalf("NewClock(zero).Now() = %v, want %v", got, T0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), T0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Advance: %v, want %v", got, want)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(at)
	if got := c.Now(); !got.Equal(at) {
		t.Errorf("after Set: %v, want %v", got, at)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, time.Second, "three polls", func() bool { n++; return n >= 3 })
	if n != 3 {
		t.Errorf("cond polled %d times, want 3", n)
	}
}

func TestRunStopsAtCleanup(t *testing.T) {
	stopped := make(chan struct{})
	t.Run("inner", func(t *testing.T) {
		Run(t, func(ctx context.Context) error {
			<-ctx.Done()
			close(stopped)
			return ctx.Err()
		})
	})
	select {
	case <-stopped:
	default:
		t.Fatal("Run's component still running after its test ended")
	}
}

func TestRunReportsError(t *testing.T) {
	ft := &fakeT{TB: t}
	ft.cleanups = nil
	Run(ft, func(ctx context.Context) error { return errors.New("boom") })
	for i := len(ft.cleanups) - 1; i >= 0; i-- {
		ft.cleanups[i]()
	}
	if !ft.failed {
		t.Error("an error from the component was not reported")
	}
}

type fakeT struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeT) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, a ...any) { f.failed = true }
func (f *fakeT) Helper()                        {}

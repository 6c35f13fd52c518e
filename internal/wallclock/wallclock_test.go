package wallclock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestSleep: a sleep ends after its duration with nil, or at its
// context's end with the context's error, whichever comes first.
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), time.Minute); err != nil || time.Since(start) != time.Minute {
			t.Fatalf("Sleep(1m) = %v after %v", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Sleep(1h) under a 1 s context = %v after %v", err, time.Since(start))
		}
		if d := (Clock{}).Now().Sub(start); d != time.Second {
			t.Errorf("Clock.Now moved %v, want 1s", d)
		}
	})
}

// TestWithin: f sees a deadline d away, and its error comes back.
func TestWithin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		want := errors.New("flush failed")
		err := Within(context.Background(), 5*time.Second, func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			if !ok || dl.Sub(time.Now()) != 5*time.Second {
				t.Errorf("deadline %v (set %v), want 5s away", dl, ok)
			}
			<-ctx.Done()
			return want
		})
		if err != want {
			t.Errorf("Within = %v, want f's error", err)
		}
	})
}

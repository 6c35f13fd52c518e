package daemon

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestTuneGC: without GOGC the appliance's collector runs at
// IdleGCPercent; GOGC in the environment wins.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tests := []struct {
		name  string
		gogc  string // "" unset
		start int    // the percentage in force before (GOGC's, when set)
		want  int
	}{
		{"default", "", 100, IdleGCPercent},
		{"GOGC set", "150", 150, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			debug.SetGCPercent(tt.start)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if got := TuneGC(ctx); got != tt.want {
				t.Errorf("TuneGC() = %d, want %d", got, tt.want)
			}
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent after TuneGC = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCollectIdle: a collection at the end of each interval in which the
// runtime ran none, none while it collects on its own, and none after
// ctx is done.
func TestCollectIdle(t *testing.T) {
	tests := []struct {
		name     string
		runtime  time.Duration // the runtime collects this often; 0 never
		run      time.Duration
		want     int64
		interval time.Duration
	}{
		{"idle", 0, 95 * time.Second, 3, 30 * time.Second},
		{"the runtime collects every 10 s", 10 * time.Second, 95 * time.Second, 0, 30 * time.Second},
		{"the runtime collects every 50 s", 50 * time.Second, 145 * time.Second, 2, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var cycles, collected atomic.Int64
				ctx, cancel := context.WithCancel(t.Context())
				if tt.runtime > 0 {
					go func() {
						tick := time.NewTicker(tt.runtime)
						defer tick.Stop()
						for {
							select {
							case <-ctx.Done():
								return
							case <-tick.C:
								cycles.Add(1)
							}
						}
					}()
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					collectIdle(ctx, tt.interval,
						func() uint64 { return uint64(cycles.Load()) },
						func() { collected.Add(1); cycles.Add(1) })
				}()
				time.Sleep(tt.run)
				cancel()
				<-done
				if got := collected.Load(); got != tt.want {
					t.Errorf("%d collections in %v, want %d", got, tt.run, tt.want)
				}
				time.Sleep(time.Hour)
				if got := collected.Load(); got != tt.want {
					t.Errorf("%d collections after ctx was done, want %d", got-tt.want, 0)
				}
			})
		})
	}
}

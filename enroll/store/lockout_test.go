package store

import (
	"testing"
	"time"
)

func TestDeviceFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name    string
		count   int
		at, now time.Time
		leak    time.Duration
		want    int
		wantAt  time.Time
	}{
		{"no failures", 0, time.Time{}, t0, day, 0, time.Time{}},
		{"less than a leak", 5, t0, t0.Add(day - time.Second), day, 5, t0},
		{"one leak", 5, t0, t0.Add(day), day, 4, t0.Add(day)},
		{"leaks keep their phase", 5, t0, t0.Add(2*day + time.Hour), day, 3, t0.Add(2 * day)},
		{"all leaked", 5, t0, t0.Add(5 * day), day, 0, time.Time{}},
		{"long after", 5, t0, t0.Add(400 * day), day, 0, time.Time{}},
		{"no leak", 5, t0, t0.Add(400 * day), 0, 5, t0},
		{"no time recorded (before the leak)", 5, time.Time{}, t0, day, 5, time.Time{}},
		{"a clock set back", 5, t0, t0.Add(-day), day, 5, t0},
	}
	for _, tc := range tests {
		d := Device{FailCount: tc.count, FailAt: tc.at}
		n, at := d.Failures(tc.now, tc.leak)
		if n != tc.want || !at.Equal(tc.wantAt) {
			t.Errorf("%s: Failures = %d from %v, want %d from %v", tc.name, n, at, tc.want, tc.wantAt)
		}
	}
}

func TestLockoutFail(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rule := Lockout{Threshold: 10, Base: 10 * time.Minute, MaxLockouts: 3, Leak: 24 * time.Hour}
	tests := []struct {
		name       string
		count      int
		lockouts   int
		want       Failure
		wantLocked time.Time
	}{
		{"first", 0, 0, Failure{Count: 1}, time.Time{}},
		{"reaches the threshold", 9, 0, Failure{Count: 10, Lockouts: 1, Locked: true}, t0.Add(10 * time.Minute)},
		{"past a lock that ran out", 10, 1, Failure{Count: 11, Lockouts: 1}, time.Time{}},
		{"second lockout doubles", 19, 1, Failure{Count: 20, Lockouts: 2, Locked: true}, t0.Add(20 * time.Minute)},
		{"third lasts until unlocked", 29, 2, Failure{Count: 30, Lockouts: 3, Locked: true}, Indefinitely},
	}
	for _, tc := range tests {
		got := rule.fail(Device{FailCount: tc.count, FailAt: t0, Lockouts: tc.lockouts}, t0)
		tc.want.FailAt, tc.want.LockedUntil = t0, tc.wantLocked
		if got != tc.want {
			t.Errorf("%s: fail = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

package core

import (
	"testing"
	"time"
)

// TestVerifyCounts: counts add per user and UTC day, take starts again
// from zero, putBack keeps a failed flush's counts, and the map is
// bounded: past maxVerifyCountKeys pairs new ones are dropped and
// counted as dropped while known ones still count.
func TestVerifyCounts(t *testing.T) {
	c := newVerifyCounts()
	day := time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)
	c.add(1, day, 1, 0, 0)
	c.add(1, day.Add(-23*time.Hour), 0, 2, 1) // same UTC day
	c.add(1, day.Add(time.Minute), 1, 0, 0)   // the next day
	c.add(2, day, 0, 1, 0)
	got, dropped := c.take()
	if len(got) != 3 || dropped != 0 {
		t.Fatalf("take = %v, %d dropped; want 3 days, 0 dropped", got, dropped)
	}
	for _, d := range got {
		if d.UserID == 1 && d.Day.Day() == 27 && (d.Successes != 1 || d.Failures != 2 || d.Lockouts != 1) {
			t.Errorf("user 1 day 27 = %+v, want 1/2/1", d)
		}
	}
	if again, _ := c.take(); len(again) != 0 {
		t.Errorf("take after take = %v, want none", again)
	}
	c.putBack(got)
	if back, _ := c.take(); len(back) != 3 {
		t.Errorf("take after putBack = %v, want the 3 days", back)
	}

	for i := range maxVerifyCountKeys {
		c.add(int64(i), day, 1, 0, 0)
	}
	c.add(-1, day, 1, 0, 0) // a new pair past the bound: dropped
	c.add(0, day, 1, 0, 0)  // a known pair: counted
	got, dropped = c.take()
	if len(got) != maxVerifyCountKeys || dropped != 1 {
		t.Fatalf("take = %d days, %d dropped; want %d, 1", len(got), dropped, maxVerifyCountKeys)
	}
	for _, d := range got {
		if d.UserID == 0 && d.Successes != 2 {
			t.Errorf("user 0 = %+v, want 2 successes", d)
		}
	}
}

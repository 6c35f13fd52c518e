package minutes

import (
	"slices"
	"testing"
	"time"
)

// TestCounts: events count per key and minute; Take returns only the
// minutes that ended, oldest first then by key, and forgets them; past
// max keys, new keys count under their overflow key.
func TestCounts(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 10, 0, time.UTC)
	var c Counts[string]
	over := func(string) string { return "*" }
	for _, e := range []struct {
		key string
		at  time.Duration
	}{{"bob", 0}, {"alice", 5 * time.Second}, {"bob", 20 * time.Second}, {"carol", 40 * time.Second}, {"dave", 45 * time.Second}, {"bob", 70 * time.Second}} {
		c.Add(e.key, t0.Add(e.at), 3, over)
	}
	less := func(a, b string) bool { return a < b }
	if got := c.Take(t0.Add(40*time.Second), false, less); len(got) != 0 {
		t.Fatalf("Take before the minute ended = %v", got)
	}
	m0 := t0.Truncate(time.Minute)
	want := []Minute[string]{{"*", m0, 1}, {"alice", m0, 1}, {"bob", m0, 2}, {"carol", m0, 1}}
	if got := c.Take(t0.Add(55*time.Second), false, less); !slices.Equal(got, want) {
		t.Fatalf("Take after the first minute = %v, want %v", got, want)
	}
	want = []Minute[string]{{"*", m0.Add(time.Minute), 1}} // four keys held when it came
	if got := c.Take(t0.Add(55*time.Second), true, less); !slices.Equal(got, want) {
		t.Fatalf("Take all = %v, want %v", got, want)
	}
	if got := c.Take(t0.Add(time.Hour), true, less); len(got) != 0 {
		t.Fatalf("Take after everything was taken = %v", got)
	}
}

package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testClockHistory checks an appliance's clock history: one sample per
// minute, listed oldest first from a time on, pruned by age, gone with
// the appliance.
func testClockHistory(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAppliance(t, s, "app-c1", "Clock one", 1)
	b := mkAppliance(t, s, "app-c2", "Clock two", 2)
	min0 := t0.Truncate(time.Minute)

	sample := func(at time.Time, off time.Duration) store.ClockSample {
		return store.ClockSample{At: at, Offset: off, Bound: 40 * time.Millisecond, State: "SYNCED"}
	}
	appendOK := func(id string, c store.ClockSample, want bool) {
		t.Helper()
		got, err := s.AppendClockSample(ctx, id, c)
		must(t, "AppendClockSample", err)
		if got != want {
			t.Errorf("AppendClockSample(%s, %v) = %v, want %v", id, c.At, got, want)
		}
	}
	// t0 is 10:00:00.123456: its minute is 10:00.
	appendOK(a.ID, sample(t0, -30*time.Millisecond), true)
	appendOK(a.ID, sample(t0.Add(20*time.Second), time.Second), false) // same minute: kept the first
	appendOK(a.ID, sample(t0.Add(time.Minute), 5*time.Millisecond), true)
	appendOK(a.ID, sample(t0.Add(3*time.Minute), -2*time.Millisecond), true)
	appendOK(b.ID, sample(t0, 7*time.Millisecond), true) // another appliance, same minute
	if _, err := s.AppendClockSample(ctx, "no-such", sample(t0, 0)); err == nil {
		t.Errorf("AppendClockSample(missing appliance) = nil error")
	}
	if _, err := s.AppendClockSample(ctx, a.ID, store.ClockSample{State: "SYNCED"}); err == nil {
		t.Errorf("AppendClockSample(zero time) = nil error")
	}

	got, err := s.ClockSamples(ctx, a.ID, time.Time{})
	must(t, "ClockSamples", err)
	want := []store.ClockSample{
		sample(min0, -30*time.Millisecond),
		sample(min0.Add(time.Minute), 5*time.Millisecond),
		sample(min0.Add(3*time.Minute), -2*time.Millisecond),
	}
	if s, w := fmtSamples(got), fmtSamples(want); s != w {
		t.Errorf("ClockSamples(all) =\n%s\nwant\n%s", s, w)
	}
	got, err = s.ClockSamples(ctx, a.ID, min0.Add(time.Minute))
	must(t, "ClockSamples(since)", err)
	if s, w := fmtSamples(got), fmtSamples(want[1:]); s != w {
		t.Errorf("ClockSamples(since 10:01) =\n%s\nwant\n%s", s, w)
	}

	n, err := s.DeleteClockSamples(ctx, min0.Add(time.Minute))
	must(t, "DeleteClockSamples", err)
	if n != 2 { // a's 10:00 and b's 10:00
		t.Errorf("DeleteClockSamples = %d, want 2", n)
	}
	got, err = s.ClockSamples(ctx, a.ID, time.Time{})
	must(t, "ClockSamples(after prune)", err)
	if s, w := fmtSamples(got), fmtSamples(want[1:]); s != w {
		t.Errorf("ClockSamples after prune =\n%s\nwant\n%s", s, w)
	}
	if got, _ := s.ClockSamples(ctx, b.ID, time.Time{}); len(got) != 0 {
		t.Errorf("ClockSamples(b) after prune = %v, want none", got)
	}

	must(t, "DeleteAppliance", s.DeleteAppliance(ctx, a.ID))
	if got, _ := s.ClockSamples(ctx, a.ID, time.Time{}); len(got) != 0 {
		t.Errorf("ClockSamples after DeleteAppliance = %v, want none", got)
	}
	n, err = s.DeleteClockSamples(ctx, min0.Add(time.Hour))
	must(t, "DeleteClockSamples(after delete)", err)
	if n != 0 {
		t.Errorf("DeleteClockSamples after DeleteAppliance = %d, want 0 (samples go with their appliance)", n)
	}
}

func fmtSamples(list []store.ClockSample) string {
	out := ""
	for _, c := range list {
		out += fmt.Sprintf("%s %v %v %s\n", c.At.UTC().Format(time.RFC3339Nano), c.Offset, c.Bound, c.State)
	}
	return out
}

package server

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestFixedClockAfterRunningAhead: a phone 5.5 minutes fast verifies 13
// times, then its clock is set right. Each code it used ahead stays used,
// once, but the steps it never used are not refused: a resync with the
// right clock succeeds and the right clock's codes verify, while each of
// the phone's used codes is refused as a replay (issue 22, item 4).
func TestFixedClockAfterRunningAhead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		k, id := h.registered("fay", "Phone")
		const fast = 330 * time.Second // 11 steps
		phone := func() time.Time { return h.clock.Now().Add(fast) }
		s := enroll.Step(k, phone())
		h.mustCall(200, "POST", devPath("fay", id)+"/resync", map[string]any{"codes": []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}})
		used := map[int64]bool{s - 1: true, s: true}
		for i := range 13 {
			h.clock.Advance(90 * time.Second)
			step := enroll.Step(k, phone())
			if status, reason := h.verify("fay", enroll.CodeAt(k, step)); status != 200 {
				t.Fatalf("verify #%d from the phone 5.5 min fast = %d %q, want 200", i+1, status, reason)
			}
			used[step] = true
		}
		// The phone's clock is set right. A resync with two unused
		// consecutive codes of the right clock succeeds.
		h.clock.Advance(30 * time.Second)
		for used[enroll.Step(k, h.clock.Now())] || used[enroll.Step(k, h.clock.Now())-1] {
			h.clock.Advance(30 * time.Second)
		}
		now := enroll.Step(k, h.clock.Now())
		d := h.mustCall(200, "POST", devPath("fay", id)+"/resync", map[string]any{"codes": []string{enroll.CodeAt(k, now-1), enroll.CodeAt(k, now)}})
		if d["drift_seconds"].(float64) != 0 {
			t.Fatalf("drift after a resync with the right clock = %v s, want 0", d["drift_seconds"])
		}
		used[now-1], used[now] = true, true
		// Step by step over the span the phone ran ahead: the right
		// clock's code verifies unless the phone used that very step,
		// which is refused as a replay, once more and for good.
		var accepted, replays int
		for range 24 {
			h.clock.Advance(30 * time.Second)
			step := enroll.Step(k, h.clock.Now())
			status, reason := h.verify("fay", enroll.CodeAt(k, step))
			switch {
			case used[step] && (status != 401 || reason != core.ReasonReplay):
				t.Fatalf("code of step %+d, used ahead = %d %q, want 401 %q", step-now, status, reason, core.ReasonReplay)
			case used[step]:
				replays++
			case status != 200:
				t.Fatalf("right clock's code of step %+d, never used = %d %q, want 200", step-now, status, reason)
			default:
				accepted++
				used[step] = true
			}
		}
		if accepted == 0 || replays == 0 {
			t.Fatalf("the right clock met %d used and %d fresh steps: the test proves nothing", replays, accepted)
		}
		// No code is accepted twice: every step used, ahead or not.
		h.clock.Advance(30 * time.Second)
		for step := range used {
			if step < enroll.Step(k, h.clock.Now())-1 {
				continue // out of the window: invalid, not a replay
			}
			if status, _ := h.verify("fay", enroll.CodeAt(k, step)); status == 200 {
				t.Errorf("code of step %+d accepted twice", step-now)
			}
		}
	})
}

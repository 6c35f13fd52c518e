package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestVerifyBurstLocksWithoutOracle sends, round after round, a burst of
// wrong codes through /api/v1/verify with copies of the right code in
// flight among them. The right code is accepted at most once, or answered
// locked; it is never "already used" unless a copy was accepted, never
// "invalid"; a wrong code is never accepted nor a replay. Each burst that
// locks counts one lockout however many codes it holds past the
// threshold, so the lockouts escalate one per round to "until unlocked",
// an accepted code forgiving none (issue 11, item 11; issue 12, item 4).
func TestVerifyBurstLocksWithoutOracle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), func(c *Config) {
			c.Limits.VerifyPerUser = Rate{PerSecond: -1}
			c.Limits.VerifyPerIP = Rate{PerSecond: -1}
		})
		const threshold, maxLockouts, wrongs, rights = 4, 3, 24, 4
		h.settings(func(st *core.Settings) {
			st.LockoutThreshold, st.LockoutClear, st.LockoutMax = threshold, 5*time.Minute, maxLockouts
		})
		k, id := h.registered("kim", "Token")
		lockouts, accepted := 0, 0
		for round := 1; round <= 10; round++ {
			now := enroll.Step(k, h.clock.Now())
			right := enroll.CodeAt(k, now)
			var codes []string
			for i := range wrongs {
				if c := enroll.CodeAt(k, now+100+int64(i)); c != right {
					codes = append(codes, c)
				}
			}
			n := len(codes)
			// The right code's copies sit in the middle of the burst.
			for range rights {
				codes = append(codes[:n/2], append([]string{right}, codes[n/2:]...)...)
			}
			statuses := make([]int, len(codes))
			reasons := make([]string, len(codes))
			var wg sync.WaitGroup
			for i, c := range codes {
				wg.Go(func() {
					statuses[i], reasons[i] = h.verify("kim", c)
				})
			}
			wg.Wait()

			ok, replays := 0, 0
			for i, c := range codes {
				status, reason := statuses[i], reasons[i]
				locked := status == 401 && strings.HasPrefix(reason, core.ReasonLocked)
				switch {
				case c == right && status == 200:
					ok++
				case c == right && status == 401 && reason == core.ReasonReplay:
					replays++
				case c == right && locked:
				case c != right && (locked || status == 401 && reason == core.ReasonInvalid):
				default:
					t.Errorf("round %d: %s code = %d %q", round, map[bool]string{true: "right", false: "wrong"}[c == right], status, reason)
				}
			}
			if ok > 1 || replays > 0 && ok == 0 {
				t.Fatalf("round %d: right code accepted %d times and answered already used %d times", round, ok, replays)
			}
			accepted += ok
			d := h.device("kim", id)
			if ok == 0 {
				// Every right code was refused as locked: this burst locked
				// the device, and counted one lockout.
				lockouts++
				if d["lockouts"].(float64) != float64(lockouts) {
					t.Fatalf("round %d: lockouts = %v, want %d: %v", round, d["lockouts"], lockouts, d)
				}
			} else {
				// Accepted before the lock, which forgives nothing: the
				// burst's wrong codes locked it once more, or not yet.
				got := int(d["lockouts"].(float64))
				if got != lockouts && got != lockouts+1 {
					t.Fatalf("round %d: %d lockouts after an accepted code, want %d or %d", round, got, lockouts, lockouts+1)
				}
				lockouts = got
			}
			if lockouts == maxLockouts {
				if d["locked_until_unlocked"] != true {
					t.Fatalf("round %d: lockout %d = %v, want locked until unlocked", round, lockouts, d)
				}
				for i, c := range codes {
					if c == right && statuses[i] == 401 && reasons[i] != core.ReasonReplay && !strings.Contains(reasons[i], "ask an admin") {
						t.Errorf("round %d: right code on a device locked until unlocked = %q", round, reasons[i])
					}
				}
				break
			}
			h.clock.Advance(time.Duration(d["lockouts"].(float64)) * 10 * time.Minute) // past any lock so far, and a fresh step
			h.clock.Advance(30 * time.Second)
		}
		if lockouts != maxLockouts {
			t.Fatalf("after 10 rounds: %d lockouts, want %d", lockouts, maxLockouts)
		}
		t.Logf("right code accepted in %d rounds before the lock", accepted)
		evs, err := h.st.AuditEvents(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Action == "verify.replay" && accepted == 0 {
				t.Errorf("audited as a replay: %+v", e)
			}
		}
	})
}

package core

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestVerifyCodes: which codes a user's verify accepts and which it
// refuses, and why, against one active device with the default settings
// (a window of one step either side).
func TestVerifyCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   func(f *fixture, k enroll.Key) string // after the clock moved on a step
		ok     bool
		reason string
		audit  string
	}{
		{"current code", func(f *fixture, k enroll.Key) string { return enroll.Code(k, f.clock.Now()) }, true, "", ""},
		{"one step early", func(f *fixture, k enroll.Key) string { return enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+1) }, true, "", ""},
		{"one step late", func(f *fixture, k enroll.Key) string { return enroll.CodeAt(k, enroll.Step(k, f.clock.Now())-1) }, false, ReasonReplay, "verify.replay"},
		{"three steps ahead", func(f *fixture, k enroll.Key) string { return enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+3) }, false, ReasonInvalid, "verify.fail"},
		{"the registration's code", func(f *fixture, k enroll.Key) string { return enroll.Code(k, start) }, false, ReasonReplay, "verify.replay"},
		{"wrong digits", func(f *fixture, k enroll.Key) string { return "000000" }, false, ReasonInvalid, "verify.fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			_, d, k := f.registered("alice")
			f.clock.Advance(30 * time.Second)
			code := tc.code(f, k)
			if code == "000000" && code == enroll.Code(k, f.clock.Now()) {
				t.Skip("the key's code happens to be 000000")
			}
			res := f.verify("alice", code)
			if res.OK != tc.ok || res.Reason != tc.reason {
				t.Fatalf("verify = %+v, want ok %v reason %q", res, tc.ok, tc.reason)
			}
			if tc.ok && res.DeviceID != d.ID {
				t.Errorf("accepted by device %d, want %d", res.DeviceID, d.ID)
			}
			// An accepted code is counted, not audited; a refused one is
			// audited with its reason.
			if acts := f.actions(); tc.audit != "" && !slices.Contains(acts, tc.audit) || tc.audit == "" && slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "verify.") }) {
				t.Errorf("audit %v, want %q among the verify events", acts, tc.audit)
			}
			if tc.ok {
				if again := f.verify("alice", code); again.OK || again.Reason != ReasonReplay {
					t.Errorf("the same code again = %+v, want refused as a replay", again)
				}
			}
		})
	}
}

// TestVerifyWhoCannot: an unknown user is a 404; a user without an active
// device, a disabled user and an address over its limit are refused with
// their reasons, whatever the code.
func TestVerifyWhoCannot(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.VerifyPerIP = Rate{PerSecond: 0.001, Burst: 3} })
	ctx := context.Background()
	_, err := f.core.Verify(ctx, System, "nobody", "123456", "192.0.2.9")
	failure(t, "verify of an unknown user", err, 404, "nobody")

	bob := f.user("bob")
	f.pending(bob, "Phone")
	if res := f.verify("bob", "123456"); res.OK || res.Reason != ReasonNoDevice {
		t.Errorf("verify of a user with a pending device only = %+v, want %q", res, ReasonNoDevice)
	}
	carol, _, k := f.registered("carol")
	if err := f.core.SetDisabled(ctx, System, carol, true); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("carol", enroll.Code(k, f.clock.Now())); res.OK || res.Reason != ReasonDisabled {
		t.Errorf("verify of a disabled user = %+v, want %q", res, ReasonDisabled)
	}
	// The address had 3 (the unknown user came from another): bob's,
	// carol's and this one; the fourth waits.
	if res := f.verify("carol", enroll.Code(k, f.clock.Now())); res.Reason == ReasonRateLimited {
		t.Errorf("third verify from one address refused: %+v", res)
	}
	if res := f.verify("carol", enroll.Code(k, f.clock.Now())); res.Reason != ReasonRateLimited || res.RetryAfter <= 0 {
		t.Errorf("fourth verify from one address = %+v, want rate limited with a retry", res)
	}
}

// TestVerifyPerUserLimit: the per-user limit refuses a user's attempts
// beyond its burst, and the refusal counts no failure.
func TestVerifyPerUserLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.VerifyPerUser = Rate{PerSecond: 0.01, Burst: 2} })
	_, d, k := f.registered("dan")
	wrong := enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+50)
	for i := range 2 {
		if res := f.verify("dan", wrong); res.Reason != ReasonInvalid {
			t.Fatalf("attempt %d = %+v, want invalid", i+1, res)
		}
	}
	res := f.verify("dan", enroll.Code(k, f.clock.Now()))
	if res.Reason != ReasonRateLimited || res.RetryAfter <= 0 {
		t.Fatalf("third attempt = %+v, want rate limited", res)
	}
	if got := f.device(d.ID).FailCount; got != 2 {
		t.Errorf("fail count %d, want 2: a refused attempt is no failure", got)
	}
	f.clock.Advance(100 * time.Second)
	if res := f.verify("dan", enroll.Code(k, f.clock.Now())); !res.OK {
		t.Errorf("after the limit refilled = %+v, want accepted", res)
	}
}

// TestLockoutEscalates: each lockout in a row doubles the lock; the
// LockoutMax-th lasts until unlocked, whatever the code and however long
// one waits; an unlock clears it and the right code works again.
func TestLockoutEscalates(t *testing.T) {
	f := newFixture(t, nil)
	f.settings(func(st *Settings) { st.LockoutThreshold, st.LockoutClear, st.LockoutMax = 3, 5*time.Minute, 3 })
	u, d, k := f.registered("gina")
	wrong := func() VerifyResult { return f.verify("gina", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+100)) }
	for n, lock := range []time.Duration{5 * time.Minute, 10 * time.Minute} {
		for i := range 3 {
			if res := wrong(); res.Reason != ReasonInvalid {
				t.Fatalf("lockout %d, wrong code %d = %+v, want invalid", n+1, i+1, res)
			}
		}
		got := f.device(d.ID)
		if want := f.clock.Now().Add(lock); !got.LockedUntil.Equal(want) || got.Lockouts != n+1 {
			t.Fatalf("lockout %d: locked until %v (lockouts %d), want %v", n+1, got.LockedUntil, got.Lockouts, want)
		}
		res := f.verify("gina", enroll.Code(k, f.clock.Now()))
		if res.OK || !strings.HasPrefix(res.Reason, ReasonLocked) || !strings.Contains(res.Reason, "try again after") {
			t.Fatalf("right code while locked = %+v, want locked with its end", res)
		}
		f.clock.Advance(lock)
	}
	for range 3 {
		wrong()
	}
	if got := f.device(d.ID); !got.LockedUntil.Equal(store.Indefinitely) {
		t.Fatalf("third lockout: locked until %v, want until unlocked", got.LockedUntil)
	}
	f.clock.Advance(365 * 24 * time.Hour)
	f.core.Sweep(context.Background())
	if res := f.verify("gina", enroll.Code(k, f.clock.Now())); res.OK || !strings.Contains(res.Reason, "ask an admin") {
		t.Fatalf("right code a year later = %+v, want locked until an admin unlocks", res)
	}
	if err := f.core.UnlockDevice(context.Background(), Actor{Name: "root", Role: RoleAdmin}, u, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.device(d.ID); !got.LockedUntil.IsZero() || got.Lockouts != 0 {
		t.Fatalf("after unlock: locked until %v, lockouts %d", got.LockedUntil, got.Lockouts)
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("gina", enroll.Code(k, f.clock.Now())); !res.OK {
		t.Fatalf("right code after unlock = %+v", res)
	}
	acts := f.actions()
	if n := count(acts, "device.lock"); n != 3 {
		t.Errorf("%d device.lock events, want 3: %v", n, acts)
	}
	if !slices.Contains(acts, "device.unlock") {
		t.Errorf("no device.unlock in %v", acts)
	}
}

// TestLockoutClearsByItself: a first lockout ends after LockoutClear and
// the right code is accepted then, the end audited as an unlock by the
// system.
func TestLockoutClearsByItself(t *testing.T) {
	f := newFixture(t, nil)
	f.settings(func(st *Settings) { st.LockoutThreshold, st.LockoutClear = 2, time.Minute })
	_, d, k := f.registered("hugo")
	for range 2 {
		f.verify("hugo", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+100))
	}
	if f.device(d.ID).LockedUntil.IsZero() {
		t.Fatal("two wrong codes did not lock at a threshold of 2")
	}
	f.clock.Advance(time.Minute + 30*time.Second)
	if res := f.verify("hugo", enroll.Code(k, f.clock.Now())); !res.OK {
		t.Fatalf("right code after the lock ran out = %+v", res)
	}
	if got := f.device(d.ID); !got.LockedUntil.IsZero() {
		t.Errorf("still locked until %v", got.LockedUntil)
	}
}

// TestLockedByAnotherServer: a device locked in the store behind the
// core's cache is answered as locked for a right, a used and a wrong
// code alike, and none of them is audited as a replay.
func TestLockedByAnotherServer(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CacheTTL = time.Hour })
	_, d, k := f.registered("frank")
	f.clock.Advance(30 * time.Second)
	used := enroll.Code(k, f.clock.Now())
	if res := f.verify("frank", used); !res.OK {
		t.Fatalf("first verify = %+v", res)
	}
	for range 10 {
		if _, err := f.st.RecordFailure(context.Background(), d.ID, store.Lockout{Threshold: 10, Base: time.Hour}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(30 * time.Second)
	for name, code := range map[string]string{"right": enroll.Code(k, f.clock.Now()), "used": used, "wrong": enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+50)} {
		if res := f.verify("frank", code); res.OK || !strings.HasPrefix(res.Reason, ReasonLocked) {
			t.Errorf("%s code on a device locked meanwhile = %+v, want locked", name, res)
		}
	}
	if slices.Contains(f.actions(), "verify.replay") {
		t.Errorf("a code refused because the device is locked was audited as a replay: %v", f.actions())
	}
}

// TestDisabledAtOnceDespiteCache: a user disabled through the core is
// refused at once, even with a long cache.
func TestDisabledAtOnceDespiteCache(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CacheTTL = time.Hour })
	u, _, k := f.registered("hana")
	f.clock.Advance(30 * time.Second)
	if res := f.verify("hana", enroll.Code(k, f.clock.Now())); !res.OK {
		t.Fatalf("verify = %+v", res)
	}
	if err := f.core.SetDisabled(context.Background(), System, u, true); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("hana", enroll.Code(k, f.clock.Now())); res.Reason != ReasonDisabled {
		t.Fatalf("verify right after disabling = %+v, want %q", res, ReasonDisabled)
	}
	u.Disabled = true
	if err := f.core.SetDisabled(context.Background(), System, u, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("hana", enroll.Code(k, f.clock.Now())); !res.OK {
		t.Fatalf("verify after enabling again = %+v", res)
	}
}

// TestDriftFollowsTheClock: codes that keep matching one step ahead move
// the learned drift by one after DriftVotes verifies in a row; a single
// one moves nothing.
func TestDriftFollowsTheClock(t *testing.T) {
	f := newFixture(t, nil)
	_, d, k := f.registered("ivy")
	ahead := func() VerifyResult {
		f.clock.Advance(30 * time.Second)
		return f.verify("ivy", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+1))
	}
	for i := range DriftVotes {
		if res := ahead(); !res.OK {
			t.Fatalf("code one step ahead, %d = %+v", i+1, res)
		}
		want := int64(0)
		if i == DriftVotes-1 {
			want = 1
		}
		if got := f.device(d.ID).DriftSteps; got != want {
			t.Fatalf("after %d codes one step ahead the drift is %d, want %d", i+1, got, want)
		}
	}
	if !slices.Contains(f.actions(), "device.drift") {
		t.Errorf("the drift's move was not audited: %v", f.actions())
	}
}

// TestNextDrift is the drift rule step by step.
func TestNextDrift(t *testing.T) {
	for _, tc := range []struct {
		drift     int64
		votes     int
		offset    int64
		wantDrift int64
		wantVotes int
	}{
		{0, 0, 0, 0, 0},
		{0, 0, 1, 0, 1},
		{0, 2, 1, 1, 0},
		{0, -2, 1, 0, 1},
		{0, -2, -1, -1, 0},
		{3, 1, 3, 3, 0},
		{DriftWalkLimit, 2, DriftWalkLimit + 1, DriftWalkLimit, 0},
		{DriftWalkLimit + 5, -2, 0, DriftWalkLimit + 4, 0},
		{-DriftWalkLimit, -2, -DriftWalkLimit - 1, -DriftWalkLimit, 0},
	} {
		drift, votes := nextDrift(store.Device{DriftSteps: tc.drift, DriftVotes: tc.votes}, tc.offset)
		if drift != tc.wantDrift || votes != tc.wantVotes {
			t.Errorf("nextDrift(drift %d, votes %d, offset %d) = %d, %d; want %d, %d", tc.drift, tc.votes, tc.offset, drift, votes, tc.wantDrift, tc.wantVotes)
		}
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

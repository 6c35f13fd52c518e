package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// errName names a RecordUse result for messages.
func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrStale):
		return "stale"
	case errors.Is(err, store.ErrNotFound):
		return "not found"
	}
	return err.Error()
}

func testRecordUses(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	a := mkActive(t, s, alice.ID, "Phone")
	c := mkActive(t, s, alice.ID, "Kiosk")
	locked := mkActive(t, s, alice.ID, "Locked")
	p := mkDevice(t, s, pending(alice.ID, "Pending", t0.Add(time.Hour)))
	lockEnd := t0.Add(time.Hour)
	for range 3 {
		fail(t, s, locked.ID, 3, lockEnd)
	}
	fail(t, s, c.ID, 10, t0.Add(time.Hour))

	if errs := s.RecordUses(ctx, nil); len(errs) != 0 {
		t.Errorf("RecordUses(nil) = %v, want no results", errs)
	}
	at := t0.Add(30 * time.Second)
	// Out of device order on purpose: uses of one device apply in the
	// given order, whatever the order of devices.
	tests := []struct {
		name string
		u    store.UseStep
		want error
	}{
		{"kiosk, next step", store.UseStep{DeviceID: c.ID, Step: step0 + 1, Drift: -1, At: at}, nil},
		{"phone", store.UseStep{DeviceID: a.ID, Step: step0, Drift: 1, At: at}, nil},
		{"phone, same step again", store.UseStep{DeviceID: a.ID, Step: step0, Drift: 2, At: at}, store.ErrStale},
		{"phone, older step", store.UseStep{DeviceID: a.ID, Step: step0 - 1, At: at}, store.ErrStale},
		{"locked", store.UseStep{DeviceID: locked.ID, Step: step0, At: lockEnd.Add(-time.Second)}, store.ErrStale},
		{"pending", store.UseStep{DeviceID: p.ID, Step: step0, At: at}, store.ErrStale},
		{"missing device", store.UseStep{DeviceID: p.ID + 100, Step: step0, At: at}, store.ErrNotFound},
		{"kiosk, same step again", store.UseStep{DeviceID: c.ID, Step: step0 + 1, At: at}, store.ErrStale},
	}
	us := make([]store.UseStep, len(tests))
	for i, tc := range tests {
		us[i] = tc.u
	}
	errs := s.RecordUses(ctx, us)
	if len(errs) != len(us) {
		t.Fatalf("RecordUses of %d uses gave %d results", len(us), len(errs))
	}
	for i, tc := range tests {
		if !errors.Is(errs[i], tc.want) || (tc.want == nil) != (errs[i] == nil) {
			t.Errorf("RecordUses: %s = %v, want %v", tc.name, errs[i], tc.want)
		}
	}
	if got := getDevice(t, s, a.ID); got.LastUsedStep != step0 || got.DriftSteps != 1 || !got.LastUsed.Equal(at) {
		t.Errorf("phone after RecordUses: step %d drift %d used %v, want %d 1 %v", got.LastUsedStep, got.DriftSteps, got.LastUsed, step0, at)
	}
	if got := getDevice(t, s, c.ID); got.LastUsedStep != step0+1 || got.DriftSteps != -1 || got.FailCount != 1 {
		t.Errorf("kiosk after RecordUses: step %d drift %d fails %d, want %d -1 1 (a use forgives no failure)", got.LastUsedStep, got.DriftSteps, got.FailCount, step0+1)
	}
	if got := getDevice(t, s, locked.ID); got.LastUsedStep != 0 || got.FailCount != 3 {
		t.Errorf("locked device after a refused use: step %d fails %d, want 0 3", got.LastUsedStep, got.FailCount)
	}
	if got := getDevice(t, s, p.ID); got.Status != store.StatusPending || got.LastUsedStep != 0 {
		t.Errorf("pending device after a refused use: %s step %d", got.Status, got.LastUsedStep)
	}

	// A higher step first makes a lower one of the same device stale.
	errs = s.RecordUses(ctx, []store.UseStep{
		{DeviceID: a.ID, Step: step0 + 3, At: at},
		{DeviceID: a.ID, Step: step0 + 2, At: at},
		{DeviceID: locked.ID, Step: step0 + 1, At: lockEnd},
	})
	if errs[0] != nil || !errors.Is(errs[1], store.ErrStale) || errs[2] != nil {
		t.Errorf("RecordUses(step+3, step+2, lock ended) = %s, %s, %s; want ok, stale, ok", errName(errs[0]), errName(errs[1]), errName(errs[2]))
	}
	if got := getDevice(t, s, locked.ID); got.LastUsedStep != step0+1 || got.FailCount != 3 || got.Lockouts != 1 {
		t.Errorf("after a use at the lock's end: step %d fails %d lockouts %d, want %d 3 1 (a use forgives no failure)", got.LastUsedStep, got.FailCount, got.Lockouts, step0+1)
	}

	// A batch whose context has ended records nothing.
	done, cancel := context.WithCancel(ctx)
	cancel()
	errs = s.RecordUses(done, []store.UseStep{{DeviceID: a.ID, Step: step0 + 10, At: at}, {DeviceID: c.ID, Step: step0 + 10, At: at}})
	for i, err := range errs {
		if err == nil {
			t.Errorf("RecordUses with a cancelled context: use %d recorded", i)
		}
	}
	if got := getDevice(t, s, a.ID); got.LastUsedStep != step0+3 {
		t.Errorf("after a cancelled RecordUses: step %d, want %d", got.LastUsedStep, step0+3)
	}
}

// testConcurrentRecordUses runs batches at once, as two servers sharing a
// database do: each batch holds the same step of every device, in
// different orders, so each step must be accepted exactly once (and, on
// PostgreSQL, the batches must not deadlock).
func testConcurrentRecordUses(t *testing.T, s store.Store) {
	alice := mkUser(t, s, "alice")
	var devs []store.Device
	for i := range 8 {
		devs = append(devs, mkActive(t, s, alice.ID, fmt.Sprintf("Device %d", i)))
	}
	const batches = 16
	accepted := make([]int, len(devs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for k := range batches {
		wg.Go(func() {
			us := make([]store.UseStep, len(devs))
			for i := range devs {
				d := devs[(i+k)%len(devs)]
				us[i] = store.UseStep{DeviceID: d.ID, Step: step0, At: t0}
			}
			<-start
			errs := s.RecordUses(context.Background(), us)
			mu.Lock()
			defer mu.Unlock()
			for i, err := range errs {
				switch {
				case err == nil:
					accepted[(i+k)%len(devs)]++
				case !errors.Is(err, store.ErrStale):
					t.Errorf("concurrent RecordUses: %v", err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i, n := range accepted {
		if n != 1 {
			t.Errorf("device %d: step accepted %d times by %d concurrent batches, want once", i, n, batches)
		}
	}
}

// testUseBatcher checks the batcher keeps RecordUse's promise: of many
// concurrent uses of one code, exactly one succeeds.
func testUseBatcher(t *testing.T, s store.Store) {
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	other := mkActive(t, s, alice.ID, "Tablet")
	b := store.NewUseBatcher(s)
	const n = 64
	for _, step := range []int64{step0, step0 + 1} {
		ok, stale := concurrent(t, n, func() error {
			return b.RecordUse(context.Background(), store.UseStep{DeviceID: d.ID, Step: step, At: t0})
		})
		if ok != 1 || stale != n-1 {
			t.Errorf("%d concurrent batched uses of step %d: %d succeeded, %d stale; want 1, %d", n, step, ok, stale, n-1)
		}
	}

	// Two devices, several steps at once: each (device, step) is accepted
	// at most once and the highest step ends up recorded.
	var mu sync.Mutex
	type key struct{ id, step int64 }
	accepted := map[key]int{}
	i := int64(0)
	concurrent(t, n, func() error {
		mu.Lock()
		i++
		k := key{d.ID, step0 + 1 + i%8}
		if i%2 == 0 {
			k.id = other.ID
		}
		mu.Unlock()
		err := b.RecordUse(context.Background(), store.UseStep{DeviceID: k.id, Step: k.step, At: t0})
		if err == nil {
			mu.Lock()
			accepted[k]++
			mu.Unlock()
		}
		return err
	})
	for k, n := range accepted {
		if n != 1 {
			t.Errorf("device %d step %d accepted %d times", k.id, k.step, n)
		}
	}
	// Odd calls use d with steps +2, +4, +6, +8; even ones other with
	// +1, +3, +5, +7.
	if got := getDevice(t, s, d.ID); got.LastUsedStep != step0+8 {
		t.Errorf("LastUsedStep = %d, want %d", got.LastUsedStep, step0+8)
	}
	if got := getDevice(t, s, other.ID); got.LastUsedStep != step0+7 {
		t.Errorf("other's LastUsedStep = %d, want %d", got.LastUsedStep, step0+7)
	}

	// Results are RecordUse's: a missing device, a replay.
	ctx := t.Context()
	wantErr(t, "batched RecordUse(missing)", b.RecordUse(ctx, store.UseStep{DeviceID: d.ID + 100, Step: step0, At: t0}), store.ErrNotFound)
	wantErr(t, "batched RecordUse(replay)", b.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 7, At: t0}), store.ErrStale)
	must(t, "batched RecordUse", b.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 9, Drift: 1, At: t0}))
	if got := getDevice(t, s, d.ID); got.LastUsedStep != step0+9 || got.DriftSteps != 1 {
		t.Errorf("after batched RecordUse: step %d drift %d, want %d 1", got.LastUsedStep, got.DriftSteps, step0+9)
	}

	// A use whose context has ended is not recorded.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.RecordUse(done, store.UseStep{DeviceID: d.ID, Step: step0 + 20, At: t0}); !errors.Is(err, context.Canceled) {
		t.Errorf("batched RecordUse with a cancelled context = %v, want %v", err, context.Canceled)
	}
	if got := getDevice(t, s, d.ID); got.LastUsedStep != step0+9 {
		t.Errorf("a cancelled use was recorded: step %d, want %d", got.LastUsedStep, step0+9)
	}
}

func testUserDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "Alice")
	bob := mkUser(t, s, "bob")
	phone := mkActive(t, s, alice.ID, "Phone")
	p := mkDevice(t, s, pending(alice.ID, "Tablet", t0.Add(time.Hour)))
	mkActive(t, s, bob.ID, "Bob's phone")
	// Named first, created last: devices come oldest first, not by name.
	alarm := mkActive(t, s, alice.ID, "Alarm clock")
	fail(t, s, phone.ID, 1, t0.Add(time.Minute))
	phone = getDevice(t, s, phone.ID)
	p = getDevice(t, s, p.ID)

	u, devs, err := s.UserDevices(ctx, "ALICE")
	must(t, "UserDevices", err)
	want, err := s.UserByName(ctx, "alice")
	must(t, "UserByName", err)
	if !equalUser(u, want) {
		t.Errorf("UserDevices user = %+v, want %+v", u, want)
	}
	if len(devs) != 3 || !equalDevice(devs[0], phone) || !equalDevice(devs[1], p) || !equalDevice(devs[2], alarm) {
		t.Errorf("UserDevices devices = %+v, want %+v, %+v and %+v", devs, phone, p, alarm)
	}

	carol := mkUser(t, s, "carol")
	u, devs, err = s.UserDevices(ctx, "carol")
	must(t, "UserDevices(no devices)", err)
	if !equalUser(u, carol) || len(devs) != 0 {
		t.Errorf("UserDevices(carol) = %+v, %d devices; want %+v, none", u, len(devs), carol)
	}
	_, _, err = s.UserDevices(ctx, "dave")
	wantErr(t, "UserDevices(unknown)", err, store.ErrNotFound)
}

// testTakeTokenUserDevices: on a store with shared rate buckets
// (PostgreSQL), the take and read in one statement reads what UserDevices
// reads, takes from the bucket TakeToken takes from, and returns no user
// once the bucket is empty. SQLite keeps no buckets: nothing to test.
func testTakeTokenUserDevices(t *testing.T, s store.Store) {
	b, ok := s.(store.RateBuckets)
	if !ok {
		t.Skipf("%s keeps no shared rate buckets", s)
	}
	ctx := t.Context()
	alice := mkUser(t, s, "Alice")
	phone := mkActive(t, s, alice.ID, "Phone")
	p := mkDevice(t, s, pending(alice.ID, "Tablet", t0.Add(time.Hour)))
	mkUser(t, s, "carol")
	wantU, wantDevs, err := s.UserDevices(ctx, "alice")
	must(t, "UserDevices", err)
	take := store.TokenTake{Scope: "verify-user", Key: "alice", PerSecond: 1, Burst: 3, Now: t0}

	ok, left, u, devs, err := b.TakeTokenUserDevices(ctx, take, "ALICE")
	must(t, "TakeTokenUserDevices", err)
	if !ok || left != 2 {
		t.Errorf("first take = %v, %v tokens left; want true, 2", ok, left)
	}
	if !equalUser(u, wantU) || len(devs) != 2 || !equalDevice(devs[0], phone) || !equalDevice(devs[1], p) ||
		!equalDevice(devs[0], wantDevs[0]) {
		t.Errorf("TakeTokenUserDevices = %+v, %+v; want %+v, %+v", u, devs, wantU, wantDevs)
	}
	// The same bucket as TakeToken's.
	if ok, _, err := b.TakeToken(ctx, take.Scope, take.Key, take.PerSecond, take.Burst, take.Now); err != nil || !ok {
		t.Fatalf("TakeToken = %v, %v; want a token", ok, err)
	}
	ok, _, u, devs, err = b.TakeTokenUserDevices(ctx, take, "alice")
	must(t, "TakeTokenUserDevices(last token)", err)
	if !ok || u.ID != alice.ID || len(devs) != 2 {
		t.Errorf("last token = %v, user %d, %d devices; want true, %d, 2", ok, u.ID, len(devs), alice.ID)
	}
	ok, left, u, devs, err = b.TakeTokenUserDevices(ctx, take, "alice")
	must(t, "TakeTokenUserDevices(empty bucket)", err)
	if ok || left >= 1 || u.ID != 0 || len(devs) != 0 {
		t.Errorf("empty bucket = %v, %v left, user %d, %d devices; want false, <1, no user, none", ok, left, u.ID, len(devs))
	}

	take.Key = "carol"
	ok, _, u, devs, err = b.TakeTokenUserDevices(ctx, take, "carol")
	must(t, "TakeTokenUserDevices(no devices)", err)
	if !ok || u.Username != "carol" || len(devs) != 0 {
		t.Errorf("carol = %v, %+v, %d devices; want true, carol, none", ok, u, len(devs))
	}
	take.Key = "dave"
	ok, left, _, _, err = b.TakeTokenUserDevices(ctx, take, "dave")
	wantErr(t, "TakeTokenUserDevices(unknown)", err, store.ErrNotFound)
	if !ok || left != 2 {
		t.Errorf("unknown user's take = %v, %v left; want true, 2 (the token is taken)", ok, left)
	}
}

func equalUser(a, b store.User) bool {
	return a.ID == b.ID && a.Username == b.Username && a.DisplayName == b.DisplayName && a.Email == b.Email &&
		a.PasswordHash == b.PasswordHash && a.Admin == b.Admin && a.Disabled == b.Disabled && sameTime(a.Created, b.Created)
}

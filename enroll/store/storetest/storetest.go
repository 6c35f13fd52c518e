package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// t0 is the suite's "now": the store takes times from its callers.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)

// step0 is a plausible TOTP step (30 s) near t0.
var step0 = t0.Unix() / 30

// Run runs the conformance suite against the stores open returns; each
// subtest gets a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"ListUsers", testListUsers},
		{"UpdateUser", testUpdateUser},
		{"CountAdmins", testCountAdmins},
		{"Devices", testDevices},
		{"RenameDeleteDevice", testRenameDeleteDevice},
		{"ActivateDevice", testActivateDevice},
		{"ConcurrentActivate", testConcurrentActivate},
		{"RecordUse", testRecordUse},
		{"ConcurrentRecordUse", testConcurrentRecordUse},
		{"RecordUses", testRecordUses},
		{"ConcurrentRecordUses", testConcurrentRecordUses},
		{"UseBatcher", testUseBatcher},
		{"UserDevices", testUserDevices},
		{"CreateUsersDevices", testCreateUsersDevices},
		{"TakeTokenUserDevices", testTakeTokenUserDevices},
		{"Lockout", testLockout},
		{"LockoutEscalates", testLockoutEscalates},
		{"AcceptChecksState", testAcceptChecksState},
		{"SetDrift", testSetDrift},
		{"ExpiredPending", testExpiredPending},
		{"Settings", testSettings},
		{"Audit", testAudit},
		{"AuditCursor", testAuditCursor},
		{"AuditFilters", testAuditFilters},
		{"WebhookOutbox", testWebhookOutbox},
		{"FinishDeliveries", testFinishDeliveries},
		{"FinishAndClaimDeliveries", testFinishAndClaimDeliveries},
		{"Atomic", testAtomic},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ApplianceAlerts", testApplianceAlerts},
		{"Tokens", testTokens},
		{"SCIM", testSCIM},
		{"Sessions", testSessions},
		{"Pairing", testPairing},
		{"Appliances", testAppliances},
		{"ChangeLog", testChangeLog},
		{"DevicesOnAppliance", testDevicesOnAppliance},
		{"AdoptDevices", testAdoptDevices},
		{"Unpair", testUnpair},
		{"Replacement", testReplacement},
		{"ReplacementDropAccount", testDropAccount},
		{"ClockHistory", testClockHistory},
		{"VerifyDaily", testVerifyDaily},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Nonces", testNonces},
		{"ConcurrentNonce", testConcurrentNonce},
		{"SyncAppliance", testSyncAppliance},
		{"DirectoryLinks", testDirectoryLinks},
		{"Leases", testLeases},
		{"HardwareTokens", testHardwareTokens},
		{"AdvanceCounter", testAdvanceCounter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mkUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u := store.User{Username: name, DisplayName: "User " + name, Email: name + "@example.com", Created: t0}
	must(t, "CreateUser("+name+")", s.CreateUser(t.Context(), &u))
	return u
}

func sealed(n byte) store.Sealed {
	return store.Sealed{KeyID: "key1", Ciphertext: []byte{n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
}

func pending(userID int64, name string, expires time.Time) store.Device {
	return store.Device{
		UserID: userID, Name: name, Kind: store.KindAuthenticatorApp, Status: store.StatusPending,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: sealed(1), Created: t0, ExpiresAt: expires,
	}
}

func mkDevice(t *testing.T, s store.Store, d store.Device) store.Device {
	t.Helper()
	must(t, "CreateDevice("+d.Name+")", s.CreateDevice(t.Context(), &d))
	return d
}

// mkActive creates an active MFA device of user userID.
func mkActive(t *testing.T, s store.Store, userID int64, name string) store.Device {
	t.Helper()
	d := pending(userID, name, time.Time{})
	d.Status, d.Registered = store.StatusActive, t0
	return mkDevice(t, s, d)
}

func getDevice(t *testing.T, s store.Store, id int64) store.Device {
	t.Helper()
	d, err := s.Device(t.Context(), id)
	must(t, fmt.Sprintf("Device(%d)", id), err)
	return d
}

func sameTime(a, b time.Time) bool { return a.Equal(b) && a.IsZero() == b.IsZero() }

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "Ping", s.Ping(ctx))
	u := store.User{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.com",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Admin: true}
	must(t, "CreateUser", s.CreateUser(ctx, &u))
	if u.ID == 0 || u.Created.IsZero() {
		t.Fatalf("CreateUser left ID %d, Created %v", u.ID, u.Created)
	}
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		got, err := s.UserByName(ctx, name)
		must(t, "UserByName("+name+")", err)
		if got != u {
			t.Errorf("UserByName(%q) = %+v, want %+v", name, got, u)
		}
	}
	got, err := s.UserByID(ctx, u.ID)
	must(t, "UserByID", err)
	if got != u {
		t.Errorf("UserByID = %+v, want %+v", got, u)
	}
	dup := store.User{Username: "Alice"}
	wantErr(t, "CreateUser(Alice) after alice", s.CreateUser(ctx, &dup), store.ErrConflict)
	_, err = s.UserByName(ctx, "bob")
	wantErr(t, "UserByName(bob)", err, store.ErrNotFound)
	_, err = s.UserByID(ctx, u.ID+100)
	wantErr(t, "UserByID(missing)", err, store.ErrNotFound)
	if err := s.CreateUser(ctx, &store.User{}); err == nil {
		t.Errorf("CreateUser(empty username) succeeded")
	}
	// Created is kept when given, at microsecond precision.
	b := store.User{Username: "bob", Created: t0.Add(123 * time.Nanosecond)}
	must(t, "CreateUser(bob)", s.CreateUser(ctx, &b))
	got, err = s.UserByID(ctx, b.ID)
	must(t, "UserByID(bob)", err)
	if !got.Created.Equal(t0) || got.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want %v UTC", got.Created, t0)
	}
	if b.ID == u.ID {
		t.Errorf("two users with ID %d", b.ID)
	}
}

func usernames(us []store.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func testListUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, u := range []store.User{
		{Username: "carol", DisplayName: "Carol Danvers", Email: "carol@corp.example"},
		{Username: "alice", DisplayName: "Alice Liddell", Email: "alice@example.com"},
		{Username: "Bob", DisplayName: "Robert", Email: "bob@example.com"},
		{Username: "dave_1", DisplayName: "Dave 100%", Email: "d@example.com"},
		{Username: "dave11", DisplayName: "Dave", Email: "d11@example.com"},
	} {
		must(t, "CreateUser", s.CreateUser(ctx, &u))
	}
	tests := []struct {
		query string
		limit int
		want  []string
	}{
		{"", 0, []string{"alice", "Bob", "carol", "dave11", "dave_1"}}, // byte order of lower-cased names
		{"", 2, []string{"alice", "Bob"}},
		{"ALI", 0, []string{"alice"}},
		{"robert", 0, []string{"Bob"}},
		{"corp.EXAMPLE", 0, []string{"carol"}},
		{"example", 3, []string{"alice", "Bob", "carol"}},
		{"_", 0, []string{"dave_1"}}, // LIKE wildcards match themselves
		{"%", 0, []string{"dave_1"}},
		{"e_1", 0, []string{"dave_1"}},
		{"nobody", 0, nil},
	}
	for _, tc := range tests {
		got, err := s.ListUsers(ctx, tc.query, tc.limit)
		must(t, "ListUsers", err)
		if !slices.Equal(usernames(got), tc.want) {
			t.Errorf("ListUsers(%q, %d) = %q, want %q", tc.query, tc.limit, usernames(got), tc.want)
		}
	}
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkUser(t, s, "alice")
	mkUser(t, s, "bob")
	a.Username, a.DisplayName, a.Email = "alice2", "A. L.", "a@example.org"
	a.PasswordHash, a.Admin, a.Disabled = "$argon2id$x", true, true
	must(t, "UpdateUser", s.UpdateUser(ctx, a))
	got, err := s.UserByName(ctx, "alice2")
	must(t, "UserByName(alice2)", err)
	if got != a {
		t.Errorf("after UpdateUser: %+v, want %+v", got, a)
	}
	_, err = s.UserByName(ctx, "alice")
	wantErr(t, "UserByName(old name)", err, store.ErrNotFound)

	b := a
	b.Username = "BOB"
	wantErr(t, "UpdateUser(taken name)", s.UpdateUser(ctx, b), store.ErrConflict)
	got, _ = s.UserByID(ctx, a.ID)
	if got != a {
		t.Errorf("failed UpdateUser changed the user: %+v, want %+v", got, a)
	}
	missing := a
	missing.ID += 100
	missing.Username = "nobody"
	wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, missing), store.ErrNotFound)
}

func testCountAdmins(t *testing.T, s store.Store) {
	ctx := t.Context()
	count := func(want int) {
		t.Helper()
		n, err := s.CountAdmins(ctx)
		must(t, "CountAdmins", err)
		if n != want {
			t.Errorf("CountAdmins = %d, want %d", n, want)
		}
	}
	count(0)
	mkUser(t, s, "user")
	a := store.User{Username: "root", Admin: true}
	must(t, "CreateUser", s.CreateUser(ctx, &a))
	b := store.User{Username: "root2", Admin: true}
	must(t, "CreateUser", s.CreateUser(ctx, &b))
	count(2)
	b.Disabled = true
	must(t, "UpdateUser", s.UpdateUser(ctx, b))
	count(1)
}

func testDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	d := store.Device{
		UserID: alice.ID, Name: "Kiosk token", Kind: store.KindAppliance, Status: store.StatusActive,
		Algorithm: "SHA256", Digits: 8, PeriodSec: 60, Secret: sealed(7),
		Created: t0, Registered: t0.Add(time.Minute), LastUsedStep: step0, LastUsed: t0.Add(time.Minute),
		DriftSteps: -2, FailCount: 3, LockedUntil: t0.Add(time.Hour),
	}
	must(t, "CreateDevice", s.CreateDevice(ctx, &d))
	if d.ID == 0 || d.UID == "" {
		t.Fatalf("CreateDevice left ID %d, UID %q", d.ID, d.UID)
	}
	got := getDevice(t, s, d.ID)
	if !equalDevice(got, d) {
		t.Errorf("Device = %+v\nwant %+v", got, d)
	}
	// The UID given is kept, and is what binds the secret.
	p := pending(alice.ID, "Phone", t0.Add(10*time.Minute))
	p.UID = store.NewDeviceUID()
	p = mkDevice(t, s, p)
	if got := getDevice(t, s, p.ID); got.UID != p.UID || !equalDevice(got, p) {
		t.Errorf("Device = %+v\nwant %+v", got, p)
	}

	// Friendly names are unique per user, regardless of case.
	wantErr(t, "CreateDevice(same name)", s.CreateDevice(ctx, ptr(pending(alice.ID, "kiosk TOKEN", time.Time{}))), store.ErrConflict)
	mkDevice(t, s, pending(bob.ID, "Kiosk token", time.Time{}))
	wantErr(t, "CreateDevice(missing user)", s.CreateDevice(ctx, ptr(pending(bob.ID+100, "x", time.Time{}))), store.ErrNotFound)
	for _, bad := range []store.Device{
		{UserID: alice.ID, Name: "", Kind: store.KindAppliance, Status: store.StatusPending, Secret: sealed(1)},
		{UserID: alice.ID, Name: "k", Kind: "smartcard", Status: store.StatusPending, Secret: sealed(1)},
		{UserID: alice.ID, Name: "s", Kind: store.KindAppliance, Status: "done", Secret: sealed(1)},
		{UserID: alice.ID, Name: "n", Kind: store.KindAppliance, Status: store.StatusPending},
	} {
		if err := s.CreateDevice(ctx, &bad); err == nil {
			t.Errorf("CreateDevice(%+v) succeeded", bad)
		}
	}
	_, err := s.Device(ctx, d.ID+100)
	wantErr(t, "Device(missing)", err, store.ErrNotFound)

	list, err := s.DevicesByUser(ctx, alice.ID)
	must(t, "DevicesByUser", err)
	if len(list) != 2 || list[0].ID != d.ID || list[1].ID != p.ID {
		t.Errorf("DevicesByUser(alice) = %v, want devices %d, %d", ids(list), d.ID, p.ID)
	}
	list, err = s.DevicesByUser(ctx, bob.ID+100)
	must(t, "DevicesByUser(missing)", err)
	if len(list) != 0 {
		t.Errorf("DevicesByUser(missing user) = %v, want none", ids(list))
	}
	n, err := s.CountPending(ctx)
	must(t, "CountPending", err)
	if n != 2 {
		t.Errorf("CountPending = %d, want 2", n)
	}
}

func ptr[T any](v T) *T { return &v }

func ids(ds []store.Device) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func equalDevice(a, b store.Device) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.UID == b.UID && a.Name == b.Name && a.Kind == b.Kind &&
		a.Status == b.Status && a.Algorithm == b.Algorithm && a.Digits == b.Digits && a.PeriodSec == b.PeriodSec &&
		a.Secret.KeyID == b.Secret.KeyID && string(a.Secret.Ciphertext) == string(b.Secret.Ciphertext) &&
		sameTime(a.Created, b.Created) && sameTime(a.Registered, b.Registered) && sameTime(a.ExpiresAt, b.ExpiresAt) &&
		a.LastUsedStep == b.LastUsedStep && sameTime(a.LastUsed, b.LastUsed) && a.DriftSteps == b.DriftSteps &&
		a.FailCount == b.FailCount && sameTime(a.LockedUntil, b.LockedUntil)
}

func testRenameDeleteDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	a := mkActive(t, s, alice.ID, "Phone")
	b := mkActive(t, s, alice.ID, "Tablet")
	must(t, "RenameDevice", s.RenameDevice(ctx, a.ID, "Work phone"))
	if got := getDevice(t, s, a.ID); got.Name != "Work phone" || got.UID != a.UID {
		t.Errorf("after rename: name %q uid %q, want %q %q", got.Name, got.UID, "Work phone", a.UID)
	}
	wantErr(t, "RenameDevice(taken)", s.RenameDevice(ctx, a.ID, "TABLET"), store.ErrConflict)
	must(t, "RenameDevice(own name, other case)", s.RenameDevice(ctx, b.ID, "TABLET"))
	wantErr(t, "RenameDevice(missing)", s.RenameDevice(ctx, b.ID+100, "x"), store.ErrNotFound)
	// The freed name can be taken again.
	mkActive(t, s, alice.ID, "Phone")

	must(t, "DeleteDevice", s.DeleteDevice(ctx, a.ID))
	_, err := s.Device(ctx, a.ID)
	wantErr(t, "Device(deleted)", err, store.ErrNotFound)
	wantErr(t, "DeleteDevice(again)", s.DeleteDevice(ctx, a.ID), store.ErrNotFound)
	wantErr(t, "RecordUse(deleted)", s.RecordUse(ctx, store.UseStep{DeviceID: a.ID, Step: step0, At: t0}), store.ErrNotFound)
	// IDs are never reused, even after a delete.
	c := mkActive(t, s, alice.ID, "Work phone")
	if c.ID <= b.ID {
		t.Errorf("new device got ID %d after deleting %d (max %d)", c.ID, a.ID, b.ID)
	}
}

func testActivateDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	exp := t0.Add(10 * time.Minute)
	p := mkDevice(t, s, pending(alice.ID, "Phone", exp))
	wantErr(t, "RecordUse(pending)", s.RecordUse(ctx, store.UseStep{DeviceID: p.ID, Step: step0, At: t0}), store.ErrStale)

	at := t0.Add(time.Minute)
	must(t, "ActivateDevice", s.ActivateDevice(ctx, p.ID, store.UseStep{DeviceID: p.ID, Step: step0 + 2, Drift: 1, At: at}))
	got := getDevice(t, s, p.ID)
	want := p
	want.Status, want.Registered, want.ExpiresAt = store.StatusActive, at, time.Time{}
	want.LastUsedStep, want.LastUsed, want.DriftSteps = step0+2, at, 1
	if !equalDevice(got, want) {
		t.Errorf("after ActivateDevice: %+v\nwant %+v", got, want)
	}
	wantErr(t, "ActivateDevice(active)", s.ActivateDevice(ctx, p.ID, store.UseStep{DeviceID: p.ID, Step: step0 + 3, At: at}), store.ErrStale)
	wantErr(t, "ActivateDevice(missing)", s.ActivateDevice(ctx, p.ID+100, store.UseStep{DeviceID: p.ID + 100, Step: step0, At: at}), store.ErrNotFound)

	// Expired at u.At: stays pending.
	e := mkDevice(t, s, pending(alice.ID, "Tablet", exp))
	wantErr(t, "ActivateDevice(at expiry)", s.ActivateDevice(ctx, e.ID, store.UseStep{DeviceID: e.ID, Step: step0, At: exp}), store.ErrStale)
	if got := getDevice(t, s, e.ID); got.Status != store.StatusPending {
		t.Errorf("expired device status %q, want pending", got.Status)
	}
	must(t, "ActivateDevice(just before expiry)", s.ActivateDevice(ctx, e.ID, store.UseStep{DeviceID: e.ID, Step: step0, At: exp.Add(-time.Microsecond)}))
	if got := getDevice(t, s, e.ID); got.Kind != store.KindAuthenticatorApp {
		t.Errorf("ActivateDevice without a kind changed it to %q", got.Kind)
	}

	// The kind follows what happened: an appliance accepted the offer.
	k := mkDevice(t, s, pending(alice.ID, "Kiosk token", exp))
	must(t, "ActivateDevice(kind appliance)", s.ActivateDevice(ctx, k.ID, store.UseStep{DeviceID: k.ID, Step: step0, At: at, Kind: store.KindAppliance}))
	if got := getDevice(t, s, k.ID); got.Kind != store.KindAppliance {
		t.Errorf("ActivateDevice(Kind appliance): kind %q, want appliance", got.Kind)
	}
}

// concurrent runs fn n times at once and returns how many returned nil and
// how many returned ErrStale; any other error fails the test.
func concurrent(t *testing.T, n int, fn func() error) (ok, stale int) {
	t.Helper()
	return concurrentRefused(t, n, store.ErrStale, fn)
}

// concurrentRefused runs fn n times at once and returns how many returned
// nil and how many returned refused; any other error fails the test.
func concurrentRefused(t *testing.T, n int, refused error, fn func() error) (ok, refusals int) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		errs  []error
	)
	for range n {
		wg.Go(func() {
			<-start
			err := fn()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, refused):
				refusals++
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	return ok, refusals
}

func testConcurrentActivate(t *testing.T, s store.Store) {
	alice := mkUser(t, s, "alice")
	p := mkDevice(t, s, pending(alice.ID, "Phone", t0.Add(10*time.Minute)))
	ok, stale := concurrent(t, 16, func() error {
		return s.ActivateDevice(context.Background(), p.ID, store.UseStep{DeviceID: p.ID, Step: step0, At: t0})
	})
	if ok != 1 || stale != 15 {
		t.Errorf("16 concurrent ActivateDevice: %d succeeded, %d stale; want 1, 15", ok, stale)
	}
}

func testRecordUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	fail(t, s, d.ID, 10, t0.Add(time.Hour))

	at := t0.Add(30 * time.Second)
	must(t, "RecordUse", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, Drift: -1, At: at}))
	got := getDevice(t, s, d.ID)
	if got.LastUsedStep != step0 || !got.LastUsed.Equal(at) || got.DriftSteps != -1 || got.FailCount != 1 {
		t.Errorf("after RecordUse: step %d used %v drift %d fails %d; want %d %v -1 1 (a use forgives no failure)",
			got.LastUsedStep, got.LastUsed, got.DriftSteps, got.FailCount, step0, at)
	}
	tests := []struct {
		name string
		u    store.UseStep
		want error
	}{
		{"replay", store.UseStep{DeviceID: d.ID, Step: step0, At: at.Add(time.Second)}, store.ErrStale},
		{"older step", store.UseStep{DeviceID: d.ID, Step: step0 - 1, At: at.Add(time.Second)}, store.ErrStale},
		{"missing device", store.UseStep{DeviceID: d.ID + 100, Step: step0 + 5, At: at}, store.ErrNotFound},
		{"next step", store.UseStep{DeviceID: d.ID, Step: step0 + 1, At: at.Add(30 * time.Second)}, nil},
		{"replay of next", store.UseStep{DeviceID: d.ID, Step: step0 + 1, At: at.Add(31 * time.Second)}, store.ErrStale},
	}
	for _, tc := range tests {
		err := s.RecordUse(ctx, tc.u)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("RecordUse(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := getDevice(t, s, d.ID); got.LastUsedStep != step0+1 || got.DriftSteps != 0 {
		t.Errorf("LastUsedStep %d drift %d, want %d 0: a refused RecordUse changed the device", got.LastUsedStep, got.DriftSteps, step0+1)
	}

	// A locked device refuses until its lock ends; a use then is
	// accepted and keeps the count.
	lockEnd := at.Add(5 * time.Minute)
	for range 3 {
		fail(t, s, d.ID, 3, lockEnd)
	}
	wantErr(t, "RecordUse(locked)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 2, At: lockEnd.Add(-time.Second)}), store.ErrStale)
	must(t, "RecordUse(at lock end)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 2, At: lockEnd}))
	if got := getDevice(t, s, d.ID); got.FailCount != 3 || got.LastUsedStep != step0+2 {
		t.Errorf("after RecordUse at the lock's end: fails %d step %d, want 3 and %d", got.FailCount, got.LastUsedStep, step0+2)
	}
}

func testConcurrentRecordUse(t *testing.T, s store.Store) {
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	const n = 64
	for _, step := range []int64{step0, step0 + 1} {
		ok, stale := concurrent(t, n, func() error {
			return s.RecordUse(context.Background(), store.UseStep{DeviceID: d.ID, Step: step, At: t0})
		})
		if ok != 1 || stale != n-1 {
			t.Errorf("%d concurrent RecordUse of step %d: %d succeeded, %d stale; want 1, %d", n, step, ok, stale, n-1)
		}
	}
	// Different steps at once: however they interleave, the highest step
	// ends up recorded and no step is accepted twice.
	var mu sync.Mutex
	accepted := map[int64]int{}
	i := int64(0)
	concurrent(t, n, func() error {
		mu.Lock()
		i++
		step := step0 + 1 + i%8
		mu.Unlock()
		err := s.RecordUse(context.Background(), store.UseStep{DeviceID: d.ID, Step: step, At: t0})
		if err == nil {
			mu.Lock()
			accepted[step]++
			mu.Unlock()
		}
		return err
	})
	for step, n := range accepted {
		if n != 1 {
			t.Errorf("step %d accepted %d times", step, n)
		}
	}
	if got := getDevice(t, s, d.ID); got.LastUsedStep != step0+8 {
		t.Errorf("LastUsedStep = %d, want %d", got.LastUsedStep, step0+8)
	}
}

// fail records a failed code at t0 on device id with threshold, a first
// lock ending at until, and no lock that lasts until unlocked.
func fail(t *testing.T, s store.Store, id int64, threshold int, until time.Time) store.Failure {
	t.Helper()
	f, err := s.RecordFailure(t.Context(), id, store.Lockout{Threshold: threshold, Base: until.Sub(t0)}, t0)
	must(t, "RecordFailure", err)
	return f
}

func testLockout(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	other := mkActive(t, s, alice.ID, "Tablet")
	lock := t0.Add(15 * time.Minute)
	for i := 1; i <= 4; i++ {
		f := fail(t, s, d.ID, 3, lock)
		want := store.Failure{Count: min(i, 3), Locked: i == 3, WasLocked: i == 4, FailAt: t0}
		if i >= 3 {
			want.Lockouts, want.LockedUntil = 1, lock
		}
		if f != want {
			t.Errorf("RecordFailure #%d = %+v, want %+v", i, f, want)
		}
		got := getDevice(t, s, d.ID)
		if got.FailCount != want.Count || !sameTime(got.LockedUntil, want.LockedUntil) || got.Lockouts != want.Lockouts {
			t.Errorf("after %d failures (threshold 3): count %d locked until %v lockouts %d", i, got.FailCount, got.LockedUntil, got.Lockouts)
		}
	}
	if got := getDevice(t, s, other.ID); got.FailCount != 0 || !got.LockedUntil.IsZero() {
		t.Errorf("failures leaked to another device: %d, %v", got.FailCount, got.LockedUntil)
	}
	// Threshold 0 counts but never locks.
	for range 5 {
		fail(t, s, other.ID, 0, lock)
	}
	if got := getDevice(t, s, other.ID); got.FailCount != 5 || !got.LockedUntil.IsZero() {
		t.Errorf("threshold 0: fails %d locked until %v, want 5 and none", got.FailCount, got.LockedUntil)
	}
	_, err := s.RecordFailure(ctx, d.ID+100, store.Lockout{Threshold: 3, Base: time.Minute}, t0)
	wantErr(t, "RecordFailure(missing)", err, store.ErrNotFound)

	// ClearExpiredLockouts clears only locks that have ended, and keeps
	// the fail count and the lockout level.
	cleared, err := s.ClearExpiredLockouts(ctx, lock.Add(-time.Second))
	must(t, "ClearExpiredLockouts(before)", err)
	if len(cleared) != 0 {
		t.Errorf("ClearExpiredLockouts before the lock ends = %v, want none", ids(cleared))
	}
	cleared, err = s.ClearExpiredLockouts(ctx, lock)
	must(t, "ClearExpiredLockouts", err)
	if len(cleared) != 1 || cleared[0].ID != d.ID || cleared[0].FailCount != 3 || !cleared[0].LockedUntil.IsZero() || cleared[0].Lockouts != 1 {
		t.Errorf("ClearExpiredLockouts = %+v, want device %d unlocked with 3 failures and 1 lockout", cleared, d.ID)
	}

	// UnlockDevice clears at once, but only the lock the caller saw.
	for range 3 {
		fail(t, s, d.ID, 3, lock)
	}
	seen := getDevice(t, s, d.ID).LockedUntil
	wantErr(t, "UnlockDevice(another lock)", s.UnlockDevice(ctx, d.ID, seen.Add(-time.Minute)), store.ErrStale)
	wantErr(t, "UnlockDevice(no lock seen)", s.UnlockDevice(ctx, d.ID, time.Time{}), store.ErrStale)
	if got := getDevice(t, s, d.ID); !got.LockedUntil.Equal(seen) {
		t.Errorf("a stale UnlockDevice cleared the lock: locked until %v, want %v", got.LockedUntil, seen)
	}
	must(t, "UnlockDevice", s.UnlockDevice(ctx, d.ID, seen))
	if got := getDevice(t, s, d.ID); got.FailCount != 0 || !got.LockedUntil.IsZero() || got.Lockouts != 0 {
		t.Errorf("after UnlockDevice: fails %d locked until %v lockouts %d", got.FailCount, got.LockedUntil, got.Lockouts)
	}
	wantErr(t, "UnlockDevice(missing)", s.UnlockDevice(ctx, d.ID+100, time.Time{}), store.ErrNotFound)

	// Concurrent failures are all counted.
	concurrent(t, 20, func() error {
		_, err := s.RecordFailure(context.Background(), d.ID, store.Lockout{Threshold: 100, Base: time.Minute}, t0)
		return err
	})
	if got := getDevice(t, s, d.ID); got.FailCount != 20 {
		t.Errorf("20 concurrent RecordFailure: count %d, want 20", got.FailCount)
	}
}

// testLockoutEscalates checks that each lockout in a row doubles the lock,
// that the last one lasts until unlocked, that a run-out lock keeps its
// count (the next lock comes a threshold later), that an accepted code
// forgives nothing, and that time (the leak) and an unlock do.
func testLockoutEscalates(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	rule := store.Lockout{Threshold: 2, Base: 10 * time.Minute, MaxLockouts: 3}
	now := t0
	var f store.Failure
	for n, want := range []time.Duration{10 * time.Minute, 20 * time.Minute} {
		for range 2 {
			var err error
			f, err = s.RecordFailure(ctx, d.ID, rule, now)
			must(t, "RecordFailure", err)
		}
		if !f.Locked || f.Lockouts != n+1 || !f.LockedUntil.Equal(now.Add(want)) {
			t.Fatalf("lockout %d = %+v, want locked %v from %v", n+1, f, want, now)
		}
		// Past the lock's end the count goes on.
		now = f.LockedUntil
		if _, err := s.ClearExpiredLockouts(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		var err error
		f, err = s.RecordFailure(ctx, d.ID, rule, now)
		must(t, "RecordFailure", err)
	}
	if !f.LockedUntil.Equal(store.Indefinitely) || !getDevice(t, s, d.ID).LockedIndefinitely() {
		t.Fatalf("third lockout = %+v, want locked until unlocked", f)
	}
	cleared, err := s.ClearExpiredLockouts(ctx, now.AddDate(50, 0, 0))
	must(t, "ClearExpiredLockouts", err)
	if len(cleared) != 0 {
		t.Fatalf("a lock until unlocked ran out: %v", ids(cleared))
	}
	wantErr(t, "RecordUse(locked until unlocked)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, At: now.AddDate(50, 0, 0)}), store.ErrStale)
	must(t, "UnlockDevice", s.UnlockDevice(ctx, d.ID, store.Indefinitely))

	// An accepted code forgives nothing: the next lock is the second.
	for range 2 {
		fail(t, s, d.ID, 2, t0.Add(10*time.Minute))
	}
	now = t0.Add(10 * time.Minute)
	must(t, "RecordUse", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, At: now}))
	if got := getDevice(t, s, d.ID); got.Lockouts != 1 || got.FailCount != 2 {
		t.Fatalf("after an accepted code: lockouts %d fails %d, want 1 2", got.Lockouts, got.FailCount)
	}
	rule.Leak = 24 * time.Hour
	for range 2 {
		var err error
		f, err = s.RecordFailure(ctx, d.ID, rule, now)
		must(t, "RecordFailure", err)
	}
	if f.Lockouts != 2 || !f.LockedUntil.Equal(now.Add(20*time.Minute)) {
		t.Fatalf("lockout after an accepted code = %+v, want the second, 20 minutes", f)
	}
	// Time forgives: one failure a day since the first (t0); after four
	// days the four are gone and a failure is the first again, counted
	// from then.
	now = t0.Add(4 * 24 * time.Hour)
	f, err = s.RecordFailure(ctx, d.ID, rule, now)
	must(t, "RecordFailure", err)
	if f.Count != 1 || f.Lockouts != 0 || f.Locked || !f.FailAt.Equal(now) {
		t.Fatalf("failure after four days = %+v, want count 1 from %v, no lockout", f, now)
	}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {5, 16 * time.Minute}, {60, store.MaxLock}} {
		if got, forever := (store.Lockout{Base: time.Minute}).LockFor(tc.n); got != tc.want || forever {
			t.Errorf("LockFor(%d) = %v %v, want %v", tc.n, got, forever, tc.want)
		}
	}
}

// testAcceptChecksState checks that the statement accepting a code
// refuses a disabled user and a locked device itself, whatever a caller
// read before.
func testAcceptChecksState(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	p := mkDevice(t, s, pending(alice.ID, "Tablet", t0.Add(time.Hour)))
	alice.Disabled = true
	must(t, "UpdateUser", s.UpdateUser(ctx, alice))
	wantErr(t, "RecordUse(disabled user)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, At: t0}), store.ErrStale)
	for _, e := range s.RecordUses(ctx, []store.UseStep{{DeviceID: d.ID, Step: step0, At: t0}, {DeviceID: d.ID, Step: step0 + 1, At: t0}}) {
		wantErr(t, "RecordUses(disabled user)", e, store.ErrStale)
	}
	wantErr(t, "ActivateDevice(disabled user)", s.ActivateDevice(ctx, p.ID, store.UseStep{DeviceID: p.ID, Step: step0, At: t0}), store.ErrStale)
	alice.Disabled = false
	must(t, "UpdateUser", s.UpdateUser(ctx, alice))
	must(t, "RecordUse(enabled again)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, At: t0}))
	must(t, "ActivateDevice(enabled again)", s.ActivateDevice(ctx, p.ID, store.UseStep{DeviceID: p.ID, Step: step0, At: t0, OutOfSync: true}))
	if got := getDevice(t, s, p.ID); !got.OutOfSync || got.Status != store.StatusActive {
		t.Errorf("after ActivateDevice(late code): %+v, want active and out of sync", got)
	}
}

func testSetDrift(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	d := mkActive(t, s, alice.ID, "Phone")
	must(t, "RecordUse", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0, At: t0}))
	fail(t, s, d.ID, 2, t0.Add(time.Hour))
	fail(t, s, d.ID, 2, t0.Add(time.Hour))

	at := t0.Add(time.Minute)
	must(t, "SetDrift", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 4, Drift: 2, At: at}))
	got := getDevice(t, s, d.ID)
	if got.DriftSteps != 2 || got.LastUsedStep != step0+4 || !got.LastUsed.Equal(at) || got.FailCount != 0 || !got.LockedUntil.IsZero() || got.Lockouts != 0 {
		t.Errorf("after SetDrift: %+v", got)
	}
	// Codes already used are refused, the first of the two as well.
	wantErr(t, "SetDrift(older)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step0 - 10, Drift: -12, At: at}), store.ErrStale)
	wantErr(t, "SetDrift(first code used)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 5, Drift: 3, At: at}), store.ErrStale)

	// A resync ahead of the server's clock records its steps apart, so
	// LastUsedStep stays and a resync back to the right clock works;
	// the steps used ahead stay used.
	must(t, "SetDrift(ahead)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 960, Drift: 958, At: at, Ahead: true}))
	got = getDevice(t, s, d.ID)
	if got.LastUsedStep != step0+4 || !slices.Equal(got.AheadSteps, []int64{step0 + 959, step0 + 960}) || got.DriftSteps != 958 {
		t.Errorf("after SetDrift(ahead): last used %d ahead %v drift %d, want %d [%d %d] 958",
			got.LastUsedStep, got.AheadSteps, got.DriftSteps, step0+4, step0+959, step0+960)
	}
	for _, step := range []int64{step0 + 959, step0 + 960} {
		wantErr(t, "RecordUse(step used ahead)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step, At: at, Ahead: true}), store.ErrStale)
		wantErr(t, "SetDrift(step used ahead)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step, At: at, Ahead: true}), store.ErrStale)
	}
	must(t, "RecordUse(next step ahead)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 962, Drift: 958, At: at, Ahead: true}))
	must(t, "SetDrift(back)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 6, Drift: 0, At: at}))
	got = getDevice(t, s, d.ID)
	if got.LastUsedStep != step0+6 || !slices.Equal(got.AheadSteps, []int64{step0 + 959, step0 + 960, step0 + 962}) || got.DriftSteps != 0 {
		t.Errorf("after SetDrift(back): last used %d ahead %v drift %d", got.LastUsedStep, got.AheadSteps, got.DriftSteps)
	}
	// Each step used ahead is used; the step between two of them is not
	// (issue 22, item 4).
	for s0, want := range map[int64]bool{step0 + 6: true, step0 + 7: false, step0 + 958: false, step0 + 959: true, step0 + 961: false, step0 + 962: true, step0 + 963: false} {
		if got.Used(s0) != want {
			t.Errorf("Used(step0%+d) = %v, want %v", s0-step0, !want, want)
		}
	}
	must(t, "RecordUse(between two steps used ahead)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 961, Drift: 958, At: at, Ahead: true}))
	wantErr(t, "RecordUse(it again)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 961, At: at, Ahead: true}), store.ErrStale)
	wantErr(t, "RecordUse(a step used ahead, now reached)", s.RecordUse(ctx, store.UseStep{DeviceID: d.ID, Step: step0 + 959, At: at}), store.ErrStale)
	// Folding moves the steps the server's clock reached into
	// LastUsedStep and keeps the others apart.
	must(t, "FoldAheadSteps", s.FoldAheadSteps(ctx, d.ID, step0+960))
	got = getDevice(t, s, d.ID)
	if got.LastUsedStep != step0+960 || !slices.Equal(got.AheadSteps, []int64{step0 + 961, step0 + 962}) {
		t.Errorf("after FoldAheadSteps: last used %d ahead %v, want %d [%d %d]", got.LastUsedStep, got.AheadSteps, step0+960, step0+961, step0+962)
	}
	wantErr(t, "FoldAheadSteps(no device)", s.FoldAheadSteps(ctx, d.ID+1000, step0), store.ErrNotFound)
	wantErr(t, "SetDrift(missing)", s.SetDrift(ctx, store.UseStep{DeviceID: d.ID + 100, Step: step0 + 100, At: at}), store.ErrNotFound)
}

func testExpiredPending(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	a := mkDevice(t, s, pending(alice.ID, "a", t0.Add(1*time.Minute)))
	b := mkDevice(t, s, pending(alice.ID, "b", t0.Add(2*time.Minute)))
	c := mkDevice(t, s, pending(alice.ID, "c", t0.Add(10*time.Minute)))
	mkDevice(t, s, pending(alice.ID, "never", time.Time{}))
	act := mkActive(t, s, alice.ID, "active")

	gone, err := s.DeleteExpiredPending(ctx, t0.Add(1*time.Minute)) // not before its own expiry
	must(t, "DeleteExpiredPending", err)
	if len(gone) != 0 {
		t.Errorf("DeleteExpiredPending(at a's expiry) = %v, want none", ids(gone))
	}
	gone, err = s.DeleteExpiredPending(ctx, t0.Add(5*time.Minute))
	must(t, "DeleteExpiredPending", err)
	if !slices.Equal(ids(gone), []int64{a.ID, b.ID}) || !equalDevice(gone[0], a) {
		t.Errorf("DeleteExpiredPending = %+v, want devices %d, %d", gone, a.ID, b.ID)
	}
	for _, id := range []int64{a.ID, b.ID} {
		_, err := s.Device(ctx, id)
		wantErr(t, "Device(expired)", err, store.ErrNotFound)
	}
	n, err := s.CountPending(ctx)
	must(t, "CountPending", err)
	if n != 2 {
		t.Errorf("CountPending = %d, want 2", n)
	}
	gone, err = s.DeleteExpiredPending(ctx, t0.Add(24*time.Hour))
	must(t, "DeleteExpiredPending", err)
	if !slices.Equal(ids(gone), []int64{c.ID}) {
		t.Errorf("DeleteExpiredPending(day later) = %v, want %d", ids(gone), c.ID)
	}
	getDevice(t, s, act.ID)
	// An expired name can be registered again.
	mkDevice(t, s, pending(alice.ID, "a", t0.Add(time.Hour)))

	// Expired registrations are remembered (no secret) for a week, so
	// their pages say "expired"; a device never expired is not there.
	e, err := s.ExpiredRegistration(ctx, b.ID)
	must(t, "ExpiredRegistration(b)", err)
	if e.ID != b.ID || e.UserID != alice.ID || e.Name != "b" || !e.ExpiresAt.Equal(b.ExpiresAt) || e.Status != store.StatusPending || e.Secret.Ciphertext != nil {
		t.Errorf("ExpiredRegistration(b) = %+v, want id, user, name and expiry of b, no secret", e)
	}
	_, err = s.ExpiredRegistration(ctx, act.ID)
	wantErr(t, "ExpiredRegistration(active)", err, store.ErrNotFound)
	_, err = s.DeleteExpiredPending(ctx, b.ExpiresAt.Add(store.ExpiredRegistrationMemory+time.Second))
	must(t, "DeleteExpiredPending(a week later)", err)
	_, err = s.ExpiredRegistration(ctx, b.ID)
	wantErr(t, "ExpiredRegistration(a week later)", err, store.ErrNotFound)
}

func testSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, err := s.Settings(ctx)
	must(t, "Settings", err)
	if len(m) != 0 {
		t.Errorf("Settings of a new store = %v, want empty", m)
	}
	must(t, "SetSetting", s.SetSetting(ctx, "issuer", "Example Corp"))
	must(t, "SetSetting", s.SetSetting(ctx, "lockout_threshold", "10"))
	must(t, "SetSetting", s.SetSetting(ctx, "issuer", "Example, Inc."))
	must(t, "SetSetting", s.SetSetting(ctx, "empty", ""))
	m, err = s.Settings(ctx)
	must(t, "Settings", err)
	want := map[string]string{"issuer": "Example, Inc.", "lockout_threshold": "10", "empty": ""}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("Settings = %v, want %v", m, want)
	}
	if err := s.SetSetting(ctx, "", "x"); err == nil {
		t.Errorf("SetSetting(empty name) succeeded")
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.AuditEvents(ctx, 10, 0)
	must(t, "AuditEvents", err)
	if len(got) != 0 {
		t.Errorf("AuditEvents of a new store = %v", got)
	}
	var want []store.AuditEvent
	for i := range 7 {
		e := store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Actor: "admin",
			Action: "device.register", Target: fmt.Sprintf("user:alice device:%d", i), Detail: "ok", IP: "192.0.2.1"}
		must(t, "Audit", s.Audit(ctx, e))
		want = append(want, e)
	}
	// Same time as the last one: order still follows insertion.
	must(t, "Audit", s.Audit(ctx, store.AuditEvent{Time: t0.Add(6 * time.Second), Actor: "system", Action: "verify.fail"}))
	must(t, "Audit(zero time)", s.Audit(ctx, store.AuditEvent{Actor: "system", Action: "now"}))

	all, err := s.AuditEvents(ctx, 0, 0)
	must(t, "AuditEvents", err)
	if len(all) != 9 || all[0].Action != "now" || all[0].Time.IsZero() || all[1].Action != "verify.fail" {
		t.Fatalf("AuditEvents(all) = %+v", all)
	}
	for i, e := range all[2:] {
		w := want[len(want)-1-i]
		if e.Actor != w.Actor || e.Action != w.Action || e.Target != w.Target || e.Detail != w.Detail || e.IP != w.IP || !e.Time.Equal(w.Time) {
			t.Errorf("AuditEvents[%d] = %+v, want %+v", i+2, e, w)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("AuditEvents not newest first: ID %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	// Paging: pages of 4 chained by the last ID give everything once.
	var paged []int64
	before := int64(0)
	for range 5 {
		page, err := s.AuditEvents(ctx, 4, before)
		must(t, "AuditEvents(page)", err)
		if len(page) == 0 {
			break
		}
		if len(page) > 4 {
			t.Fatalf("AuditEvents(4, %d) returned %d events", before, len(page))
		}
		for _, e := range page {
			paged = append(paged, e.ID)
		}
		before = page[len(page)-1].ID
	}
	var allIDs []int64
	for _, e := range all {
		allIDs = append(allIDs, e.ID)
	}
	if !slices.Equal(paged, allIDs) {
		t.Errorf("paged IDs %v, want %v", paged, allIDs)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.Token{Name: "ci", Hash: []byte("hash-of-ci-token-0123456789abcdef"), Created: t0}
	must(t, "CreateToken", s.CreateToken(ctx, &a))
	if a.ID == 0 {
		t.Fatalf("CreateToken left ID 0")
	}
	b := store.Token{Name: "backup", Hash: []byte("hash-of-backup-token-0123456789ab"), Scope: store.ScopeSCIM}
	must(t, "CreateToken", s.CreateToken(ctx, &b))
	if got, err := s.TokenByHash(ctx, b.Hash); err != nil || got.Scope != store.ScopeSCIM {
		t.Errorf("TokenByHash(scim token) = %+v, %v; want scope %q", got, err, store.ScopeSCIM)
	}
	if b.Created.IsZero() {
		t.Errorf("CreateToken left Created zero")
	}
	wantErr(t, "CreateToken(same name)", s.CreateToken(ctx, &store.Token{Name: "ci", Hash: []byte("other")}), store.ErrConflict)
	wantErr(t, "CreateToken(same hash)", s.CreateToken(ctx, &store.Token{Name: "x", Hash: a.Hash}), store.ErrConflict)
	if err := s.CreateToken(ctx, &store.Token{Name: "nohash"}); err == nil {
		t.Errorf("CreateToken(no hash) succeeded")
	}

	got, err := s.TokenByHash(ctx, a.Hash)
	must(t, "TokenByHash", err)
	if got.ID != a.ID || got.Name != "ci" || !got.Created.Equal(t0) || !got.LastUsed.IsZero() || got.Revoked || got.Role != "admin" || got.Scope != "" {
		t.Errorf("TokenByHash = %+v, want %+v with role admin, no scope", got, a)
	}
	// A token keeps the role it was made with.
	v := store.Token{Name: "app", Hash: []byte("hash-of-app-token-0123456789abcd"), Role: "verify"}
	must(t, "CreateToken(role verify)", s.CreateToken(ctx, &v))
	got, err = s.TokenByHash(ctx, v.Hash)
	must(t, "TokenByHash(role verify)", err)
	if got.Role != "verify" {
		t.Errorf("TokenByHash(app).Role = %q, want verify", got.Role)
	}
	must(t, "RevokeToken(app)", s.RevokeToken(ctx, "app"))
	_, err = s.TokenByHash(ctx, []byte("unknown"))
	wantErr(t, "TokenByHash(unknown)", err, store.ErrNotFound)

	used := t0.Add(time.Hour)
	must(t, "TouchToken", s.TouchToken(ctx, a.ID, used))
	wantErr(t, "TouchToken(missing)", s.TouchToken(ctx, b.ID+100, used), store.ErrNotFound)
	got, _ = s.TokenByHash(ctx, a.Hash)
	if !got.LastUsed.Equal(used) {
		t.Errorf("LastUsed = %v, want %v", got.LastUsed, used)
	}

	must(t, "RevokeToken", s.RevokeToken(ctx, "ci"))
	wantErr(t, "RevokeToken(again)", s.RevokeToken(ctx, "ci"), store.ErrNotFound)
	wantErr(t, "RevokeToken(unknown)", s.RevokeToken(ctx, "nope"), store.ErrNotFound)
	got, err = s.TokenByHash(ctx, a.Hash)
	must(t, "TokenByHash(revoked)", err)
	if !got.Revoked {
		t.Errorf("revoked token has Revoked false")
	}
	// A revoked token frees its name.
	c := store.Token{Name: "ci", Hash: []byte("hash-of-new-ci-token")}
	must(t, "CreateToken(name of revoked)", s.CreateToken(ctx, &c))

	list, err := s.ListTokens(ctx)
	must(t, "ListTokens", err)
	var names []string
	for _, tk := range list {
		names = append(names, fmt.Sprintf("%s:%v", tk.Name, tk.Revoked))
	}
	if want := []string{"ci:true", "backup:false", "app:true", "ci:false"}; !slices.Equal(names, want) {
		t.Errorf("ListTokens = %v, want %v", names, want)
	}
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	se := store.Session{Hash: []byte("session-hash-1"), UserID: alice.ID, Created: t0, ExpiresAt: t0.Add(time.Hour), CSRF: "csrf1", MFAPending: true}
	must(t, "CreateSession", s.CreateSession(ctx, se))
	wantErr(t, "CreateSession(same hash)", s.CreateSession(ctx, se), store.ErrConflict)
	wantErr(t, "CreateSession(missing user)", s.CreateSession(ctx, store.Session{Hash: []byte("x"), UserID: bob.ID + 100, ExpiresAt: t0}), store.ErrNotFound)
	got, err := s.SessionByHash(ctx, se.Hash)
	must(t, "SessionByHash", err)
	if string(got.Hash) != string(se.Hash) || got.UserID != se.UserID || !got.Created.Equal(se.Created) ||
		!got.ExpiresAt.Equal(se.ExpiresAt) || got.CSRF != se.CSRF || got.MFAPending != se.MFAPending {
		t.Errorf("SessionByHash = %+v, want %+v", got, se)
	}
	_, err = s.SessionByHash(ctx, []byte("unknown"))
	wantErr(t, "SessionByHash(unknown)", err, store.ErrNotFound)

	if got.Role != "" || got.Sites != nil {
		t.Errorf("SessionByHash: role %q sites %q, want none", got.Role, got.Sites)
	}

	se.MFAPending, se.CSRF, se.ExpiresAt = false, "csrf2", t0.Add(2*time.Hour)
	se.Role, se.Sites = "helpdesk", []string{"store-12", "store-14"}
	must(t, "UpdateSession", s.UpdateSession(ctx, se))
	got, _ = s.SessionByHash(ctx, se.Hash)
	if got.MFAPending || got.CSRF != "csrf2" || !got.ExpiresAt.Equal(se.ExpiresAt) || !got.Created.Equal(t0) ||
		got.Role != "helpdesk" || !slices.Equal(got.Sites, se.Sites) {
		t.Errorf("after UpdateSession: %+v", got)
	}
	// A session made with a role and sites keeps them.
	oidc := store.Session{Hash: []byte("session-hash-role"), UserID: bob.ID, Created: t0, ExpiresAt: t0.Add(time.Hour), Role: "auditor", Sites: []string{"hq"}}
	must(t, "CreateSession(role)", s.CreateSession(ctx, oidc))
	got, err = s.SessionByHash(ctx, oidc.Hash)
	must(t, "SessionByHash(role)", err)
	if got.Role != "auditor" || !slices.Equal(got.Sites, []string{"hq"}) {
		t.Errorf("SessionByHash(role) = role %q sites %q, want auditor [hq]", got.Role, got.Sites)
	}
	wantErr(t, "UpdateSession(unknown)", s.UpdateSession(ctx, store.Session{Hash: []byte("unknown"), UserID: alice.ID}), store.ErrNotFound)

	// Expiry: sessions ending before now go, others stay.
	short := store.Session{Hash: []byte("short"), UserID: bob.ID, Created: t0, ExpiresAt: t0.Add(time.Minute)}
	must(t, "CreateSession", s.CreateSession(ctx, short))
	must(t, "DeleteExpiredSessions", s.DeleteExpiredSessions(ctx, t0.Add(30*time.Minute)))
	_, err = s.SessionByHash(ctx, short.Hash)
	wantErr(t, "SessionByHash(expired)", err, store.ErrNotFound)
	_, err = s.SessionByHash(ctx, se.Hash)
	must(t, "SessionByHash(live)", err)

	// A user's sessions go together, and only theirs.
	second := store.Session{Hash: []byte("alice-2"), UserID: alice.ID, ExpiresAt: t0.Add(time.Hour)}
	must(t, "CreateSession", s.CreateSession(ctx, second))
	third := store.Session{Hash: []byte("bob-1"), UserID: bob.ID, ExpiresAt: t0.Add(time.Hour)}
	must(t, "CreateSession", s.CreateSession(ctx, third))
	must(t, "DeleteUserSessions", s.DeleteUserSessions(ctx, alice.ID))
	for _, h := range [][]byte{se.Hash, second.Hash} {
		_, err = s.SessionByHash(ctx, h)
		wantErr(t, "SessionByHash(after DeleteUserSessions)", err, store.ErrNotFound)
	}
	_, err = s.SessionByHash(ctx, third.Hash)
	must(t, "SessionByHash(other user)", err)

	must(t, "DeleteSession", s.DeleteSession(ctx, third.Hash))
	wantErr(t, "DeleteSession(again)", s.DeleteSession(ctx, third.Hash), store.ErrNotFound)
}

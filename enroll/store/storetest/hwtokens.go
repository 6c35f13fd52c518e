package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

func hwToken(serial string, hotp bool) store.HardwareToken {
	return store.HardwareToken{Serial: serial, HOTP: hotp, Algorithm: "SHA1", Digits: 6, PeriodSec: 30,
		Manufacturer: "Feitian", Model: "c200", Secret: sealed(7), Imported: t0}
}

// testHardwareTokens: an import is all or nothing (a serial imported
// before fails the whole batch, naming the token); tokens list by serial;
// assigning creates an active MFA device of kind hardware and links it,
// once; deleting the device frees the token.
func testHardwareTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := []store.HardwareToken{hwToken("B-2", false), hwToken("A-1", true)}
	first[1].Counter, first[1].Username = 5, "alice"
	must(t, "ImportHardwareTokens", s.ImportHardwareTokens(ctx, first))
	if first[0].ID == 0 || first[1].ID == 0 {
		t.Fatalf("ImportHardwareTokens left IDs %d, %d", first[0].ID, first[1].ID)
	}
	err := s.ImportHardwareTokens(ctx, []store.HardwareToken{hwToken("C-3", false), hwToken("A-1", false)})
	wantErr(t, "ImportHardwareTokens(serial imported before)", err, store.ErrConflict)
	if !strings.Contains(err.Error(), "A-1") {
		t.Errorf("duplicate error %q does not name the token", err)
	}
	list, err := s.ListHardwareTokens(ctx)
	must(t, "ListHardwareTokens", err)
	var serials []string
	for _, tk := range list {
		serials = append(serials, tk.Serial)
	}
	if got := strings.Join(serials, ","); got != "A-1,B-2" {
		t.Fatalf("ListHardwareTokens = %s, want A-1,B-2 (C-3 of the failed import not kept)", got)
	}
	a := list[0]
	if !a.HOTP || a.Counter != 5 || a.Username != "alice" || a.DeviceID != 0 || !a.Imported.Equal(micro(t0)) ||
		a.Manufacturer != "Feitian" || a.Model != "c200" || string(a.Secret.Ciphertext) != string(sealed(7).Ciphertext) {
		t.Errorf("HardwareToken(A-1) = %+v", a)
	}
	_, err = s.HardwareToken(ctx, "nope")
	wantErr(t, "HardwareToken(nope)", err, store.ErrNotFound)

	alice := mkUser(t, s, "alice")
	at := t0.Add(time.Minute)
	d := store.Device{UserID: alice.ID, Name: "A-1", Kind: store.KindHardware, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: sealed(8), Created: at, Registered: at, HOTP: true, Counter: 8}
	must(t, "AssignHardwareToken", s.AssignHardwareToken(ctx, "A-1", &d))
	got := getDevice(t, s, d.ID)
	if got.Kind != store.KindHardware || !got.HOTP || got.Counter != 8 || got.Status != store.StatusActive {
		t.Errorf("assigned device = kind %s hotp %v counter %d status %s", got.Kind, got.HOTP, got.Counter, got.Status)
	}
	tk, err := s.HardwareToken(ctx, "A-1")
	must(t, "HardwareToken(A-1)", err)
	if tk.DeviceID != d.ID || !tk.Assigned.Equal(micro(at)) {
		t.Errorf("assigned token: device %d assigned %v, want %d at %v", tk.DeviceID, tk.Assigned, d.ID, micro(at))
	}
	again := d
	again.ID, again.UID, again.Name = 0, "", "A-1 again"
	wantErr(t, "AssignHardwareToken(assigned)", s.AssignHardwareToken(ctx, "A-1", &again), store.ErrStale)
	wantErr(t, "AssignHardwareToken(nope)", s.AssignHardwareToken(ctx, "nope", &again), store.ErrNotFound)
	clash := store.Device{UserID: alice.ID, Name: "a-1", Kind: store.KindHardware, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: sealed(9), Created: at, Registered: at}
	wantErr(t, "AssignHardwareToken(name taken)", s.AssignHardwareToken(ctx, "B-2", &clash), store.ErrConflict)
	if tk, _ := s.HardwareToken(ctx, "B-2"); tk.DeviceID != 0 {
		t.Errorf("B-2 linked to %d after a failed assignment", tk.DeviceID)
	}
	must(t, "DeleteDevice", s.DeleteDevice(ctx, d.ID))
	if tk, _ := s.HardwareToken(ctx, "A-1"); tk.DeviceID != 0 {
		t.Errorf("A-1 still linked to deleted device %d", tk.DeviceID)
	}
	ids, err := s.SealedKeyIDs(ctx)
	must(t, "SealedKeyIDs", err)
	if len(ids) == 0 || ids[0] != "key1" {
		t.Errorf("SealedKeyIDs = %v, want key1 (hardware tokens' key)", ids)
	}
}

// testAdvanceCounter: an HOTP code is accepted once (the counter moves
// only from the value read), never on a locked device or for a disabled
// user; a resync moves it while locked and clears the lock.
func testAdvanceCounter(t *testing.T, s store.Store) {
	ctx := t.Context()
	bob := mkUser(t, s, "bob")
	d := mkDevice(t, s, store.Device{UserID: bob.ID, Name: "event", Kind: store.KindHardware, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: sealed(3), Created: t0, Registered: t0, HOTP: true, Counter: 10})
	totp := mkDevice(t, s, store.Device{UserID: bob.ID, Name: "time", Kind: store.KindHardware, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: sealed(4), Created: t0, Registered: t0, Counter: 10})
	at := t0.Add(time.Minute)
	must(t, "AdvanceCounter(10 -> 13)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 10, New: 13, At: at}))
	wantErr(t, "AdvanceCounter(replay)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 10, New: 13, At: at}), store.ErrStale)
	wantErr(t, "AdvanceCounter(backwards)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 13, New: 12, At: at}), store.ErrStale)
	wantErr(t, "AdvanceCounter(TOTP device)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: totp.ID, Old: 10, New: 11, At: at}), store.ErrStale)
	wantErr(t, "AdvanceCounter(no device)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: 9999, Old: 0, New: 1, At: at}), store.ErrNotFound)
	if got := getDevice(t, s, d.ID); got.Counter != 13 || !got.LastUsed.Equal(micro(at)) {
		t.Fatalf("after AdvanceCounter: counter %d last used %v, want 13 at %v", got.Counter, got.LastUsed, micro(at))
	}
	rule := store.Lockout{Threshold: 1, Base: time.Hour}
	f, err := s.RecordFailure(ctx, d.ID, rule, at)
	must(t, "RecordFailure", err)
	if !f.Locked {
		t.Fatalf("RecordFailure did not lock: %+v", f)
	}
	wantErr(t, "AdvanceCounter(locked)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 13, New: 14, At: at}), store.ErrStale)
	must(t, "AdvanceCounter(resync while locked)", s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 13, New: 60, At: at, Resync: true}))
	got := getDevice(t, s, d.ID)
	if got.Counter != 60 || !got.LockedUntil.IsZero() || got.FailCount != 0 || got.Lockouts != 0 {
		t.Fatalf("after resync: counter %d locked %v fails %d lockouts %d", got.Counter, got.LockedUntil, got.FailCount, got.Lockouts)
	}
	bob.Disabled = true
	must(t, "UpdateUser(disabled)", s.UpdateUser(ctx, bob))
	err = s.AdvanceCounter(ctx, store.CounterUse{DeviceID: d.ID, Old: 60, New: 61, At: at})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("AdvanceCounter(disabled user) = %v, want ErrStale", err)
	}
}

// micro is t as the store returns it: UTC, microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testReplacement: a replacement moves the old appliance's accounts to
// the spare one by one, each exactly once; the last move unpairs the old
// appliance with a wipe; no second replacement may involve either
// appliance while one is open.
func testReplacement(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	old := mkAppliance(t, s, "old", "Lobby", 1)
	spare := mkAppliance(t, s, "spare", "Spare", 2)
	other := mkAppliance(t, s, "other", "Desk", 3)
	var uids []string
	for _, name := range []string{"one", "two"} {
		d := pending(alice.ID, name, t0.Add(time.Hour))
		d.UID = "uid-" + name
		mkDevice(t, s, d)
		c := store.Change{ApplianceID: old.ID, Kind: store.ChangeOffer, DeviceUID: d.UID, Payload: []byte("p"), Created: t0, Expires: t0.Add(time.Hour)}
		must(t, "AppendChange(offer)", s.AppendChange(ctx, &c))
		_, err := s.AnswerChange(ctx, old.ID, c.Rev, store.ChangeAccepted, t0)
		must(t, "AnswerChange", err)
		uids = append(uids, d.UID)
	}
	r := store.Replacement{ID: "r1", OldID: old.ID, OldName: old.Name, SpareID: spare.ID, SpareName: spare.Name,
		NotMoved: []string{"1 local account"}, Created: t0,
		Accounts: []store.ReplacementAccount{{DeviceUID: uids[0]}, {DeviceUID: uids[1]}}}
	must(t, "CreateReplacement", s.CreateReplacement(ctx, r))
	for _, tc := range []struct{ old, spare string }{{other.ID, spare.ID}, {old.ID, other.ID}, {spare.ID, other.ID}} {
		err := s.CreateReplacement(ctx, store.Replacement{ID: "r2", OldID: tc.old, SpareID: tc.spare, Created: t0})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateReplacement(%s -> %s) while r1 is open = %v, want ErrConflict", tc.old, tc.spare, err)
		}
	}
	got, err := s.Replacement(ctx, "r1")
	must(t, "Replacement", err)
	if got.State != store.ReplacementWaiting || len(got.Accounts) != 2 || got.Moved() != 0 || len(got.NotMoved) != 1 {
		t.Fatalf("Replacement = %+v, want waiting, 2 accounts none moved, 1 not moved", got)
	}
	must(t, "SetTakeoverRev", s.SetTakeoverRev(ctx, "r1", uids[0], 7))
	if err := s.SetTakeoverRev(ctx, "r1", "uid-none", 8); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetTakeoverRev(unknown account) = %v, want ErrNotFound", err)
	}
	must(t, "SetReplacementState(declined)", s.SetReplacementState(ctx, "r1", store.ReplacementDeclined, t0.Add(time.Second)))

	wipe := []byte(`{"wipe":true}`)
	for i, want := range []store.AccountMove{{Moved: true, Left: 1}, {Left: 1}} {
		m, err := s.MoveAccount(ctx, "r1", uids[0], wipe, t0.Add(2*time.Second))
		must(t, "MoveAccount", err)
		if m.Moved != want.Moved || m.Done != want.Done || m.Left != want.Left {
			t.Errorf("MoveAccount(one) #%d = %+v, want %+v", i+1, m, want)
		}
	}
	on, err := s.DevicesOnAppliance(ctx, old.ID)
	must(t, "DevicesOnAppliance(old)", err)
	if len(on) != 1 || on[0].UID != uids[1] {
		t.Errorf("DevicesOnAppliance(old) after one move = %v, want only %s", on, uids[1])
	}
	m, err := s.MoveAccount(ctx, "r1", uids[1], wipe, t0.Add(3*time.Second))
	must(t, "MoveAccount(two)", err)
	if !m.Moved || !m.Done || m.Left != 0 || m.Wipe.Kind != store.ChangeUnpair || string(m.Wipe.Payload) != string(wipe) {
		t.Errorf("MoveAccount(two) = %+v, want moved, done, a wipe", m)
	}
	if m, err := s.MoveAccount(ctx, "r1", uids[1], wipe, t0.Add(4*time.Second)); err != nil || m.Moved || m.Done {
		t.Errorf("MoveAccount(two) again = %+v, %v; want nothing done", m, err)
	}
	if _, err := s.MoveAccount(ctx, "r1", "uid-none", wipe, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MoveAccount(unknown account) = %v, want ErrNotFound", err)
	}
	a, err := s.Appliance(ctx, old.ID)
	must(t, "Appliance(old)", err)
	if !a.Unpairing {
		t.Errorf("old appliance after the last move: unpairing %v, want true", a.Unpairing)
	}
	got, err = s.Replacement(ctx, "r1")
	must(t, "Replacement", err)
	if got.State != store.ReplacementDone || got.Moved() != 2 || got.Accounts[0].Rev != 7 {
		t.Errorf("Replacement after the moves = %+v, want done, 2 moved, rev 7 kept", got)
	}
	if err := s.SetReplacementState(ctx, "r1", store.ReplacementWaiting, t0); !errors.Is(err, store.ErrStale) {
		t.Errorf("SetReplacementState(done) = %v, want ErrStale", err)
	}
	list, err := s.ReplacementsOf(ctx, spare.ID)
	must(t, "ReplacementsOf", err)
	if len(list) != 1 || list[0].ID != "r1" {
		t.Errorf("ReplacementsOf(spare) = %v, want r1", list)
	}
	// Done: the spare may be replaced in its turn.
	must(t, "CreateReplacement(after done)", s.CreateReplacement(ctx, store.Replacement{ID: "r3", OldID: spare.ID, SpareID: other.ID, Created: t0}))
}

// testDropAccount: an account dropped from a replacement (its MFA device
// deleted) is no longer waited for; dropping the last one left finishes
// the replacement and unpairs the old appliance; a moved account is not
// dropped.
func testDropAccount(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := mkAppliance(t, s, "old", "Lobby", 1)
	spare := mkAppliance(t, s, "spare", "Spare", 2)
	r := store.Replacement{ID: "r1", OldID: old.ID, OldName: old.Name, SpareID: spare.ID, SpareName: spare.Name, Created: t0,
		Accounts: []store.ReplacementAccount{{DeviceUID: "a"}, {DeviceUID: "b"}}}
	must(t, "CreateReplacement", s.CreateReplacement(ctx, r))
	if _, err := s.MoveAccount(ctx, "r1", "a", nil, t0); err != nil {
		t.Fatal(err)
	}
	if m, err := s.DropAccount(ctx, "r1", "a", nil, t0); err != nil || m.Done || m.Left != 1 {
		t.Errorf("DropAccount(moved) = %+v, %v; want nothing done, 1 left", m, err)
	}
	m, err := s.DropAccount(ctx, "r1", "b", []byte(`{"wipe":true}`), t0)
	if err != nil || !m.Done || m.Left != 0 || m.Wipe.Kind != store.ChangeUnpair {
		t.Errorf("DropAccount(last) = %+v, %v; want done with a wipe", m, err)
	}
	got, err := s.Replacement(ctx, "r1")
	must(t, "Replacement", err)
	if got.State != store.ReplacementDone || len(got.Accounts) != 1 || got.Moved() != 1 {
		t.Errorf("Replacement = %+v, want done with the moved account only", got)
	}
	if _, err := s.DropAccount(ctx, "missing", "b", nil, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DropAccount(missing replacement) = %v, want ErrNotFound", err)
	}
}

package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

func keyOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mkCode(t *testing.T, s store.Store, code string, key byte, expires time.Time) store.PairingCode {
	t.Helper()
	c := store.PairingCode{Code: code, SignKey: keyOf(key), BoxKey: keyOf(key + 100), Version: "1.0." + code, Created: t0, Expires: expires}
	must(t, "CreatePairingCode("+code+")", s.CreatePairingCode(t.Context(), c))
	return c
}

// mkAppliance pairs an appliance with sign key keyOf(key).
func mkAppliance(t *testing.T, s store.Store, id, name string, key byte) store.Appliance {
	t.Helper()
	code := "code-" + id
	mkCode(t, s, code, key, t0.Add(10*time.Minute))
	a := store.Appliance{ID: id, Name: name, Paired: t0}
	must(t, "PairAppliance("+id+")", s.PairAppliance(t.Context(), code, t0, &a))
	return a
}

func equalAppliance(a, b store.Appliance) bool {
	return a.ID == b.ID && a.Name == b.Name && bytes.Equal(a.SignKey, b.SignKey) && bytes.Equal(a.BoxKey, b.BoxKey) &&
		sameTime(a.Paired, b.Paired) && sameTime(a.LastSeen, b.LastSeen) && a.Version == b.Version &&
		a.Accounts == b.Accounts && sameTime(a.Clock.ApplianceTime, b.Clock.ApplianceTime) &&
		a.Clock.Bound == b.Clock.Bound && a.Clock.State == b.Clock.State && a.Clock.Frequency == b.Clock.Frequency &&
		a.Clock.Offset == b.Clock.Offset && sameTime(a.Clock.At, b.Clock.At) && a.Rev == b.Rev && a.Unpairing == b.Unpairing &&
		a.Secrets == b.Secrets && a.Clock.Authenticated == b.Clock.Authenticated
}

func equalChange(a, b store.Change) bool {
	return a.ApplianceID == b.ApplianceID && a.Rev == b.Rev && a.Kind == b.Kind && a.DeviceUID == b.DeviceUID &&
		bytes.Equal(a.Payload, b.Payload) && a.State == b.State && sameTime(a.Created, b.Created) &&
		sameTime(a.Expires, b.Expires) && sameTime(a.Answered, b.Answered)
}

func testPairing(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := t0.Add(10 * time.Minute)
	c1 := mkCode(t, s, "111-111", 1, exp)
	wantErr(t, "CreatePairingCode(taken)", s.CreatePairingCode(ctx, c1), store.ErrConflict)
	c2 := mkCode(t, s, "222-222", 1, exp.Add(time.Minute)) // same key, a later code
	mkCode(t, s, "333-333", 2, exp)

	got, err := s.PairingCodeByKey(ctx, keyOf(1), t0)
	must(t, "PairingCodeByKey", err)
	if got.Code != c2.Code || !bytes.Equal(got.BoxKey, c2.BoxKey) || got.Version != c2.Version ||
		!got.Created.Equal(t0) || !got.Expires.Equal(c2.Expires) {
		t.Errorf("PairingCodeByKey = %+v, want %+v", got, c2)
	}
	_, err = s.PairingCodeByKey(ctx, keyOf(1), c2.Expires)
	wantErr(t, "PairingCodeByKey(at expiry)", err, store.ErrNotFound)
	_, err = s.PairingCodeByKey(ctx, keyOf(9), t0)
	wantErr(t, "PairingCodeByKey(unknown key)", err, store.ErrNotFound)

	// Pairing with an expired or unknown code changes nothing.
	a := store.Appliance{ID: "app-1", Name: "Front desk", Paired: t0}
	wantErr(t, "PairAppliance(expired)", s.PairAppliance(ctx, c1.Code, exp, &a), store.ErrNotFound)
	wantErr(t, "PairAppliance(unknown)", s.PairAppliance(ctx, "999-999", t0, &a), store.ErrNotFound)

	must(t, "PairAppliance", s.PairAppliance(ctx, c1.Code, t0, &a))
	want := store.Appliance{ID: "app-1", Name: "Front desk", SignKey: keyOf(1), BoxKey: keyOf(101), Paired: t0, Version: c1.Version}
	if !equalAppliance(a, want) {
		t.Errorf("PairAppliance filled %+v, want %+v", a, want)
	}
	stored, err := s.Appliance(ctx, "app-1")
	must(t, "Appliance", err)
	if !equalAppliance(stored, want) {
		t.Errorf("Appliance = %+v, want %+v", stored, want)
	}
	// Every code of that key is gone.
	for _, code := range []string{c1.Code, c2.Code} {
		b := store.Appliance{ID: "app-x", Name: "X", Paired: t0}
		wantErr(t, "PairAppliance(used key's code "+code+")", s.PairAppliance(ctx, code, t0, &b), store.ErrNotFound)
	}
	_, err = s.PairingCodeByKey(ctx, keyOf(1), t0)
	wantErr(t, "PairingCodeByKey(paired)", err, store.ErrNotFound)

	// Conflicts: a taken name (any case), a paired key, a taken id; the
	// code stays usable.
	dupName := store.Appliance{ID: "app-2", Name: "FRONT DESK", Paired: t0}
	wantErr(t, "PairAppliance(taken name)", s.PairAppliance(ctx, "333-333", t0, &dupName), store.ErrConflict)
	dupID := store.Appliance{ID: "app-1", Name: "Back office", Paired: t0}
	wantErr(t, "PairAppliance(taken id)", s.PairAppliance(ctx, "333-333", t0, &dupID), store.ErrConflict)
	mkCode(t, s, "444-444", 1, exp)
	dupKey := store.Appliance{ID: "app-3", Name: "Lobby", Paired: t0}
	wantErr(t, "PairAppliance(paired key)", s.PairAppliance(ctx, "444-444", t0, &dupKey), store.ErrConflict)
	ok := store.Appliance{ID: "app-2", Name: "Back office", Paired: t0}
	must(t, "PairAppliance(after conflicts)", s.PairAppliance(ctx, "333-333", t0, &ok))

	// Expired codes are swept at or after their expiry.
	mkCode(t, s, "555-555", 5, exp)
	mkCode(t, s, "666-666", 6, exp.Add(time.Hour))
	n, err := s.DeleteExpiredPairingCodes(ctx, exp)
	must(t, "DeleteExpiredPairingCodes", err)
	if n != 2 { // 444-444 and 555-555
		t.Errorf("DeleteExpiredPairingCodes = %d, want 2", n)
	}
	if _, err := s.PairingCodeByKey(ctx, keyOf(6), t0); err != nil {
		t.Errorf("unexpired code swept: %v", err)
	}
}

func testAppliances(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := mkAppliance(t, s, "b", "lobby", 2)
	a := mkAppliance(t, s, "a", "Front desk", 1)
	c := mkAppliance(t, s, "c", "back office", 3)

	got, err := s.ApplianceByKey(ctx, keyOf(1))
	must(t, "ApplianceByKey", err)
	if !equalAppliance(got, a) {
		t.Errorf("ApplianceByKey = %+v, want %+v", got, a)
	}
	_, err = s.ApplianceByKey(ctx, keyOf(9))
	wantErr(t, "ApplianceByKey(unknown)", err, store.ErrNotFound)
	_, err = s.Appliance(ctx, "nope")
	wantErr(t, "Appliance(unknown)", err, store.ErrNotFound)

	list, err := s.Appliances(ctx)
	must(t, "Appliances", err)
	var names []string
	for _, x := range list {
		names = append(names, x.Name)
	}
	if want := []string{"back office", "Front desk", "lobby"}; !slices.Equal(names, want) {
		t.Errorf("Appliances = %q, want %q", names, want)
	}

	must(t, "RenameAppliance", s.RenameAppliance(ctx, b.ID, "Lobby kiosk"))
	wantErr(t, "RenameAppliance(taken)", s.RenameAppliance(ctx, b.ID, "FRONT desk"), store.ErrConflict)
	wantErr(t, "RenameAppliance(unknown)", s.RenameAppliance(ctx, "nope", "x"), store.ErrNotFound)
	if got, _ := s.Appliance(ctx, b.ID); got.Name != "Lobby kiosk" {
		t.Errorf("after rename: %q", got.Name)
	}

	// A site is set, kept by the other reads, and cleared.
	must(t, "SetApplianceSite", s.SetApplianceSite(ctx, b.ID, "store-12"))
	wantErr(t, "SetApplianceSite(unknown)", s.SetApplianceSite(ctx, "nope", "store-12"), store.ErrNotFound)
	if got, _ := s.Appliance(ctx, b.ID); got.Site != "store-12" {
		t.Errorf("Appliance site = %q, want store-12", got.Site)
	}
	if got, _ := s.ApplianceByKey(ctx, b.SignKey); got.Site != "store-12" {
		t.Errorf("ApplianceByKey site = %q, want store-12", got.Site)
	}
	must(t, "SetApplianceSite(none)", s.SetApplianceSite(ctx, b.ID, ""))
	if got, _ := s.Appliance(ctx, b.ID); got.Site != "" {
		t.Errorf("site after clearing = %q", got.Site)
	}

	clock := store.ClockReport{ApplianceTime: t0.Add(-2 * time.Second), Bound: 35 * time.Millisecond, State: "SYNCED",
		Frequency: -12.5, Offset: 2*time.Second + 3*time.Microsecond, At: t0, Authenticated: true}
	if got, _ := s.Appliance(ctx, a.ID); got.Secrets != "" {
		t.Errorf("secrets mode before any sync = %q, want empty", got.Secrets)
	}
	must(t, "SeenAppliance", s.SeenAppliance(ctx, a.ID, store.ApplianceSeen{At: t0, Version: "1.1", Accounts: 4, Clock: clock,
		Secrets: store.SecretsSoftware}))
	want := a
	want.LastSeen, want.Version, want.Accounts, want.Clock, want.Secrets = t0, "1.1", 4, clock, store.SecretsSoftware
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after SeenAppliance: %+v\nwant %+v", got, want)
	}
	// No clock report: the last one stays.
	later := t0.Add(time.Minute)
	must(t, "SeenAppliance(no clock)", s.SeenAppliance(ctx, a.ID, store.ApplianceSeen{At: later, Version: "1.2", Accounts: 5,
		Secrets: store.SecretsTPM}))
	want.LastSeen, want.Version, want.Accounts, want.Secrets = later, "1.2", 5, store.SecretsTPM
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after SeenAppliance(no clock): %+v\nwant %+v", got, want)
	}
	// The mode is what the last sync said: one that says nothing makes it
	// unknown again rather than keeping an old claim.
	must(t, "SeenAppliance(no secrets)", s.SeenAppliance(ctx, a.ID, store.ApplianceSeen{At: later, Version: "1.2", Accounts: 5}))
	want.Secrets = ""
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after SeenAppliance(no secrets): %+v\nwant %+v", got, want)
	}
	// An unknown mode is refused and changes nothing.
	if err := s.SeenAppliance(ctx, a.ID, store.ApplianceSeen{At: later.Add(time.Minute), Version: "9", Secrets: "hsm"}); err == nil ||
		!strings.Contains(err.Error(), `"hsm"`) {
		t.Errorf("SeenAppliance(secrets hsm) = %v, want an error naming the mode", err)
	}
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after SeenAppliance(secrets hsm): %+v\nwant %+v", got, want)
	}
	list, err = s.Appliances(ctx)
	must(t, "Appliances", err)
	if i := slices.IndexFunc(list, func(x store.Appliance) bool { return x.ID == a.ID }); i < 0 || !equalAppliance(list[i], want) {
		t.Errorf("Appliances after SeenAppliance = %+v, want %+v among them", list, want)
	}
	wantErr(t, "SeenAppliance(unknown)", s.SeenAppliance(ctx, "nope", store.ApplianceSeen{At: t0}), store.ErrNotFound)

	// Deleting takes its changes along.
	must(t, "AppendChange", s.AppendChange(ctx, &store.Change{ApplianceID: c.ID, Kind: store.ChangeRename, DeviceUID: "u", Created: t0}))
	must(t, "DeleteAppliance", s.DeleteAppliance(ctx, c.ID))
	wantErr(t, "DeleteAppliance(again)", s.DeleteAppliance(ctx, c.ID), store.ErrNotFound)
	_, err = s.Change(ctx, c.ID, 1)
	wantErr(t, "Change(of deleted appliance)", err, store.ErrNotFound)
	// Its key and name are free again.
	mkAppliance(t, s, "c2", "Back office", 3)
}

func testChangeLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAppliance(t, s, "a", "Front desk", 1)
	b := mkAppliance(t, s, "b", "Lobby", 2)
	exp := t0.Add(10 * time.Minute)

	offer := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "dev-1", Payload: []byte(`{"sealed":"..."}`),
		State: store.ChangeAccepted, Created: t0, Expires: exp, Answered: t0} // State and Answered are reset
	must(t, "AppendChange(offer)", s.AppendChange(ctx, &offer))
	if offer.Rev != 1 || offer.State != store.ChangePending || !offer.Answered.IsZero() {
		t.Errorf("AppendChange set rev %d state %q answered %v; want 1 pending zero", offer.Rev, offer.State, offer.Answered)
	}
	got, err := s.Change(ctx, a.ID, 1)
	must(t, "Change", err)
	if !equalChange(got, offer) {
		t.Errorf("Change = %+v, want %+v", got, offer)
	}
	// Revisions are per appliance.
	other := store.Change{ApplianceID: b.ID, Kind: store.ChangeOffer, DeviceUID: "dev-1", Payload: []byte("p"), Created: t0.Add(time.Second), Expires: exp}
	must(t, "AppendChange(other appliance)", s.AppendChange(ctx, &other))
	if other.Rev != 1 {
		t.Errorf("first change of another appliance: rev %d, want 1", other.Rev)
	}
	rename := store.Change{ApplianceID: a.ID, Kind: store.ChangeRename, DeviceUID: "dev-2", Payload: []byte(`{"name":"x"}`), Created: t0}
	must(t, "AppendChange(rename)", s.AppendChange(ctx, &rename))
	offer3 := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "dev-3", Payload: []byte("p3"), Created: t0, Expires: exp}
	must(t, "AppendChange(offer 3)", s.AppendChange(ctx, &offer3))
	if rename.Rev != 2 || offer3.Rev != 3 {
		t.Errorf("revs %d, %d; want 2, 3", rename.Rev, offer3.Rev)
	}
	if got, _ := s.Appliance(ctx, a.ID); got.Rev != 3 {
		t.Errorf("appliance Rev = %d, want 3", got.Rev)
	}
	wantErr(t, "AppendChange(unknown appliance)", s.AppendChange(ctx, &store.Change{ApplianceID: "nope", Kind: store.ChangeRename, Created: t0}), store.ErrNotFound)
	if err := s.AppendChange(ctx, &store.Change{ApplianceID: a.ID, Kind: "reboot", Created: t0}); err == nil {
		t.Errorf("AppendChange(unknown kind) succeeded")
	}
	_, err = s.Change(ctx, a.ID, 99)
	wantErr(t, "Change(unknown rev)", err, store.ErrNotFound)

	revs := func(cs []store.Change) []int64 {
		var out []int64
		for _, c := range cs {
			out = append(out, c.Rev)
		}
		return out
	}
	// Changes: pending unexpired offers at or below after, then newer
	// changes, limited.
	tests := []struct {
		after int64
		now   time.Time
		limit int
		want  []int64
	}{
		{0, t0, 0, []int64{1, 2, 3}},
		{0, t0, 2, []int64{1, 2}},
		{1, t0, 0, []int64{1, 2, 3}},
		{2, t0, 1, []int64{1, 3}},
		{3, t0, 0, []int64{1, 3}},
		{3, exp, 0, nil}, // offers expired
		{1, exp, 0, []int64{2, 3}},
	}
	for _, tc := range tests {
		got, err := s.Changes(ctx, a.ID, tc.after, tc.now, tc.limit)
		must(t, "Changes", err)
		if !slices.Equal(revs(got), tc.want) {
			t.Errorf("Changes(after %d, now %v, limit %d) = %v, want %v", tc.after, tc.now.Sub(t0), tc.limit, revs(got), tc.want)
		}
	}

	// Answering: idempotent in the same state, ErrStale in another; an
	// answered offer loses its payload.
	at := t0.Add(time.Minute)
	ans, err := s.AnswerChange(ctx, a.ID, 1, store.ChangeAccepted, at)
	must(t, "AnswerChange", err)
	if ans.State != store.ChangeAccepted || !ans.Answered.Equal(at) || ans.Payload != nil {
		t.Errorf("AnswerChange = %+v, want accepted at %v without payload", ans, at)
	}
	again, err := s.AnswerChange(ctx, a.ID, 1, store.ChangeAccepted, at.Add(time.Minute))
	must(t, "AnswerChange(same state)", err)
	if !equalChange(again, ans) {
		t.Errorf("AnswerChange(same state) = %+v, want %+v unchanged", again, ans)
	}
	stale, err := s.AnswerChange(ctx, a.ID, 1, store.ChangeRejected, at)
	wantErr(t, "AnswerChange(other state)", err, store.ErrStale)
	if !equalChange(stale, ans) {
		t.Errorf("AnswerChange(other state) returned %+v, want the stored %+v", stale, ans)
	}
	_, err = s.AnswerChange(ctx, a.ID, 99, store.ChangeAcked, at)
	wantErr(t, "AnswerChange(unknown)", err, store.ErrNotFound)
	acked, err := s.AnswerChange(ctx, a.ID, 2, store.ChangeAcked, at)
	must(t, "AnswerChange(rename)", err)
	if string(acked.Payload) != `{"name":"x"}` {
		t.Errorf("acked rename lost its payload: %q", acked.Payload)
	}
	if got, _ := s.Changes(ctx, a.ID, 3, t0, 0); !slices.Equal(revs(got), []int64{3}) {
		t.Errorf("Changes after accepting offer 1 = %v, want [3]", revs(got))
	}

	// Concurrent answers: exactly one wins.
	offer4 := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "dev-4", Payload: []byte("p4"), Created: t0, Expires: exp}
	must(t, "AppendChange(offer 4)", s.AppendChange(ctx, &offer4))
	var mu sync.Mutex
	wins := map[store.ChangeState]int{}
	concurrent(t, 16, func() error {
		mu.Lock()
		st := []store.ChangeState{store.ChangeAccepted, store.ChangeRejected}[len(wins)%2]
		mu.Unlock()
		_, err := s.AnswerChange(context.Background(), a.ID, offer4.Rev, st, at)
		if err == nil {
			mu.Lock()
			wins[st]++
			mu.Unlock()
		}
		return err
	})
	if len(wins) != 1 {
		t.Errorf("concurrent answers of both states: winners %v, want one state", wins)
	}

	// Cancel, expire and delete cancel the device's pending offers on that
	// appliance only.
	cancel := store.Change{ApplianceID: a.ID, Kind: store.ChangeCancel, DeviceUID: "dev-3", Created: at}
	must(t, "AppendChange(cancel)", s.AppendChange(ctx, &cancel))
	if got, _ := s.Change(ctx, a.ID, offer3.Rev); got.State != store.ChangeCancelled || !got.Answered.Equal(at) {
		t.Errorf("offer after cancel: %+v, want cancelled at %v", got, at)
	}
	del := store.Change{ApplianceID: a.ID, Kind: store.ChangeDelete, DeviceUID: "dev-1", Created: at}
	must(t, "AppendChange(delete)", s.AppendChange(ctx, &del))
	if got, _ := s.Change(ctx, b.ID, other.Rev); got.State != store.ChangePending {
		t.Errorf("another appliance's offer became %q", got.State)
	}
	if got, _ := s.Change(ctx, a.ID, 1); got.State != store.ChangeAccepted {
		t.Errorf("an answered offer became %q after a delete", got.State)
	}

	// OffersByDevice: across appliances, newest first.
	later := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "dev-1", Payload: []byte("p"), Created: t0.Add(2 * time.Second), Expires: exp}
	must(t, "AppendChange", s.AppendChange(ctx, &later))
	offers, err := s.OffersByDevice(ctx, "dev-1")
	must(t, "OffersByDevice", err)
	var got3 []string
	for _, o := range offers {
		got3 = append(got3, fmt.Sprintf("%s/%d", o.ApplianceID, o.Rev))
	}
	if want := []string{fmt.Sprintf("a/%d", later.Rev), "b/1", "a/1"}; !slices.Equal(got3, want) {
		t.Errorf("OffersByDevice = %v, want %v", got3, want)
	}

	// Answered changes are swept by age; Rev stays.
	n, err := s.DeleteAnsweredChanges(ctx, at)
	must(t, "DeleteAnsweredChanges(at)", err)
	if n != 0 {
		t.Errorf("DeleteAnsweredChanges(at answer time) = %d, want 0", n)
	}
	n, err = s.DeleteAnsweredChanges(ctx, at.Add(time.Second))
	must(t, "DeleteAnsweredChanges", err)
	// An accepted offer records which appliance holds the account: it
	// stays until a later cancel, expire or delete of its device (offer 1
	// was followed by a delete; offer 4, if accepted, by nothing).
	keep := wins[store.ChangeAccepted] > 0
	left := mustChanges(t, s, a.ID)
	for _, c := range left {
		if c.State != store.ChangePending && !(keep && c.Rev == offer4.Rev) {
			t.Errorf("answered change %d (%s %s) left after DeleteAnsweredChanges", c.Rev, c.Kind, c.State)
		}
	}
	if keep && !slices.ContainsFunc(left, func(c store.Change) bool { return c.Rev == offer4.Rev }) {
		t.Errorf("the accepted offer of dev-4 was swept: the server forgot which appliance holds it")
	}
	wantN := 4
	if keep {
		wantN = 3
	}
	if n != wantN {
		t.Errorf("DeleteAnsweredChanges = %d, want %d (revs 1, 2, 3, 4 but an accepted offer not superseded)", n, wantN)
	}
	if got, _ := s.Appliance(ctx, a.ID); got.Rev != later.Rev {
		t.Errorf("Rev after sweep = %d, want %d", got.Rev, later.Rev)
	}
}

func mustChanges(t *testing.T, s store.Store, id string) []store.Change {
	t.Helper()
	cs, err := s.Changes(t.Context(), id, 0, t0, 0)
	must(t, "Changes", err)
	return cs
}

func testUnpair(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAppliance(t, s, "a", "Front desk", 1)
	exp := t0.Add(10 * time.Minute)
	o1 := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "d1", Payload: []byte("p"), Created: t0, Expires: exp}
	must(t, "AppendChange", s.AppendChange(ctx, &o1))
	o2 := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "d2", Payload: []byte("p"), Created: t0, Expires: exp}
	must(t, "AppendChange", s.AppendChange(ctx, &o2))
	_, err := s.AnswerChange(ctx, a.ID, o2.Rev, store.ChangeAccepted, t0)
	must(t, "AnswerChange", err)

	at := t0.Add(time.Minute)
	u, err := s.UnpairAppliance(ctx, a.ID, at)
	must(t, "UnpairAppliance", err)
	want := store.Change{ApplianceID: a.ID, Rev: 3, Kind: store.ChangeUnpair, State: store.ChangePending, Created: at}
	if !equalChange(u, want) {
		t.Errorf("UnpairAppliance = %+v, want %+v", u, want)
	}
	if got, _ := s.Change(ctx, a.ID, o1.Rev); got.State != store.ChangeCancelled || !got.Answered.Equal(at) {
		t.Errorf("pending offer after unpair: %+v", got)
	}
	if got, _ := s.Change(ctx, a.ID, o2.Rev); got.State != store.ChangeAccepted {
		t.Errorf("accepted offer after unpair: %q", got.State)
	}
	got, _ := s.Appliance(ctx, a.ID)
	if !got.Unpairing || got.Rev != 3 {
		t.Errorf("appliance after unpair: unpairing %v rev %d", got.Unpairing, got.Rev)
	}
	// Again: the same change, nothing new.
	u2, err := s.UnpairAppliance(ctx, a.ID, at.Add(time.Hour))
	must(t, "UnpairAppliance(again)", err)
	if !equalChange(u2, u) {
		t.Errorf("UnpairAppliance(again) = %+v, want %+v", u2, u)
	}
	wantErr(t, "AppendChange(unpairing)", s.AppendChange(ctx, &store.Change{ApplianceID: a.ID, Kind: store.ChangeRename, Created: at}), store.ErrStale)
	if got, _ := s.Appliance(ctx, a.ID); got.Rev != 3 {
		t.Errorf("Rev after refused append = %d, want 3", got.Rev)
	}
	_, err = s.UnpairAppliance(ctx, "nope", at)
	wantErr(t, "UnpairAppliance(unknown)", err, store.ErrNotFound)
}

func testConcurrentAppend(t *testing.T, s store.Store) {
	a := mkAppliance(t, s, "a", "Front desk", 1)
	const n = 32
	var mu sync.Mutex
	var got []int64
	concurrent(t, n, func() error {
		c := store.Change{ApplianceID: a.ID, Kind: store.ChangeRename, DeviceUID: "d", Created: t0}
		err := s.AppendChange(context.Background(), &c)
		if err == nil {
			mu.Lock()
			got = append(got, c.Rev)
			mu.Unlock()
		}
		if errors.Is(err, store.ErrStale) {
			return fmt.Errorf("unexpected: %w", err)
		}
		return err
	})
	slices.Sort(got)
	for i, r := range got {
		if r != int64(i+1) {
			t.Fatalf("%d concurrent appends got revs %v, want 1..%d each once", n, got, n)
		}
	}
	if len(got) != n {
		t.Errorf("%d of %d concurrent appends succeeded", len(got), n)
	}
}

func testDevicesOnAppliance(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	a := mkAppliance(t, s, "a", "Kiosk", 1)
	b := mkAppliance(t, s, "b", "Desk", 2)
	dev := func(name string) store.Device {
		d := pending(alice.ID, name, t0.Add(time.Hour))
		d.UID = "uid-" + name
		return mkDevice(t, s, d)
	}
	offer := func(app store.Appliance, d store.Device, state store.ChangeState) {
		c := store.Change{ApplianceID: app.ID, Kind: store.ChangeOffer, DeviceUID: d.UID, Payload: []byte("p"), Created: t0, Expires: t0.Add(time.Hour)}
		must(t, "AppendChange(offer)", s.AppendChange(ctx, &c))
		if state != store.ChangePending {
			_, err := s.AnswerChange(ctx, app.ID, c.Rev, state, t0)
			must(t, "AnswerChange", err)
		}
	}
	held, open, rejected, gone, elsewhere := dev("held"), dev("open"), dev("rejected"), dev("gone"), dev("elsewhere")
	offer(a, held, store.ChangeAccepted)
	offer(a, open, store.ChangePending)
	offer(a, rejected, store.ChangeRejected)
	offer(a, gone, store.ChangeAccepted)
	del := store.Change{ApplianceID: a.ID, Kind: store.ChangeDelete, DeviceUID: gone.UID, Created: t0}
	must(t, "AppendChange(delete)", s.AppendChange(ctx, &del))
	offer(b, elsewhere, store.ChangeAccepted)
	got, err := s.DevicesOnAppliance(ctx, a.ID)
	must(t, "DevicesOnAppliance", err)
	if len(got) != 1 || got[0].ID != held.ID {
		t.Errorf("DevicesOnAppliance(a) = %v, want only %q (accepted, not deleted)", got, held.Name)
	}
	got, err = s.DevicesOnAppliance(ctx, "missing")
	must(t, "DevicesOnAppliance(missing)", err)
	if len(got) != 0 {
		t.Errorf("DevicesOnAppliance(missing) = %v, want none", got)
	}
}

// testAdoptDevices: an appliance paired again reports what an earlier
// pairing placed; AdoptDevices records it as the holder of the active MFA
// devices no other appliance holds, once.
func testAdoptDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mkUser(t, s, "alice")
	a := mkAppliance(t, s, "a", "Kiosk", 1)
	b := mkAppliance(t, s, "b", "Desk", 2)
	dev := func(name string, active bool) store.Device {
		d := pending(alice.ID, name, t0.Add(time.Hour))
		d.UID = "uid-" + name
		d = mkDevice(t, s, d)
		if active {
			must(t, "ActivateDevice", s.ActivateDevice(ctx, d.ID, store.UseStep{DeviceID: d.ID, Step: 1, At: t0}))
		}
		return d
	}
	accepted := func(app store.Appliance, d store.Device) {
		c := store.Change{ApplianceID: app.ID, Kind: store.ChangeOffer, DeviceUID: d.UID, Payload: []byte("p"), Created: t0, Expires: t0.Add(time.Hour)}
		must(t, "AppendChange(offer)", s.AppendChange(ctx, &c))
		_, err := s.AnswerChange(ctx, app.ID, c.Rev, store.ChangeAccepted, t0)
		must(t, "AnswerChange", err)
	}
	orphan, here, elsewhere, freed, waiting := dev("orphan", true), dev("here", true), dev("elsewhere", true), dev("freed", true), dev("waiting", false)
	accepted(a, here)
	accepted(b, elsewhere)
	accepted(b, freed)
	cancel := store.Change{ApplianceID: b.ID, Kind: store.ChangeCancel, DeviceUID: freed.UID, Created: t0}
	must(t, "AppendChange(cancel)", s.AppendChange(ctx, &cancel))
	before, err := s.Appliance(ctx, a.ID)
	must(t, "Appliance", err)

	uids := []string{orphan.UID, here.UID, elsewhere.UID, waiting.UID, freed.UID, "uid-missing"}
	got, err := s.AdoptDevices(ctx, a.ID, uids, t0.Add(time.Minute))
	must(t, "AdoptDevices", err)
	want := []store.Adoption{{UID: orphan.UID, New: true}, {UID: here.UID}, {UID: freed.UID, New: true}}
	if !slices.Equal(got, want) {
		t.Fatalf("AdoptDevices = %v, want %v (active, on no other appliance)", got, want)
	}
	on, err := s.DevicesOnAppliance(ctx, a.ID)
	must(t, "DevicesOnAppliance", err)
	var names []string
	for _, d := range on {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"freed", "here", "orphan"}) {
		t.Errorf("DevicesOnAppliance after adoption = %v, want freed, here, orphan", names)
	}
	after, err := s.Appliance(ctx, a.ID)
	must(t, "Appliance", err)
	if after.Rev != before.Rev+2 {
		t.Errorf("Rev after adopting two = %d, want %d", after.Rev, before.Rev+2)
	}
	offers, err := s.OffersByDevice(ctx, orphan.UID)
	must(t, "OffersByDevice", err)
	if len(offers) != 1 || offers[0].ApplianceID != a.ID || offers[0].State != store.ChangeAccepted || len(offers[0].Payload) != 0 {
		t.Errorf("offers of the adopted device = %+v, want one accepted on %s without payload", offers, a.ID)
	}

	// Again: nothing new, nothing appended.
	got, err = s.AdoptDevices(ctx, a.ID, uids, t0.Add(2*time.Minute))
	must(t, "AdoptDevices again", err)
	if len(got) != 3 || slices.ContainsFunc(got, func(d store.Adoption) bool { return d.New }) {
		t.Errorf("AdoptDevices again = %v, want the same three, none new", got)
	}
	if again, _ := s.Appliance(ctx, a.ID); again.Rev != after.Rev {
		t.Errorf("Rev after adopting again = %d, want %d", again.Rev, after.Rev)
	}

	if _, err := s.AdoptDevices(ctx, "missing", uids, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AdoptDevices(missing) = %v, want ErrNotFound", err)
	}
	_, err = s.UnpairAppliance(ctx, b.ID, t0)
	must(t, "UnpairAppliance", err)
	if _, err := s.AdoptDevices(ctx, b.ID, []string{orphan.UID}, t0); !errors.Is(err, store.ErrStale) {
		t.Errorf("AdoptDevices(unpairing) = %v, want ErrStale", err)
	}
}

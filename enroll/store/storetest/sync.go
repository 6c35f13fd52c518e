package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// syncReq is a sync of keyOf(key) with nonce, reporting seen at seen.At,
// SeenEvery 5 minutes and ClockSlack 100 ms.
func syncReq(key byte, nonce string, seen store.ApplianceSeen, after int64) store.SyncRequest {
	return store.SyncRequest{SignKey: keyOf(key), KeyID: fmt.Sprintf("key%d", key), Nonce: nonce,
		NonceExpires: seen.At.Add(10 * time.Minute), Seen: seen, SeenEvery: 5 * time.Minute,
		ClockSlack: 100 * time.Millisecond, After: after, Now: seen.At}
}

func testSyncAppliance(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAppliance(t, s, "s1", "Sync", 7)
	offer := store.Change{ApplianceID: a.ID, Kind: store.ChangeOffer, DeviceUID: "d1", Payload: []byte(`{}`),
		Created: t0, Expires: t0.Add(time.Hour)}
	must(t, "AppendChange(offer)", s.AppendChange(ctx, &offer))
	rename := store.Change{ApplianceID: a.ID, Kind: store.ChangeRename, DeviceUID: "d2", Payload: []byte(`{}`), Created: t0}
	must(t, "AppendChange(rename)", s.AppendChange(ctx, &rename))

	// An unknown key: nothing recorded, not even the nonce.
	unknown := syncReq(8, "n0", store.ApplianceSeen{At: t0}, 0)
	_, err := s.SyncAppliance(ctx, unknown)
	wantErr(t, "SyncAppliance(unknown key)", err, store.ErrNotFound)
	must(t, "UseNonce after an unknown key's sync", s.UseNonce(ctx, unknown.KeyID, unknown.Nonce, unknown.NonceExpires))

	clock := store.ClockReport{ApplianceTime: t0.Add(-time.Second), Bound: 20 * time.Millisecond, State: "SYNCED",
		Offset: time.Second, At: t0}
	first := store.ApplianceSeen{At: t0, Version: "2.0", Accounts: 1, Clock: clock, Secrets: store.SecretsTPM}
	r := syncReq(7, "n1", first, 0)
	r.Sample = store.ClockSample{At: t0, Offset: clock.Offset, Bound: clock.Bound, State: clock.State}
	res, err := s.SyncAppliance(ctx, r)
	must(t, "SyncAppliance(first)", err)
	want := a
	want.LastSeen, want.Version, want.Accounts, want.Clock, want.Secrets, want.Rev = t0, "2.0", 1, clock, store.SecretsTPM, 2
	if !res.SeenWritten || !equalAppliance(res.Appliance, want) {
		t.Errorf("SyncAppliance(first) = written %v, %+v\nwant written, %+v", res.SeenWritten, res.Appliance, want)
	}
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after the first sync: %+v\nwant %+v", got, want)
	}
	if len(res.Changes) != 2 || !equalChange(res.Changes[0], offer) || !equalChange(res.Changes[1], rename) {
		t.Errorf("SyncAppliance(after 0) changes = %+v, want the offer and the rename", res.Changes)
	}
	if got, _ := s.ClockSamples(ctx, a.ID, time.Time{}); len(got) != 1 || got[0].Offset != clock.Offset {
		t.Errorf("clock samples after the first sync = %+v, want one of offset %v", got, clock.Offset)
	}

	// The same nonce again, even from another replica: refused, nothing
	// written.
	again := r
	again.Seen.At, again.Seen.Version = t0.Add(time.Hour), "9"
	_, err = s.SyncAppliance(ctx, again)
	wantErr(t, "SyncAppliance(same nonce)", err, store.ErrConflict)
	if got, _ := s.Appliance(ctx, a.ID); !equalAppliance(got, want) {
		t.Errorf("after a replayed sync: %+v\nwant %+v", got, want)
	}

	// Changes after the appliance's revision: only the open offer.
	at := func(d time.Duration) store.ApplianceSeen {
		c := clock
		c.At = t0.Add(d)
		return store.ApplianceSeen{At: t0.Add(d), Version: "2.0", Accounts: 1, Clock: c, Secrets: store.SecretsTPM}
	}
	res, err = s.SyncAppliance(ctx, syncReq(7, "n2", at(time.Minute), 2))
	must(t, "SyncAppliance(after 2)", err)
	if len(res.Changes) != 1 || !equalChange(res.Changes[0], offer) {
		t.Errorf("SyncAppliance(after 2) changes = %+v, want the open offer", res.Changes)
	}

	// Nothing new within SeenEvery: nothing written; anything new, or
	// SeenEvery passed: written.
	clockMoved := func(d, off time.Duration) store.ApplianceSeen {
		s := at(d)
		s.Clock.Offset += off
		return s
	}
	accounts := at(3 * time.Minute)
	accounts.Accounts = 2
	stateChanged := at(3 * time.Minute)
	stateChanged.Clock.State = "HOLDOVER"
	noClock := at(3 * time.Minute)
	noClock.Clock = store.ClockReport{}
	tests := []struct {
		name  string
		seen  store.ApplianceSeen
		wrote bool
	}{
		{"a minute later", at(time.Minute), false},
		{"just before SeenEvery", at(5*time.Minute - time.Microsecond), false},
		{"offset within the slack", clockMoved(2*time.Minute, 100*time.Millisecond), false},
		{"no clock report", noClock, false},
		{"offset past the slack", clockMoved(2*time.Minute, 101*time.Millisecond), true},
		{"accounts changed", accounts, true},
		{"clock state changed", stateChanged, true},
		{"SeenEvery passed", at(5 * time.Minute), true},
	}
	for i, tc := range tests {
		// Each case starts from a sync written at t0.
		must(t, "SeenAppliance", s.SeenAppliance(ctx, a.ID, first))
		res, err := s.SyncAppliance(ctx, syncReq(7, fmt.Sprintf("case%d", i), tc.seen, 2))
		must(t, "SyncAppliance("+tc.name+")", err)
		got, _ := s.Appliance(ctx, a.ID)
		wantSeen := t0
		if tc.wrote {
			wantSeen = tc.seen.At
		}
		if res.SeenWritten != tc.wrote || !sameTime(got.LastSeen, wantSeen) || !sameTime(res.Appliance.LastSeen, wantSeen) {
			t.Errorf("%s: written %v, stored LastSeen %v, returned %v; want written %v, LastSeen %v",
				tc.name, res.SeenWritten, got.LastSeen, res.Appliance.LastSeen, tc.wrote, wantSeen)
		}
	}

	// Concurrent syncs with one nonce, as on several replicas: exactly one
	// is accepted.
	const workers = 16
	ok, dup := concurrentRefused(t, workers, store.ErrConflict, func() error {
		_, err := s.SyncAppliance(ctx, syncReq(7, "shared", at(10*time.Minute), 2))
		return err
	})
	if ok != 1 || dup != workers-1 {
		t.Errorf("concurrent syncs with one nonce: %d accepted, %d refused; want 1, %d", ok, dup, workers-1)
	}

	// A deleted appliance is refused at once.
	must(t, "DeleteAppliance", s.DeleteAppliance(ctx, a.ID))
	_, err = s.SyncAppliance(ctx, syncReq(7, "n3", at(11*time.Minute), 2))
	wantErr(t, "SyncAppliance(deleted)", err, store.ErrNotFound)
}

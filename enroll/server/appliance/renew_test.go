package appliance

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestIdleRenewal: a sync that finds nothing new, as an idle appliance
// renews it every minute, costs one store call (one transaction); it
// rewrites the last-seen time only every SeenEvery; a replay of it is
// refused by another replica, and an appliance deleted through one
// replica is refused at once by the other.
func TestIdleRenewal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		st := &countingStore{Store: open(t)}
		first, second := newEnvWith(t, clk, st), newEnvWith(t, clk, st)
		a := first.newApp()
		a.pair("A")
		report := func() proto.SyncQuery {
			return proto.SyncQuery{After: 0, Version: "2.0", Accounts: 1, Secrets: proto.SecretsTPM,
				Clock: &proto.ClockReport{Time: clk.Now().Add(-time.Second), Bound: 20 * time.Millisecond, State: "SYNCED"}}
		}
		lastSeen := func() time.Time {
			t.Helper()
			in, err := first.api.Appliance(context.Background(), a.id)
			if err != nil {
				t.Fatal(err)
			}
			return in.LastSeen
		}
		renew := func(e *env) *http.Request {
			t.Helper()
			a.e = e
			r := a.request("GET", proto.ChangesPath(a.id)+"?"+report().Encode().Encode(), nil)
			var out proto.Changes
			if code, pe := e.serve(r, &out); code != 200 {
				t.Fatalf("renewal: %d %v", code, pe)
			}
			return r
		}

		renew(first)
		if got := lastSeen(); !got.Equal(t0) {
			t.Fatalf("LastSeen after the first sync = %v, want %v", got, t0)
		}
		for i := 1; i < 5; i++ {
			clk.Advance(time.Minute)
			st.reset()
			renew(second)
			if got, want := st.counts(), map[string]int{"SyncAppliance": 1}; !maps.Equal(got, want) {
				t.Errorf("renewal %d: store calls %v, want %v", i, got, want)
			}
			if got := lastSeen(); !got.Equal(t0) {
				t.Errorf("renewal %d, %v after the first: LastSeen = %v, want %v (rewritten every %v)", i, clk.Now().Sub(t0), got, t0, SeenEvery)
			}
		}
		clk.Set(t0.Add(SeenEvery))
		captured := renew(second)
		if got := lastSeen(); !got.Equal(clk.Now()) {
			t.Errorf("LastSeen after a renewal SeenEvery after the last write = %v, want %v", got, clk.Now())
		}

		// The renewal replayed to the other replica, whose replay cache
		// never saw it.
		var out any
		if code, pe := first.serve(replay(captured), &out); code != http.StatusUnauthorized || pe.Code != proto.CodeReplay {
			t.Errorf("renewal replayed to another replica: %d %q, want 401 %q", code, pe.Code, proto.CodeReplay)
		}

		// Deleted through the store (any replica): the next renewal on the
		// other is refused.
		if err := st.DeleteAppliance(context.Background(), a.id); err != nil {
			t.Fatal(err)
		}
		a.e = second
		if _, code, pe := a.changes(report()); code != http.StatusUnauthorized || pe.Code != proto.CodeNotPaired {
			t.Errorf("renewal of a deleted appliance: %d %q, want 401 %q", code, pe.Code, proto.CodeNotPaired)
		}
	})
}

// TestHeldRenewal: a sync held for the whole wait with nothing new, as an
// idle appliance's, costs one store call in all, the one that starts it;
// one held while an offer is open re-reads the store when the wait ends,
// so an offer that lapsed meanwhile is not sent.
func TestHeldRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &countingStore{Store: storetest.OpenSQLite(t)}
		e := newEnvWith(t, nil, st)
		a := e.newApp()
		a.pair("A")
		st.reset()
		start := time.Now()
		c, code, pe := a.changes(proto.SyncQuery{Wait: proto.MaxWait})
		if code != 200 || len(c.Changes) != 0 || time.Since(start) != proto.MaxWait {
			t.Fatalf("idle sync = %d %v %+v after %v, want empty after %v", code, pe, c, time.Since(start), proto.MaxWait)
		}
		if got, want := st.counts(), map[string]int{"SyncAppliance": 1}; !maps.Equal(got, want) {
			t.Errorf("idle held sync: store calls %v, want %v", got, want)
		}

		// An offer open until half-way through the wait.
		if err := e.api.SendOffer(context.Background(), a.id, "devA", "alice", "A", testKey(t), time.Now().Add(proto.MaxWait/2)); err != nil {
			t.Fatal(err)
		}
		c = a.mustChanges(0)
		st.reset()
		c, code, pe = a.changes(proto.SyncQuery{After: c.Rev, Wait: proto.MaxWait})
		if code != 200 || len(c.Changes) != 0 {
			t.Errorf("sync held past its open offer's expiry = %d %v %+v, want no change", code, pe, c.Changes)
		}
		if got, want := st.counts(), map[string]int{"SyncAppliance": 1, "Changes": 1}; !maps.Equal(got, want) {
			t.Errorf("held sync with an open offer: store calls %v, want %v", got, want)
		}
	})
}

// countingStore counts the calls of the store methods a sync may use.
type countingStore struct {
	Store
	mu sync.Mutex
	n  map[string]int
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[name]++
}

func (c *countingStore) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

func (c *countingStore) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

func (c *countingStore) ApplianceByKey(ctx context.Context, key []byte) (store.Appliance, error) {
	c.count("ApplianceByKey")
	return c.Store.ApplianceByKey(ctx, key)
}

func (c *countingStore) Appliance(ctx context.Context, id string) (store.Appliance, error) {
	c.count("Appliance")
	return c.Store.Appliance(ctx, id)
}

func (c *countingStore) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	c.count("UseNonce")
	return c.Store.UseNonce(ctx, keyID, nonce, expires)
}

func (c *countingStore) SeenAppliance(ctx context.Context, id string, s store.ApplianceSeen) error {
	c.count("SeenAppliance")
	return c.Store.SeenAppliance(ctx, id, s)
}

func (c *countingStore) AppendClockSample(ctx context.Context, id string, s store.ClockSample) (bool, error) {
	c.count("AppendClockSample")
	return c.Store.AppendClockSample(ctx, id, s)
}

func (c *countingStore) Changes(ctx context.Context, id string, after int64, now time.Time, limit int) ([]store.Change, error) {
	c.count("Changes")
	return c.Store.Changes(ctx, id, after, now, limit)
}

func (c *countingStore) SyncAppliance(ctx context.Context, r store.SyncRequest) (store.SyncResult, error) {
	c.count("SyncAppliance")
	return c.Store.SyncAppliance(ctx, r)
}

package appliance

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestUnpairedKeyFlood sends 10 000 validly signed requests from random
// keys the server never paired, from the paired appliance's own address
// (as behind one NAT) and from others. Their nonces must not reach the
// replay cache or the store, so the paired appliance keeps syncing.
func TestUnpairedKeyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("10 000 signed requests")
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		st := open(t)
		// A replay cache smaller than the flood: before the fix the flood
		// filled it and the paired appliance got 503 busy.
		api, err := New(Config{Store: st, Clock: clk, Logger: testkit.Quiet(), ReplayCacheSize: 5000})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, api: api, store: st, clock: clk, h: api.Handler()}
		a := e.newApp()
		a.pair("A")
		after := a.mustChanges(0).Rev
		before := api.verifier.Nonces()

		limited := 0
		paths := []string{proto.ChangesPath(a.id), proto.ChangesPath("0123456789abcdef"), proto.PairingPath}
		for i := range 10000 {
			_, key, _ := ed25519.GenerateKey(nil)
			r := httptest.NewRequest("GET", paths[i%len(paths)], nil)
			r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1234", 1+i%50)
			proto.Sign(r, nil, key, clk.Now())
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			switch {
			case w.Code == http.StatusTooManyRequests:
				limited++
			case w.Code == http.StatusUnauthorized && r.URL.Path != proto.PairingPath,
				w.Code == http.StatusOK && r.URL.Path == proto.PairingPath:
			default:
				t.Fatalf("request %d from an unpaired key to %s: %d %s", i, r.URL.Path, w.Code, w.Body)
			}
			if i%1000 == 999 {
				// The paired appliance, at 192.0.2.1 like a share of the
				// flood, syncs on.
				if c, code, pe := a.changes(proto.SyncQuery{After: after}); code != 200 {
					t.Fatalf("paired appliance's sync after %d flood requests: %d %v", i+1, code, pe)
				} else {
					after = c.Rev
				}
			}
		}
		if limited == 0 {
			t.Error("no unauthenticated request was rate limited")
		}
		if n := api.verifier.Nonces() - before; n != 10 {
			t.Errorf("replay cache grew by %d nonces, want the paired appliance's 10", n)
		}
		n, err := st.DeleteExpiredNonces(t.Context(), clk.Now().Add(10*proto.Window))
		if err != nil {
			t.Fatal(err)
		}
		if n != 12 { // the pairing request, the first sync, ten syncs
			t.Errorf("the store recorded %d nonces, want the paired appliance's 12", n)
		}
	})
}

// countingLimit counts the takes that reach a (shared) limit.
type countingLimit struct {
	ratelimit.Limit
	mu    sync.Mutex
	takes int
}

func (c *countingLimit) Allow(key string, now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	c.takes++
	c.mu.Unlock()
	return c.Limit.Allow(key, now)
}

// TestPairingBurstSparesSharedLimit: a burst of pairing requests from one
// address (a fleet behind one NAT) is limited in this process first, so
// only the requests this replica could grant reach the shared limit (one
// row every replica updates, where a burst used to queue until the takes
// timed out); the rest are answered 429 with Retry-After.
func TestPairingBurstSparesSharedLimit(t *testing.T) {
	clk := testkit.NewClock(t0)
	st := storetest.OpenSQLite(t)
	shared := &countingLimit{}
	rate := Rate{PerSecond: 0.5, Burst: 20}
	api, err := New(Config{Store: st, Clock: clk, Logger: testkit.Quiet(), PairingRate: rate,
		Limits: func(name string, r Rate) ratelimit.Limit { shared.Limit = ratelimit.New(r); return shared }})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, api: api, store: st, clock: clk, h: api.Handler()}
	const burst = 200
	var granted, limited int
	for range burst {
		a := e.newApp()
		body, _ := json.Marshal(proto.PairingRequest{BoxKey: a.boxPub[:], Version: "1.0"})
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, a.request("POST", proto.PairingPath, body))
		switch w.Code {
		case http.StatusOK:
			granted++
		case http.StatusTooManyRequests:
			limited++
			if w.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("pairing request: %d %s", w.Code, w.Body)
		}
	}
	if granted != rate.Burst || limited != burst-rate.Burst {
		t.Errorf("%d granted, %d limited; want %d and %d", granted, limited, rate.Burst, burst-rate.Burst)
	}
	if shared.takes != rate.Burst {
		t.Errorf("%d of %d requests reached the shared limit, want %d", shared.takes, burst, rate.Burst)
	}
}

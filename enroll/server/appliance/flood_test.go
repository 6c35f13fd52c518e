package appliance

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
	"github.com/totpbox/totpbox/internal/wallclock"
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
		if n != 11 { // the first sync, ten syncs (a pairing request's nonce is not kept)
			t.Errorf("the store recorded %d nonces, want the paired appliance's 11", n)
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

// TestPairingKeyFlood is the replay cache filled through a self-issued
// pairing key: a key asks for a pairing code, then floods signed status
// and code requests from the paired appliance's own address. Every one
// spends the address's budget (most are answered 429), none of their
// nonces reaches the replay cache or the store, and the paired appliance,
// with a replay cache far smaller than the flood, syncs on.
func TestPairingKeyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("6 000 signed requests")
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		st := open(t)
		api, err := New(Config{Store: st, Clock: clk, Logger: testkit.Quiet(), ReplayCacheSize: 200})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, api: api, store: st, clock: clk, h: api.Handler()}
		a := e.newApp()
		a.pair("A")
		after := a.mustChanges(0).Rev
		p := e.newApp()
		p.requestCode()
		before := api.verifier.Nonces()

		counts := map[int]int{}
		for i := range 6000 {
			r := p.request("GET", proto.PairingPath, nil)
			if i%6 == 5 {
				body, _ := json.Marshal(proto.PairingRequest{BoxKey: p.boxPub[:], Version: "1.0"})
				r = p.request("POST", proto.PairingPath, body)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			counts[w.Code]++
			if i%500 == 499 {
				if c, code, pe := a.changes(proto.SyncQuery{After: after}); code != 200 {
					t.Fatalf("paired appliance's sync after %d flood requests: %d %v", i+1, code, pe)
				} else {
					after = c.Rev
				}
			}
		}
		t.Logf("flood answers: %v", counts)
		if counts[http.StatusTooManyRequests] < 5000 {
			t.Errorf("%d of 6000 requests of a pairing key from one address answered 429, want nearly all (%v)", counts[http.StatusTooManyRequests], counts)
		}
		if n := api.verifier.Nonces() - before; n != 12 {
			t.Errorf("replay cache grew by %d nonces, want the paired appliance's 12", n)
		}
		n, err := st.DeleteExpiredNonces(t.Context(), clk.Now().Add(10*proto.Window))
		if err != nil {
			t.Fatal(err)
		}
		if n != 13 { // the first sync, twelve syncs
			t.Errorf("the store recorded %d nonces, want the paired appliance's 13", n)
		}
	})
}

// TestHeldPollsCapped: one pairing key holding 50 status long-polls, and
// 30 pairing keys holding one each, hold at most MaxHeldPerKey and
// Config.MaxPairingPolls in all; the others are answered at once. A
// paired appliance's sync is still held (it is online) all the while.
func TestHeldPollsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := storetest.OpenSQLite(t)
		api, err := New(Config{Store: st, Logger: testkit.Quiet(), PairingRate: Rate{PerSecond: -1},
			UnauthenticatedRate: Rate{PerSecond: -1}, MaxPairingPolls: 10})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, api: api, store: st, clock: wallclock.Clock{}, h: api.Handler()}
		a := e.newApp()
		a.pair("A")
		ctx, cancel := context.WithCancel(t.Context())
		var answered atomic.Int64
		var wg sync.WaitGroup
		poll := func(r *http.Request) {
			wg.Go(func() {
				e.h.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx))
				if ctx.Err() == nil {
					answered.Add(1)
				}
			})
		}
		poll(a.request("GET", proto.ChangesPath(a.id)+"?"+proto.SyncQuery{Wait: proto.MaxWait}.Encode().Encode(), nil))
		flood := e.newApp()
		flood.requestCode()
		for range 50 {
			poll(flood.request("GET", proto.PairingPath+"?wait=60", nil))
		}
		synctest.Wait()
		if n := answered.Load(); n != 50-MaxHeldPerKey {
			t.Errorf("one key's 50 long-polls: %d answered at once, want %d (%d held)", n, 50-MaxHeldPerKey, MaxHeldPerKey)
		}
		for range 30 {
			k := e.newApp()
			k.requestCode()
			poll(k.request("GET", proto.PairingPath+"?wait=60", nil))
		}
		synctest.Wait()
		if n := answered.Load(); n != 50+30-10 {
			t.Errorf("80 pairing long-polls: %d answered at once, want 70 (10 held in all)", n)
		}
		if in, _ := api.Appliance(t.Context(), a.id); !in.Online {
			t.Error("the paired appliance's held sync was answered or not counted during the flood")
		}
		cancel()
		wg.Wait()
	})
}

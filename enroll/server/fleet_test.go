package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// replicas returns n harnesses whose servers share one fresh PostgreSQL
// schema, the master key and the API token, each running (janitor and
// fleet bus) until the test ends, all listening for each other's notices.
// Their clocks are one.
func replicas(t testing.TB, n int, mod func(*Config)) []*harness {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	sealer := testSealer(t)
	clock := testkit.NewClock(start)
	var hs []*harness
	for i := range n {
		st, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(dsn, schema))
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		h := &harness{t: t, st: st, clock: clock, logs: &lockedBuffer{}}
		cfg := Config{Store: st, Sealer: sealer, Clock: clock,
			Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if mod != nil {
			mod(&cfg)
		}
		if h.srv, err = New(cfg); err != nil {
			t.Fatalf("New: %v", err)
		}
		if i == 0 {
			h.admin()
		}
		testkit.Run(t, h.srv.Run)
		hs = append(hs, h)
	}
	tok, err := api.CreateToken(t.Context(), hs[0].st, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		h.token = tok
		testkit.WaitFor(t, 30*time.Second, "fleet bus listening", h.srv.Bus().Live)
	}
	return hs
}

// heard waits until h's bus has heard more than before notices.
func heard(t testing.TB, h *harness, before int64) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, "notice heard", func() bool { return h.srv.Bus().Stats().Heard > before })
}

// TestFleetOfferWakesOtherReplica: an offer created through replica B
// answers the long-poll replica A holds at once, with no poll of the
// store (PollInterval is zero, and the wait a minute).
func TestFleetOfferWakesOtherReplica(t *testing.T) {
	hs := replicas(t, 2, nil)
	a, b := hs[0], hs[1]
	kiosk := a.newAppliance()
	in, err := a.srv.Appliances().Pair(t.Context(), kiosk.pairingCode(), "Lobby")
	if err != nil {
		t.Fatal(err)
	}
	kiosk.id = in.ID
	b.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice"})

	ts := httptest.NewServer(a.srv.Handler())
	defer ts.Close()
	got := make(chan proto.Changes, 1)
	go func() {
		q := proto.SyncQuery{Wait: proto.MaxWait}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+proto.ChangesPath(kiosk.id)+"?"+q.Encode().Encode(), nil)
		proto.Sign(req, nil, kiosk.sign, a.clock.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var c proto.Changes
		json.NewDecoder(resp.Body).Decode(&c)
		got <- c
	}()
	testkit.WaitFor(t, 30*time.Second, "long-poll held by A", func() bool {
		in, err := a.srv.Appliances().Appliance(context.Background(), kiosk.id)
		return err == nil && in.Online
	})
	b.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": "Token", "appliance": kiosk.id})
	select {
	case c := <-got:
		if len(c.Changes) != 1 || c.Changes[0].Kind != proto.KindOffer {
			t.Fatalf("A's long-poll answered %+v, want the offer", c)
		}
	case <-time.After(30 * time.Second): // a hang guard, far below MaxWait's minute
		t.Fatal("the offer written through B did not wake the long-poll held by A")
	}
}

// TestFleetPairingWakesOtherReplica: an appliance waiting to be paired
// holds its pairing long-poll on replica A; pairing it through replica B
// answers that poll at once. The appliance's key is raw bytes that are not
// valid UTF-8, as most keys are, so the wake must cross PostgreSQL's
// NOTIFY as text.
func TestFleetPairingWakesOtherReplica(t *testing.T) {
	hs := replicas(t, 2, nil)
	a, b := hs[0], hs[1]
	kiosk := a.newAppliance()
	for pub := kiosk.sign.Public().(ed25519.PublicKey); utf8.Valid(pub) && !bytes.Contains(pub, []byte{0}); pub = kiosk.sign.Public().(ed25519.PublicKey) {
		kiosk = a.newAppliance()
	}
	code := kiosk.pairingCode()

	ts := httptest.NewServer(a.srv.Handler())
	defer ts.Close()
	got := make(chan proto.Pairing, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+proto.PairingPath+"?wait=60", nil)
		proto.Sign(req, nil, kiosk.sign, a.clock.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var p proto.Pairing
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&p) != nil {
			p.State = resp.Status // an error answer is not a pairing state
		}
		got <- p
	}()
	before := a.srv.Bus().Stats().Heard
	if _, err := b.srv.Appliances().Pair(t.Context(), code, "Lobby"); err != nil {
		t.Fatal(err)
	}
	heard(t, a, before)
	select {
	case p := <-got:
		if p.State != proto.PairingPaired {
			t.Fatalf("A's pairing long-poll answered %+v, want paired", p)
		}
	case <-time.After(30 * time.Second): // a hang guard, below the poll's minute
		t.Fatal("pairing through B did not wake the pairing long-poll held by A")
	}
}

// TestFleetCacheInvalidation: replica A caches a user for the verify path;
// a device registered and a device deleted through B take effect on A at
// once, not after the cache's TTL (the clock does not move).
func TestFleetCacheInvalidation(t *testing.T) {
	hs := replicas(t, 2, func(c *Config) { c.CacheTTL = time.Hour })
	a, b := hs[0], hs[1]
	k1, _ := b.registered("alice", "Phone")
	code := func(k enroll.Key) string { return enroll.Code(k, a.clock.Now()) }
	a.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "alice", "code": code(k1)})
	a.clock.Advance(30 * time.Second)

	before := a.srv.Bus().Stats().Heard
	k2, id2 := b.registered("alice", "Token")
	heard(t, a, before)
	if v := a.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "alice", "code": code(k2)}); v["ok"] != true {
		t.Fatalf("verify on A with the device registered through B = %v, want valid", v)
	}
	a.clock.Advance(30 * time.Second)

	before = a.srv.Bus().Stats().Heard
	b.mustCall(204, "DELETE", devPath("alice", id2), nil)
	heard(t, a, before)
	if status, v := a.call("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": code(k2)}); status == 200 && v["ok"] == true {
		t.Fatalf("verify on A with the device deleted through B = %d %v, want refused", status, v)
	}
}

// TestFleetSharedLimits: three replicas on one database give an attacker
// one replica's budget. 16 parallel verifies of one user on each replica
// (48, with VerifyPerUser's burst of 10 and a clock that does not move):
// exactly 10 get past the limit; pairing code requests from one address
// spread over the replicas get PairingRate's burst, not three times it.
func TestFleetSharedLimits(t *testing.T) {
	hs := replicas(t, 3, func(c *Config) {
		c.Appliance.PairingRate = Rate{PerSecond: 0.5, Burst: 4}
	})
	k, _ := hs[0].registered("alice", "Phone")
	code := enroll.Code(k, hs[0].clock.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	past := 0
	for _, h := range hs {
		for range 16 {
			wg.Go(func() {
				status, raw := h.callRaw("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": code}, h.token)
				var v map[string]any
				json.Unmarshal(raw, &v)
				if v["reason"] != core.ReasonRateLimited {
					mu.Lock()
					past++
					mu.Unlock()
				} else if status != http.StatusTooManyRequests {
					t.Errorf("rate-limited verify answered %d", status)
				}
			})
		}
	}
	wg.Wait()
	if past != DefaultLimits.VerifyPerUser.Burst {
		t.Errorf("%d of 48 verifies got past the per-user limit on 3 replicas, want %d", past, DefaultLimits.VerifyPerUser.Burst)
		for i, h := range hs {
			for _, line := range strings.Split(h.logs.String(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					t.Logf("replica %d: %s", i, line)
				}
			}
		}
	}

	granted := 0
	for i := range 12 {
		kiosk := hs[i%3].newAppliance()
		body, _ := json.Marshal(proto.PairingRequest{BoxKey: kiosk.boxPub[:], Version: "1"})
		if status, _ := kiosk.do("POST", proto.PairingPath, body, nil); status == http.StatusOK {
			granted++
		}
	}
	if granted != 4 {
		t.Errorf("%d of 12 pairing requests from one address granted on 3 replicas, want 4", granted)
	}
}

// TestFleetOfferDeliveryTimed: every delivered offer is timed once, by
// the replica whose sync hands it to the appliance, whether the sync was
// held when the offer came (woken through the bus) or new, and whichever
// replica sent it. A sync that carries an offer again (unanswered) does
// not time it again.
func TestFleetOfferDeliveryTimed(t *testing.T) {
	hs := replicas(t, 2, nil)
	a, b := hs[0], hs[1]
	kiosk := a.newAppliance()
	in, err := a.srv.Appliances().Pair(t.Context(), kiosk.pairingCode(), "Lobby")
	if err != nil {
		t.Fatal(err)
	}
	kiosk.id = in.ID
	kiosk.sync(nil)
	b.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice"})
	send := func(h *harness, name string) {
		t.Helper()
		h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": name, "appliance": kiosk.id})
	}

	// 1. Held on A, sent through B.
	ts := httptest.NewServer(a.srv.Handler())
	defer ts.Close()
	got := make(chan proto.Changes, 1)
	go func() {
		q := proto.SyncQuery{After: kiosk.rev, Wait: proto.MaxWait}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+proto.ChangesPath(kiosk.id)+"?"+q.Encode().Encode(), nil)
		proto.Sign(req, nil, kiosk.sign, a.clock.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(got)
			return
		}
		defer resp.Body.Close()
		var c proto.Changes
		json.NewDecoder(resp.Body).Decode(&c)
		got <- c
	}()
	testkit.WaitFor(t, 30*time.Second, "long-poll held by A", func() bool {
		in, err := a.srv.Appliances().Appliance(context.Background(), kiosk.id)
		return err == nil && in.Online
	})
	send(b, "Held")
	select {
	case c := <-got:
		if len(c.Changes) != 1 || c.Changes[0].Kind != proto.KindOffer {
			t.Fatalf("A's long-poll answered %+v, want the offer", c)
		}
		kiosk.rev = c.Rev
	case <-time.After(30 * time.Second): // a hang guard, far below MaxWait's minute
		t.Fatal("the offer written through B did not wake the long-poll held by A")
	}

	// 2. Sent through B, found by a new sync on A.
	send(b, "New")
	a.clock.Advance(250 * time.Millisecond)
	if cs := kiosk.sync(nil); len(cs) != 2 {
		t.Fatalf("A's sync carried %s, want both open offers", kinds(cs))
	}

	// 3. Sent through A, found by a new sync on B.
	send(a, "Other")
	onB := *kiosk
	onB.h = b
	if cs := onB.sync(nil); len(cs) != 3 {
		t.Fatalf("B's sync carried %s, want the three open offers", kinds(cs))
	}
	kiosk.rev = onB.rev

	// 4. Nothing new: the open offers again, timed no more.
	kiosk.sync(nil)
	onB.sync(nil)

	ma, mb := scrape(t, a), scrape(t, b)
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"A's delivered offers", ma["totpserver_offer_delivery_seconds_count"], 2},
		{"B's delivered offers", mb["totpserver_offer_delivery_seconds_count"], 1},
		{"offers sent, both replicas", ma["totpserver_offers_sent_total"] + mb["totpserver_offers_sent_total"], 3},
		{"A's delivery time (the new sync's 0.25 s)", ma["totpserver_offer_delivery_seconds_sum"], 0.25},
	} {
		if tc.got < tc.want-1e-9 || tc.got > tc.want+1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

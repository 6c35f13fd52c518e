package appliance

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// replay returns a copy of r with the same headers, as an attacker who
// captured r would send it.
func replay(r *http.Request) *http.Request {
	c := httptest.NewRequest(r.Method, r.URL.String(), nil)
	c.RemoteAddr = "198.51.100.7:4321"
	c.Header = r.Header.Clone()
	return c
}

func TestReplayToAnotherServer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		st := open(t)
		first := newEnvWith(t, clk, st)
		a := first.newApp()
		a.pair("A")
		captured := a.request("GET", proto.ChangesPath(a.id), nil)
		var out any
		if code, pe := first.serve(captured, &out); code != 200 {
			t.Fatalf("first request: %d %v", code, pe)
		}

		// A replica over the same store, or the server after a restart:
		// its in-memory replay cache is empty.
		second := newEnvWith(t, clk, st)
		a.e = second
		if code, pe := second.serve(a.request("GET", proto.ChangesPath(a.id), nil), &out); code != 200 {
			t.Fatalf("fresh request to the second server: %d %v", code, pe)
		}
		code, pe := second.serve(replay(captured), &out)
		if code != http.StatusUnauthorized || pe.Code != proto.CodeReplay {
			t.Errorf("replay to the second server: %d %q (%s), want 401 %q", code, pe.Code, pe.Message, proto.CodeReplay)
		}
		code, pe = first.serve(replay(captured), &out)
		if code != http.StatusUnauthorized || pe.Code != proto.CodeReplay {
			t.Errorf("replay to the first server: %d %q (%s), want 401 %q", code, pe.Code, pe.Message, proto.CodeReplay)
		}

		// At the last instant the timestamp is accepted, pruning must not
		// have freed the nonce yet.
		clk.Advance(proto.Window)
		second.api.prune(t.Context())
		third := newEnvWith(t, clk, st)
		code, pe = third.serve(replay(captured), &out)
		if code != http.StatusUnauthorized || pe.Code != proto.CodeReplay {
			t.Errorf("replay at the window's end after pruning: %d %q (%s), want 401 %q", code, pe.Code, pe.Message, proto.CodeReplay)
		}

		// Past the window the timestamp alone refuses the request, and the
		// janitor forgets the nonce.
		keyID := proto.KeyID(a.sign.Public().(ed25519.PublicKey))
		nonce := captured.Header.Get(proto.HeaderNonce)
		clk.Advance(nonceMargin)
		code, pe = third.serve(replay(captured), &out)
		if code != http.StatusUnauthorized || pe.Code != proto.CodeClockSkew {
			t.Errorf("replay after the window: %d %q (%s), want 401 %q", code, pe.Code, pe.Message, proto.CodeClockSkew)
		}
		if err := st.UseNonce(t.Context(), keyID, nonce, clk.Now().Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("UseNonce before pruning = %v, want ErrConflict", err)
		}
		third.api.prune(t.Context())
		if err := st.UseNonce(t.Context(), keyID, nonce, clk.Now().Add(time.Minute)); err != nil {
			t.Errorf("UseNonce after pruning = %v, want the nonce forgotten", err)
		}
	})
}

func TestNonceStoreFailure(t *testing.T) {
	clk := testkit.NewClock(t0)
	st := &failingNonces{Store: storetest.OpenSQLite(t)}
	e := newEnvWith(t, clk, st)
	a := e.newApp()
	a.pair("A")
	st.down.Store(true)
	var out any
	code, pe := e.serve(a.request("GET", proto.ChangesPath(a.id), nil), &out)
	if code != http.StatusInternalServerError || pe.Code != proto.CodeInternal {
		t.Errorf("request while the nonce store fails: %d %q (%s), want 500 %q", code, pe.Code, pe.Message, proto.CodeInternal)
	}
	st.down.Store(false)
	if code, pe := e.serve(a.request("GET", proto.ChangesPath(a.id), nil), &out); code != 200 {
		t.Errorf("request after the store recovered: %d %v", code, pe)
	}
}

// failingNonces is a store whose UseNonce and SyncAppliance (which
// records a sync's nonce) fail while down is set.
type failingNonces struct {
	Store
	down atomic.Bool
}

func (f *failingNonces) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if f.down.Load() {
		return errors.New("use nonce: database is down")
	}
	return f.Store.UseNonce(ctx, keyID, nonce, expires)
}

func (f *failingNonces) SyncAppliance(ctx context.Context, r store.SyncRequest) (store.SyncResult, error) {
	if f.down.Load() {
		return store.SyncResult{}, errors.New("sync appliance: database is down")
	}
	return f.Store.SyncAppliance(ctx, r)
}

// TestPairingStatusDuringPairing: a pairing committed between the status
// read's look for an appliance and its look for a code (another replica
// pairing the key at that moment) answers paired, never "none", which
// would send the appliance back to asking for a new code.
func TestPairingStatusDuringPairing(t *testing.T) {
	clk := testkit.NewClock(t0)
	st := &pairingBetween{Store: storetest.OpenSQLite(t)}
	e := newEnvWith(t, clk, st)
	a := e.newApp()
	p := a.requestCode()
	st.pair = func() {
		if _, err := e.api.Pair(context.Background(), p.Code, "Lobby"); err != nil {
			t.Error(err)
		}
	}
	var got proto.Pairing
	if code, pe := e.serve(a.request("GET", proto.PairingPath, nil), &got); code != 200 || got.State != proto.PairingPaired {
		t.Errorf("status read across the pairing = %d %+v %v, want paired", code, got, pe)
	}
}

// pairingBetween runs pair once, just before the first PairingCodeByKey.
type pairingBetween struct {
	Store
	once sync.Once
	pair func()
}

func (p *pairingBetween) PairingCodeByKey(ctx context.Context, key []byte, now time.Time) (store.PairingCode, error) {
	if p.pair != nil {
		p.once.Do(p.pair)
	}
	return p.Store.PairingCodeByKey(ctx, key, now)
}

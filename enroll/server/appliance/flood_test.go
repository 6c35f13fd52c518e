package appliance

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/totpbox/totpbox/enroll/proto"
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

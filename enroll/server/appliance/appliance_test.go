package appliance

import (
	"github.com/totpbox/totpbox/internal/testkit"
	"slices"

	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/wallclock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	api   *API
	store Store
	clock Clock
	h     http.Handler
}

// newEnv returns an API on a fresh SQLite store. A nil clock means the real
// one (the fake one of a synctest bubble).
func newEnv(t *testing.T, clk Clock) *env {
	return newEnvWith(t, clk, storetest.OpenSQLite(t))
}

// newEnvWith returns an API on st.
func newEnvWith(t *testing.T, clk Clock, st Store) *env {
	api, err := New(Config{Store: st, Clock: clk, Logger: testkit.Quiet(), PairingRate: Rate{PerSecond: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if clk == nil {
		clk = wallclock.Clock{}
	}
	return &env{t: t, api: api, store: st, clock: clk, h: api.Handler()}
}

// tapp is a test appliance: its keys, and its id once paired.
type tapp struct {
	e       *env
	sign    ed25519.PrivateKey
	boxPub  *[32]byte
	boxPriv *[32]byte
	id      string
}

func (e *env) newApp() *tapp {
	_, sign, _ := ed25519.GenerateKey(nil)
	pub, priv, _ := box.GenerateKey(rand.Reader)
	return &tapp{e: e, sign: sign, boxPub: pub, boxPriv: priv}
}

// request builds a request signed by a (unsigned when a is nil).
func (a *tapp) request(method, target string, body []byte) *http.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.RemoteAddr = "192.0.2.1:1234"
	if a != nil {
		proto.Sign(r, body, a.sign, a.e.clock.Now())
	}
	return r
}

// serve runs r through the handler and decodes a 2xx answer into out, or
// returns the error body.
func (e *env) serve(r *http.Request, out any) (int, proto.Error) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var pe proto.Error
	b, _ := io.ReadAll(w.Body)
	if w.Code/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: answer %q: %v", r.Method, r.URL, b, err)
		}
	} else if err := json.Unmarshal(b, &pe); err != nil {
		e.t.Fatalf("%s %s: error answer %q: %v", r.Method, r.URL, b, err)
	}
	return w.Code, pe
}

func (a *tapp) requestCode() proto.Pairing {
	a.e.t.Helper()
	body, _ := json.Marshal(proto.PairingRequest{BoxKey: a.boxPub[:], Version: "1.0"})
	var p proto.Pairing
	if code, pe := a.e.serve(a.request("POST", proto.PairingPath, body), &p); code != 200 {
		a.e.t.Fatalf("request code: %d %v", code, pe)
	}
	return p
}

// pair pairs a through the console under name.
func (a *tapp) pair(name string) {
	a.e.t.Helper()
	p := a.requestCode()
	in, err := a.e.api.Pair(context.Background(), p.Code, name)
	if err != nil {
		a.e.t.Fatalf("Pair: %v", err)
	}
	a.id = in.ID
}

func (a *tapp) changes(q proto.SyncQuery) (proto.Changes, int, proto.Error) {
	var c proto.Changes
	code, pe := a.e.serve(a.request("GET", proto.ChangesPath(a.id)+"?"+q.Encode().Encode(), nil), &c)
	return c, code, pe
}

func (a *tapp) mustChanges(after int64) proto.Changes {
	a.e.t.Helper()
	c, code, pe := a.changes(proto.SyncQuery{After: after})
	if code != 200 {
		a.e.t.Fatalf("changes after %d: %d %v", after, code, pe)
	}
	return c
}

func (a *tapp) ack(acks ...proto.Ack) (proto.AckResponse, int, proto.Error) {
	body, _ := json.Marshal(proto.AckRequest{Acks: acks})
	var r proto.AckResponse
	code, pe := a.e.serve(a.request("POST", proto.AckPath(a.id), body), &r)
	return r, code, pe
}

func (a *tapp) mustAck(acks ...proto.Ack) proto.AckResponse {
	a.e.t.Helper()
	r, code, pe := a.ack(acks...)
	if code != 200 {
		a.e.t.Fatalf("ack %v: %d %v", acks, code, pe)
	}
	return r
}

func testKey(t *testing.T) enroll.Key {
	k, err := enroll.NewKey("Example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPairing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		a := e.newApp()
		p := a.requestCode()
		if p.State != proto.PairingWaiting || len(p.Code) != proto.CodeLen || strings.Trim(p.Code, proto.CodeAlphabet) != "" {
			t.Fatalf("pairing = %+v, want waiting with %d characters of %s", p, proto.CodeLen, proto.CodeAlphabet)
		}
		if !p.ExpiresAt.Equal(t0.Add(DefaultPairingCodeTTL)) {
			t.Errorf("code expires %v, want %v", p.ExpiresAt, t0.Add(DefaultPairingCodeTTL))
		}
		if again := a.requestCode(); again.Code != p.Code {
			t.Errorf("second request gave code %q, want the live one", again.Code)
		}
		var st proto.Pairing
		if code, pe := e.serve(a.request("GET", proto.PairingPath, nil), &st); code != 200 || st.State != proto.PairingWaiting || st.Code != p.Code {
			t.Fatalf("status = %d %+v %v, want waiting", code, st, pe)
		}
		if _, err := e.api.Pair(context.Background(), "ZZZZ-ZZZZ", "Lobby kiosk 3"); !errors.Is(err, ErrBadCode) {
			t.Errorf("Pair with a wrong code = %v, want ErrBadCode", err)
		}
		typed := strings.ToLower(p.Code[:4] + "-" + p.Code[4:])
		in, err := e.api.Pair(context.Background(), typed, "  Lobby kiosk 3 ")
		if err != nil {
			t.Fatal(err)
		}
		if in.Name != "Lobby kiosk 3" || in.ID == "" || !in.Paired.Equal(t0) || in.Version != "1.0" {
			t.Errorf("Pair = %+v", in)
		}
		if code, _ := e.serve(a.request("GET", proto.PairingPath, nil), &st); code != 200 || st.State != proto.PairingPaired || st.ApplianceID != in.ID || st.Name != in.Name {
			t.Errorf("status after pairing = %+v, want paired as %s", st, in.ID)
		}
		if p2 := a.requestCode(); p2.State != proto.PairingPaired {
			t.Errorf("code request after pairing = %+v, want paired", p2)
		}
		if _, err := e.api.Pair(context.Background(), p.Code, "Other"); !errors.Is(err, ErrBadCode) {
			t.Errorf("second Pair with a used code = %v, want ErrBadCode", err)
		}
		b := e.newApp()
		pb := b.requestCode()
		if _, err := e.api.Pair(context.Background(), pb.Code, "LOBBY KIOSK 3"); !errors.Is(err, ErrNameTaken) {
			t.Errorf("Pair with a taken name = %v, want ErrNameTaken", err)
		}
		for _, name := range []string{"", "   ", "tab\tname", strings.Repeat("x", MaxNameLen+1)} {
			if _, err := e.api.Pair(context.Background(), pb.Code, name); err == nil {
				t.Errorf("Pair with name %q succeeded", name)
			}
		}
		// Expiry: the code stops working and a new one is issued.
		clk.Advance(DefaultPairingCodeTTL)
		if code, _ := e.serve(b.request("GET", proto.PairingPath, nil), &st); code != 200 || st.State != proto.PairingNone {
			t.Errorf("status after expiry = %+v, want none", st)
		}
		if _, err := e.api.Pair(context.Background(), pb.Code, "Kiosk 4"); !errors.Is(err, ErrBadCode) {
			t.Errorf("Pair with an expired code = %v, want ErrBadCode", err)
		}
		if pb2 := b.requestCode(); pb2.Code == pb.Code || pb2.State != proto.PairingWaiting {
			t.Errorf("code after expiry = %+v, want a new one", pb2)
		}
		list, err := e.api.Appliances(context.Background())
		if err != nil || len(list) != 1 || list[0].ID != in.ID {
			t.Errorf("Appliances = %+v, %v", list, err)
		}
	})
}

func TestPairingRequestChecks(t *testing.T) {
	e := newEnv(t, testkit.NewClock(t0))
	api, err := New(Config{Store: e.store, Clock: e.clock, Logger: testkit.Quiet(), PairingRate: Rate{PerSecond: 0.1, Burst: 2}})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	e.h = e.api.Handler()
	a := e.newApp()
	var p proto.Pairing
	if code, pe := e.serve(a.request("POST", proto.PairingPath, []byte(`{"box_key":"AAAA"}`)), &p); code != 400 {
		t.Errorf("short box key: %d %v, want 400", code, pe)
	}
	e.newApp().requestCode()
	if code, pe := e.serve(e.newApp().request("POST", proto.PairingPath, nil), &p); code != 429 || pe.Code != proto.CodeRateLimited {
		t.Errorf("third request from one address: %d %v, want 429", code, pe)
	}
	if code, pe := e.serve((*tapp)(nil).request("POST", proto.PairingPath, nil), &p); code != 429 {
		t.Errorf("unsigned, rate limited first: %d %v", code, pe)
	}
}

func TestAuth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		a, b, stranger := e.newApp(), e.newApp(), e.newApp()
		a.pair("A")
		b.pair("B")
		ack, _ := json.Marshal(proto.AckRequest{Acks: []proto.Ack{}})
		replayed := a.request("GET", proto.ChangesPath(a.id), nil)
		var out any
		if code, pe := e.serve(replayed, &out); code != 200 {
			t.Fatalf("first request: %d %v", code, pe)
		}
		tests := []struct {
			name     string
			req      func() *http.Request
			status   int
			wantCode string
		}{
			{"unsigned", func() *http.Request { return (*tapp)(nil).request("GET", proto.ChangesPath(a.id), nil) }, 401, proto.CodeUnsigned},
			{"tampered body", func() *http.Request {
				r := a.request("POST", proto.AckPath(a.id), ack)
				r.Body = io.NopCloser(strings.NewReader(`{"acks":[{"rev":1,"result":"applied"}]}`))
				return r
			}, 401, proto.CodeBadSignature},
			{"tampered query", func() *http.Request {
				r := a.request("GET", proto.ChangesPath(a.id)+"?after=5", nil)
				r.URL.RawQuery = "after=0"
				return r
			}, 401, proto.CodeBadSignature},
			{"wrong key", func() *http.Request {
				r := stranger.request("GET", proto.ChangesPath(a.id), nil)
				r.Header.Set(proto.HeaderKey, proto.KeyID(a.sign.Public().(ed25519.PublicKey)))
				return r
			}, 401, proto.CodeBadSignature},
			{"unpaired key", func() *http.Request { return stranger.request("GET", proto.ChangesPath(a.id), nil) }, 401, proto.CodeNotPaired},
			{"replayed", func() *http.Request {
				r := httptest.NewRequest("GET", proto.ChangesPath(a.id), nil)
				r.Header = replayed.Header.Clone()
				return r
			}, 401, proto.CodeReplay},
			{"old timestamp", func() *http.Request {
				r := httptest.NewRequest("GET", proto.ChangesPath(a.id), nil)
				proto.Sign(r, nil, a.sign, t0.Add(-proto.Window-time.Second))
				return r
			}, 401, proto.CodeClockSkew},
			{"another appliance's changes", func() *http.Request { return a.request("GET", proto.ChangesPath(b.id), nil) }, 403, proto.CodeForbidden},
			{"another appliance's ack", func() *http.Request { return a.request("POST", proto.AckPath(b.id), ack) }, 403, proto.CodeForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, pe := e.serve(tt.req(), &out)
				if code != tt.status || pe.Code != tt.wantCode {
					t.Errorf("got %d %q (%s), want %d %q", code, pe.Code, pe.Message, tt.status, tt.wantCode)
				}
				if tt.wantCode == proto.CodeClockSkew && !pe.ServerTime.Equal(t0) {
					t.Errorf("clock skew answer carries server time %v, want %v", pe.ServerTime, t0)
				}
			})
		}
	})
}

func TestOfferAcceptActivateRenameDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		ctx := context.Background()
		a := e.newApp()
		a.pair("Kiosk")
		key := testKey(t)
		if err := e.api.SendOffer(ctx, a.id, "dev1", "alice", "Alice's kiosk", key, t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Sending again changes nothing.
		if err := e.api.SendOffer(ctx, a.id, "dev1", "alice", "Alice's kiosk", key, t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		c := a.mustChanges(0)
		if len(c.Changes) != 1 {
			t.Fatalf("changes = %+v, want one offer", c.Changes)
		}
		o := c.Changes[0]
		if o.Kind != proto.KindOffer || o.DeviceID != "dev1" || o.User != "alice" || o.DeviceName != "Alice's kiosk" || o.State != proto.StatePending {
			t.Fatalf("offer = %+v", o)
		}
		got, seq, err := proto.OpenOffer(o.Sealed, "dev1", a.boxPub, a.boxPriv)
		if err != nil || !bytes.Equal(got.Secret, key.Secret) {
			t.Fatalf("OpenOffer = %v, %v; want the sent key", got, err)
		}
		// The console shows the very sequence sealed for the appliance.
		if st, _ := e.api.OfferState(ctx, "dev1"); st.State != proto.StatePending || st.ApplianceName != "Kiosk" || !slices.Equal(st.Sequence, seq) {
			t.Errorf("OfferState = %+v, want pending on Kiosk with sequence %v", st, seq)
		}
		// Until answered, the offer comes back whatever the cursor.
		if c := a.mustChanges(o.Rev); len(c.Changes) != 1 || c.Changes[0].Rev != o.Rev {
			t.Errorf("changes after the offer = %+v, want the open offer again", c.Changes)
		}
		if r := a.mustAck(proto.Ack{Rev: o.Rev, Result: proto.ResultAccepted}); r.Results[0].State != proto.StateAccepted {
			t.Errorf("ack = %+v", r)
		}
		if r := a.mustAck(proto.Ack{Rev: o.Rev, Result: proto.ResultAccepted}); r.Results[0].State != proto.StateAccepted {
			t.Errorf("second ack = %+v, want accepted again", r)
		}
		if _, code, _ := a.ack(proto.Ack{Rev: o.Rev, Result: proto.ResultApplied}); code != 400 {
			t.Errorf("ack of an offer as applied: %d, want 400", code)
		}
		if c := a.mustChanges(o.Rev); len(c.Changes) != 0 {
			t.Errorf("changes after an accepted offer = %+v, want none", c.Changes)
		}
		if st, _ := e.api.OfferState(ctx, "dev1"); st.State != proto.StateAccepted {
			t.Errorf("OfferState = %+v, want accepted", st)
		}
		for _, err := range []error{
			e.api.DeviceChanged(ctx, DeviceChange{Kind: store.ChangeActivate, DeviceUID: "dev1"}),
			e.api.DeviceChanged(ctx, DeviceChange{Kind: store.ChangeRename, DeviceUID: "dev1", Name: "Front desk"}),
			e.api.DeviceChanged(ctx, DeviceChange{Kind: store.ChangeDelete, DeviceUID: "dev1"}),
			e.api.DeviceChanged(ctx, DeviceChange{Kind: store.ChangeActivate, DeviceUID: "not-on-an-appliance"}),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		c = a.mustChanges(o.Rev)
		var kinds []string
		for _, ch := range c.Changes {
			kinds = append(kinds, ch.Kind)
			if ch.DeviceID != "dev1" {
				t.Errorf("change %+v is not for dev1", ch)
			}
		}
		if strings.Join(kinds, ",") != "activate,rename,delete" || c.Changes[1].Name != "Front desk" || c.Rev != o.Rev+3 {
			t.Fatalf("changes = %+v (rev %d), want activate, rename to Front desk, delete", c.Changes, c.Rev)
		}
		for _, ch := range c.Changes {
			a.mustAck(proto.Ack{Rev: ch.Rev, Result: proto.ResultApplied})
		}
		if c := a.mustChanges(c.Rev); len(c.Changes) != 0 {
			t.Errorf("changes after everything = %+v", c.Changes)
		}
	})
}

func TestOfferRejectCancelExpire(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		ctx := context.Background()
		a, b := e.newApp(), e.newApp()
		a.pair("A")
		b.pair("B")
		key := testKey(t)
		exp := t0.Add(10 * time.Minute)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		// Rejected on the appliance.
		must(e.api.SendOffer(ctx, a.id, "dev1", "alice", "one", key, exp))
		o := a.mustChanges(0).Changes[0]
		a.mustAck(proto.Ack{Rev: o.Rev, Result: proto.ResultRejected})
		if st, _ := e.api.OfferState(ctx, "dev1"); st.State != proto.StateRejected || st.Answered.IsZero() {
			t.Errorf("OfferState = %+v, want rejected", st)
		}
		if r, _, _ := a.ack(proto.Ack{Rev: o.Rev, Result: proto.ResultAccepted}); r.Results[0].State != proto.StateRejected {
			t.Errorf("accept after reject = %+v, want it to stay rejected", r)
		}
		// Sent to A, then to B: A's offer is withdrawn.
		must(e.api.SendOffer(ctx, a.id, "dev2", "bob", "two", key, exp))
		must(e.api.SendOffer(ctx, b.id, "dev2", "bob", "two", key, exp))
		ca := a.mustChanges(o.Rev)
		if len(ca.Changes) != 2 || ca.Changes[0].State != proto.StateCancelled || ca.Changes[1].Kind != proto.KindCancel {
			t.Errorf("A's changes = %+v, want the offer cancelled and a cancel", ca.Changes)
		}
		if st, _ := e.api.OfferState(ctx, "dev2"); st.State != proto.StatePending || st.ApplianceID != b.id {
			t.Errorf("OfferState = %+v, want pending on B", st)
		}
		ob := b.mustChanges(0).Changes[0]
		b.mustAck(proto.Ack{Rev: ob.Rev, Result: proto.ResultAccepted})
		if err := e.api.SendOffer(ctx, a.id, "dev2", "bob", "two", key, exp); !errors.Is(err, ErrOnAnother) {
			t.Errorf("SendOffer of a device accepted elsewhere = %v, want ErrOnAnother", err)
		}
		// CancelOffer reaches only a pending offer.
		must(e.api.SendOffer(ctx, a.id, "dev3", "carol", "three", key, exp))
		must(e.api.CancelOffer(ctx, "dev3"))
		must(e.api.CancelOffer(ctx, "dev2")) // accepted on B: nothing to cancel
		if c := b.mustChanges(ob.Rev); len(c.Changes) != 0 {
			t.Errorf("B's changes after CancelOffer of an accepted device = %+v", c.Changes)
		}
		if st, _ := e.api.OfferState(ctx, "dev3"); st.State != proto.StateCancelled {
			t.Errorf("OfferState = %+v, want cancelled", st)
		}
		// An offer past its expiry is no longer sent and reads expired.
		must(e.api.SendOffer(ctx, a.id, "dev4", "dan", "four", key, t0.Add(time.Minute)))
		clk.Advance(time.Minute)
		for _, ch := range a.mustChanges(a.mustChanges(0).Rev).Changes {
			if ch.DeviceID == "dev4" {
				t.Errorf("expired offer still sent: %+v", ch)
			}
		}
		if st, _ := e.api.OfferState(ctx, "dev4"); st.State != StateExpired {
			t.Errorf("OfferState = %+v, want expired", st)
		}
		if err := e.api.SendOffer(ctx, a.id, "dev5", "x", "y", key, clk.Now()); !errors.Is(err, ErrAlreadyExpired) {
			t.Errorf("SendOffer expiring now = %v", err)
		}
		if _, err := e.api.OfferState(ctx, "never"); !errors.Is(err, ErrNoOffer) {
			t.Errorf("OfferState of an unsent device = %v", err)
		}
		if err := e.api.SendOffer(ctx, "nope", "dev6", "x", "y", key, exp); !errors.Is(err, ErrNoAppliance) {
			t.Errorf("SendOffer to no appliance = %v", err)
		}
	})
}

func TestUnpair(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		ctx := context.Background()
		a := e.newApp()
		a.pair("A")
		if err := e.api.SendOffer(ctx, a.id, "dev1", "alice", "one", testKey(t), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := e.api.Unpair(ctx, a.id); err != nil {
			t.Fatal(err)
		}
		if err := e.api.Unpair(ctx, a.id); err != nil {
			t.Fatalf("second Unpair: %v", err)
		}
		if in, _ := e.api.Appliance(ctx, a.id); !in.Unpairing {
			t.Errorf("Appliance = %+v, want Unpairing", in)
		}
		if err := e.api.SendOffer(ctx, a.id, "dev2", "bob", "two", testKey(t), t0.Add(time.Hour)); !errors.Is(err, ErrUnpairing) {
			t.Errorf("SendOffer to an unpairing appliance = %v", err)
		}
		c := a.mustChanges(0)
		if len(c.Changes) != 2 || c.Changes[0].State != proto.StateCancelled || c.Changes[1].Kind != proto.KindUnpair {
			t.Fatalf("changes = %+v, want the cancelled offer and unpair", c.Changes)
		}
		a.mustAck(proto.Ack{Rev: c.Changes[1].Rev, Result: proto.ResultApplied})
		if _, code, pe := a.changes(proto.SyncQuery{}); code != 401 || pe.Code != proto.CodeNotPaired {
			t.Errorf("sync after the unpair ack: %d %v, want 401 not_paired", code, pe)
		}
		if list, _ := e.api.Appliances(ctx); len(list) != 0 {
			t.Errorf("Appliances = %+v, want none", list)
		}
		if p := a.requestCode(); p.State != proto.PairingWaiting {
			t.Errorf("code request after unpair = %+v, want a new code", p)
		}
		var audited bool
		events, _ := e.store.(store.Store).AuditEvents(ctx, 0, 0)
		for _, ev := range events {
			audited = audited || ev.Action == "appliance.unpaired" && ev.Actor == "appliance:A"
		}
		if !audited {
			t.Error("unpair ack not audited")
		}
		if err := e.api.Unpair(ctx, a.id); !errors.Is(err, ErrNoAppliance) {
			t.Errorf("Unpair of a gone appliance = %v", err)
		}
	})
}

func TestClockReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		a := e.newApp()
		a.pair("A")
		q := proto.SyncQuery{Version: "2.0", Accounts: 3, Clock: &proto.ClockReport{
			Time: t0.Add(-1500 * time.Millisecond), Bound: 20 * time.Millisecond, State: "SYNCED", Frequency: 12.5}}
		if _, code, pe := a.changes(q); code != 200 {
			t.Fatalf("%d %v", code, pe)
		}
		in, err := e.api.Appliance(context.Background(), a.id)
		if err != nil {
			t.Fatal(err)
		}
		want := ClockReport{ApplianceTime: q.Clock.Time, Bound: q.Clock.Bound, State: "SYNCED", Frequency: 12.5, Offset: 1500 * time.Millisecond, At: t0}
		if in.Clock == nil || *in.Clock != want || in.Version != "2.0" || in.Accounts != 3 || !in.LastSeen.Equal(t0) || in.Warning != "" {
			t.Errorf("Appliance = %+v, clock %+v; want clock %+v", in, in.Clock, want)
		}
	})
}

func TestSecretsReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		clk := testkit.NewClock(t0)
		e := newEnvWith(t, clk, open(t))
		a := e.newApp()
		a.pair("A")
		secrets := func() string {
			t.Helper()
			in, err := e.api.Appliance(context.Background(), a.id)
			if err != nil {
				t.Fatal(err)
			}
			return in.Secrets
		}
		if got := secrets(); got != "" {
			t.Errorf("secrets before any sync = %q, want empty (unknown)", got)
		}
		// Each sync replaces the mode with what it says; one that says
		// nothing leaves it unknown.
		for _, mode := range []string{proto.SecretsSoftware, proto.SecretsTPM, "", proto.SecretsSoftware} {
			if _, code, pe := a.changes(proto.SyncQuery{Version: "2.0", Secrets: mode}); code != 200 {
				t.Fatalf("sync with secrets=%q: %d %v", mode, code, pe)
			}
			if got := secrets(); got != mode {
				t.Errorf("after a sync with secrets=%q: Appliance().Secrets = %q", mode, got)
			}
		}
		list, err := e.api.Appliances(context.Background())
		if err != nil || len(list) != 1 || list[0].Secrets != SecretsSoftware {
			t.Errorf("Appliances() = %+v, %v; want one with Secrets %q", list, err, SecretsSoftware)
		}
		// A mode the protocol does not know is refused and stores nothing.
		req := a.request("GET", proto.ChangesPath(a.id)+"?secrets=hsm", nil)
		if code, pe := e.serve(req, nil); code != 400 || pe.Code != proto.CodeBadRequest || !strings.Contains(pe.Message, "secrets") {
			t.Errorf("sync with secrets=hsm: %d %+v, want 400 bad_request naming secrets", code, pe)
		}
		if got := secrets(); got != proto.SecretsSoftware {
			t.Errorf("after a refused sync: Secrets = %q, want %q kept", got, proto.SecretsSoftware)
		}
	})
}

func TestClockWarning(t *testing.T) {
	tests := []struct {
		c    ClockReport
		want string
	}{
		{ClockReport{State: "SYNCED", Offset: time.Second, Bound: time.Second}, ""},
		{ClockReport{State: "HOLDOVER", Offset: -11 * time.Second, Bound: 500 * time.Millisecond}, ""},
		{ClockReport{State: "SYNCED", Offset: -11 * time.Second, Bound: time.Second}, "off by 12s"},
		{ClockReport{State: "HOLDOVER", Offset: 2 * time.Second, Bound: 14 * time.Second}, "off by 16s"},
		{ClockReport{State: "UNTRUSTED"}, "UNTRUSTED"},
	}
	for _, tt := range tests {
		got := ClockWarning(tt.c, 30*time.Second)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("ClockWarning(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

// TestLongPoll runs in a synctest bubble: a sync is held while nothing
// changes, answered at once when an offer for this appliance arrives, not
// woken by another appliance's changes, and answered empty after the wait.
func TestLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		a, b := e.newApp(), e.newApp()
		a.pair("A")
		b.pair("B")
		type result struct {
			c    proto.Changes
			at   time.Time
			code int
		}
		poll := func(app *tapp, after int64) chan result {
			ch := make(chan result, 1)
			go func() {
				c, code, _ := app.changes(proto.SyncQuery{After: after, Wait: proto.MaxWait})
				ch <- result{c, time.Now(), code}
			}()
			return ch
		}
		start := time.Now()
		got := poll(a, 0)
		time.Sleep(10 * time.Second)
		if err := e.api.SendOffer(ctx, b.id, "devB", "bob", "B", testKey(t), start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case r := <-got:
			t.Fatalf("sync answered by another appliance's offer: %+v", r)
		default:
		}
		if in, _ := e.api.Appliance(ctx, a.id); !in.Online {
			t.Error("appliance with a held sync is not Online")
		}
		time.Sleep(10 * time.Second)
		if err := e.api.SendOffer(ctx, a.id, "devA", "alice", "A", testKey(t), start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.code != 200 || len(r.c.Changes) != 1 || r.c.Changes[0].DeviceID != "devA" || r.at.Sub(start) != 20*time.Second {
			t.Fatalf("sync = %d %+v after %v, want the offer at 20s", r.code, r.c, r.at.Sub(start))
		}
		// Nothing new: held for the whole wait, then answered with the
		// open offer only.
		start = time.Now()
		r = <-poll(a, r.c.Rev)
		if d := r.at.Sub(start); d != proto.MaxWait || len(r.c.Changes) != 1 || r.c.Changes[0].DeviceID != "devA" {
			t.Fatalf("idle sync = %+v after %v, want the open offer after %v", r.c, d, proto.MaxWait)
		}
		synctest.Wait()
		if in, _ := e.api.Appliance(ctx, a.id); in.Online {
			t.Error("appliance without a held sync is Online")
		}
		// Unpair wakes a held sync.
		start = time.Now()
		got = poll(a, r.c.Rev)
		time.Sleep(time.Second)
		if err := e.api.Unpair(ctx, a.id); err != nil {
			t.Fatal(err)
		}
		r = <-got
		if n := len(r.c.Changes); n == 0 || r.c.Changes[n-1].Kind != proto.KindUnpair || r.at.Sub(start) != time.Second {
			t.Errorf("sync = %+v, want unpair at once", r.c)
		}
	})
}

// TestPairingStatusLongPoll: the status request of a waiting appliance is
// answered as soon as the admin pairs it.
func TestPairingStatusLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		a := e.newApp()
		p := a.requestCode()
		done := make(chan proto.Pairing, 1)
		go func() {
			var st proto.Pairing
			e.serve(a.request("GET", proto.PairingPath+"?wait=60", nil), &st)
			done <- st
		}()
		time.Sleep(5 * time.Second)
		start := time.Now()
		in, err := e.api.Pair(context.Background(), p.Code, "A")
		if err != nil {
			t.Fatal(err)
		}
		st := <-done
		if st.State != proto.PairingPaired || st.ApplianceID != in.ID || time.Since(start) != 0 {
			t.Errorf("status = %+v after %v, want paired at once", st, time.Since(start))
		}
	})
}

func TestChangesLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		e := newEnvWith(t, testkit.NewClock(t0), open(t))
		e.api.cfg.ChangesLimit = 2
		a := e.newApp()
		a.pair("A")
		for _, name := range []string{"a", "b", "c"} {
			e.api.SendOffer(context.Background(), a.id, "dev-"+name, "u", name, testKey(t), t0.Add(time.Hour))
		}
		c := a.mustChanges(0)
		if len(c.Changes) != 2 || !c.More {
			t.Fatalf("changes = %+v, want 2 and more", c)
		}
		c = a.mustChanges(c.Changes[1].Rev)
		// The two open offers come back, then the third, new one.
		if len(c.Changes) != 3 || c.More || c.Changes[2].DeviceID != "dev-c" {
			t.Errorf("next changes = %+v", c)
		}
	})
}

package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// kiosk is an appliance speaking to the core's appliance API with signed
// requests, as totpd does.
type kiosk struct {
	f       *fixture
	sign    ed25519.PrivateKey
	boxPub  *[32]byte
	boxPriv *[32]byte
	id      string
	rev     int64
}

func (f *fixture) kiosk() *kiosk {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	return &kiosk{f: f, sign: sign, boxPub: pub, boxPriv: priv}
}

func (k *kiosk) do(method, target string, in, out any) {
	k.f.t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	proto.Sign(r, body, k.sign, k.f.clock.Now())
	w := httptest.NewRecorder()
	k.f.core.Appliances().Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		k.f.t.Fatalf("%s %s = %d %s", method, target, w.Code, w.Body)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			k.f.t.Fatal(err)
		}
	}
}

// pair pairs the kiosk through the core under name.
func (k *kiosk) pair(name string) appliance.Info {
	k.f.t.Helper()
	var p proto.Pairing
	k.do("POST", proto.PairingPath, proto.PairingRequest{BoxKey: k.boxPub[:], Version: "1.2.3"}, &p)
	in, err := k.f.core.PairAppliance(context.Background(), Actor{Name: "root", Role: RoleAdmin}, p.Code, name)
	if err != nil {
		k.f.t.Fatal(err)
	}
	k.do("GET", proto.PairingPath, nil, &p)
	k.id = p.ApplianceID
	return in
}

func (k *kiosk) sync() []proto.Change {
	k.f.t.Helper()
	q := proto.SyncQuery{After: k.rev, Version: "1.2.3"}
	var c proto.Changes
	k.do("GET", proto.ChangesPath(k.id)+"?"+q.Encode().Encode(), nil, &c)
	k.rev = c.Rev
	return c.Changes
}

func (k *kiosk) ack(a proto.Ack) {
	k.do("POST", proto.AckPath(k.id), proto.AckRequest{Acks: []proto.Ack{a}}, nil)
}

// TestOfferLifecycle walks a registration through the state machine with
// a real appliance API: pending, offered (the appliance gets the sealed
// key with its button sequence), accepted on the appliance, then the
// code confirms it onto that appliance; a rejected offer may be sent
// again; an expired registration withdraws its offer.
func TestOfferLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	root := Actor{Name: "root", Role: RoleAdmin}
	lena := f.user("lena")
	kk := f.kiosk()
	app := kk.pair("Lobby kiosk 3")
	if found, err := f.core.FindAppliance(ctx, "lobby KIOSK 3"); err != nil || found.ID != app.ID {
		t.Fatalf("FindAppliance by name = %+v, %v", found, err)
	}
	_, err := f.core.FindAppliance(ctx, "Basement")
	failure(t, "an unknown appliance", err, 404, `no paired appliance with id or name "Basement"`)

	d, key := f.pending(lena, "Kiosk token")
	state := func(want RegState) *appliance.OfferStatus {
		t.Helper()
		got, o, err := f.core.RegistrationState(ctx, f.device(d.ID))
		if err != nil || got != want {
			t.Fatalf("registration state = %s, %v; want %s", got, err, want)
		}
		return o
	}
	state(RegPending)
	if err := f.core.SendOffer(ctx, root, lena, d, app); err != nil {
		t.Fatal(err)
	}
	o := state(RegOffered)
	cs := kk.sync()
	if len(cs) != 1 || cs[0].Kind != proto.KindOffer || cs[0].User != "lena" || cs[0].DeviceName != "Kiosk token" {
		t.Fatalf("changes = %+v, want the offer", cs)
	}
	got, seq, err := proto.OpenOffer(cs[0].Sealed, cs[0].DeviceID, kk.boxPub, kk.boxPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretBase32() != key.SecretBase32() || !slices.Equal(seq, o.Sequence) {
		t.Fatalf("the appliance opened another secret or sequence: %v, want %v", seq, o.Sequence)
	}
	kk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted})
	state(RegAccepted)
	if err := f.core.SendOffer(ctx, root, lena, d, app); err != nil {
		t.Errorf("sending again to the appliance that accepted: %v, want nothing changed", err)
	}
	d, err = f.core.ConfirmRegistration(ctx, Actor{Name: "lena"}, lena, d.ID, []string{enroll.Code(key, f.clock.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != store.KindAppliance {
		t.Errorf("confirmed as %s, want on the appliance", d.Kind)
	}
	if p := f.core.Placement(ctx, d); p.State != RegActive || p.Appliance != "Lobby kiosk 3" {
		t.Errorf("placement = %+v, want active on Lobby kiosk 3", p)
	}
	if cs := kk.sync(); len(cs) != 1 || cs[0].Kind != proto.KindActivate {
		t.Errorf("changes after confirm = %+v, want the activation", cs)
	}

	// Rejected, then sent again; expiry withdraws it.
	d2, _ := f.pending(lena, "Spare")
	if err := f.core.SendOffer(ctx, root, lena, d2, app); err != nil {
		t.Fatal(err)
	}
	cs = kk.sync()
	kk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultRejected})
	if st, _, _ := f.core.RegistrationState(ctx, d2); st != RegRejected {
		t.Fatalf("after reject: %s", st)
	}
	if err := f.core.SendOffer(ctx, root, lena, d2, app); err != nil {
		t.Fatalf("send after a reject: %v", err)
	}
	f.clock.Advance(11 * time.Minute)
	f.core.Sweep(ctx)
	if cs := kk.sync(); !slices.ContainsFunc(cs, func(c proto.Change) bool { return c.Kind == proto.KindExpire }) {
		t.Errorf("changes after the registration expired = %+v, want an expire", cs)
	}

	name, err := f.core.RenameAppliance(ctx, root, app, " Hall kiosk ")
	if err != nil || name != "Hall kiosk" {
		t.Fatalf("rename = %q, %v", name, err)
	}
	if err := f.core.UnpairAppliance(ctx, root, app); err != nil {
		t.Fatal(err)
	}
	acts := f.actions()
	for _, a := range []string{"appliance.pair", "offer.send", "device.register", "appliance.rename", "appliance.unpair"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %s", acts, a)
		}
	}
}

// TestOfferRefused: an offer is refused for an active device, and the
// pairing refuses a wrong code and a bad name.
func TestOfferRefused(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, d, _ := f.registered("max")
	app := f.kiosk().pair("Desk")
	failure(t, "offer of an active device", f.core.SendOffer(ctx, System, u, d, app), 409, "already registered")
	_, err := f.core.PairAppliance(ctx, System, "ABCD-EFGH", "Desk 2")
	if err == nil {
		t.Error("pairing with a code no appliance shows succeeded")
	}
	_, err = f.core.PairAppliance(ctx, System, "ABCD-EFGH", "a\u202eb")
	if err == nil {
		t.Error("pairing under a name with a bidi control succeeded")
	}
}

package server

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// placeOnAppliance registers an MFA device named name for user through the
// console and places it on a: sent, accepted on the appliance, confirmed
// with its code, activated. It returns the device's UID and its path.
func placeOnAppliance(t *testing.T, h *harness, b *browser, a *tappliance, user, name string) (uid, base string) {
	t.Helper()
	_, _, page := b.get("/users/" + user + "/mfa-devices/new")
	_, configure, page := b.post("/users/"+user+"/mfa-devices", url.Values{"name": {name}, "kind": {"appliance"}}, csrf(t, page))
	base = strings.TrimSuffix(configure, "/configure")
	b.post(base+"/send", url.Values{"appliance": {a.id}}, csrf(t, page))
	cs := a.sync(nil)
	if kinds(cs) != proto.KindOffer {
		t.Fatalf("changes = %s, want the offer of %q", kinds(cs), name)
	}
	k, _, err := proto.OpenOffer(cs[0].Sealed, cs[0].DeviceID, a.boxPub, a.boxPriv)
	if err != nil {
		t.Fatal(err)
	}
	a.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted})
	_, _, page = b.get(configure)
	status, path, _ := b.post(base+"/confirm", url.Values{"code1": {enroll.Code(k, h.clock.Now())}}, csrf(t, page))
	if status != 200 || path != "/users/"+user+"/mfa-devices" {
		t.Fatalf("confirm %q = %d at %s", name, status, path)
	}
	if cs = a.sync(nil); kinds(cs) != proto.KindActivate {
		t.Fatalf("changes after confirm = %s, want activate", kinds(cs))
	}
	a.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})
	return cs[0].DeviceID, base
}

// held reports uids as the accounts a holds from an earlier pairing and
// returns what the server adopted.
func (a *tappliance) held(uids ...string) []string {
	a.h.t.Helper()
	body, _ := json.Marshal(proto.HeldRequest{DeviceIDs: uids})
	var resp proto.HeldResponse
	if code, b := a.do("POST", proto.HeldPath(a.id), body, &resp); code != 200 {
		a.h.t.Fatalf("held %v = %d %s", uids, code, b)
	}
	return resp.Adopted
}

// TestPairAgainReadoptsPlacedAccounts: the server forgot an appliance
// (Forget, or an unpair it never saw through) that keeps the accounts the
// server placed; paired again, it reports them. Those whose MFA device is
// still active come back as placed on it: its page lists them, the
// device's offer state names it, and deleting the device removes the
// account through the sync. A device deleted meanwhile, one never known,
// and one held by another appliance are not adopted (the appliance wipes
// them). Reporting again changes nothing; each re-adoption is audited.
func TestPairAgainReadoptsPlacedAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})

		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Front desk")
		kiosk.sync(nil)
		kept, keptBase := placeOnAppliance(t, h, b, kiosk, "lena", "Kiosk token")
		gone, goneBase := placeOnAppliance(t, h, b, kiosk, "lena", "Old token")

		// The server forgets the kiosk; meanwhile "Old token" is deleted.
		ctx := context.Background()
		if err := h.srv.Appliances().Forget(ctx, kiosk.id); err != nil {
			t.Fatal(err)
		}
		h.mustCall(204, "DELETE", "/api/v1/users/lena/mfa-devices/"+goneBase[strings.LastIndex(goneBase, "/")+1:], nil)
		if st, err := h.srv.Appliances().OfferState(ctx, kept); err == nil && st.ApplianceName != "" {
			t.Fatalf("after Forget the device is still placed on %q", st.ApplianceName)
		}

		// The same appliance is paired again and reports what it holds.
		old := kiosk.id
		kiosk.rev = 0
		pairThroughConsole(t, b, kiosk, "Front desk again")
		if kiosk.id == old {
			t.Fatalf("pairing again kept the old id %s", old)
		}
		if got := kiosk.held(kept, gone, "never-placed"); !slices.Equal(got, []string{kept}) {
			t.Fatalf("adopted = %v, want only the active device [%s]", got, kept)
		}

		// The console shows the device on the appliance again.
		st, err := h.srv.Appliances().OfferState(ctx, kept)
		if err != nil || st.ApplianceID != kiosk.id || st.ApplianceName != "Front desk again" || st.State != proto.StateAccepted {
			t.Fatalf("offer state after re-adoption = %+v, %v; want accepted on %q", st, err, "Front desk again")
		}
		_, _, page := b.get("/appliances/" + kiosk.id)
		if !strings.Contains(page, "Kiosk token") || strings.Contains(page, "This server placed no account on this appliance.") || strings.Contains(page, "Old token") {
			t.Fatalf("appliance page does not list the re-adopted account as placed by the server:\n%s", page)
		}
		if got := auditActions(t, h.st); !strings.Contains(got, "device.adopt") || !strings.Contains(got, "appliance.reconcile") {
			t.Errorf("audit log %q lacks the re-adoption", got)
		}

		// Reporting again is harmless: adopted, no new change.
		if got := kiosk.held(kept); !slices.Equal(got, []string{kept}) {
			t.Fatalf("adopted when reported again = %v, want [%s]", got, kept)
		}
		kiosk.sync(nil)
		if cs := kiosk.sync(nil); len(cs) != 0 {
			t.Fatalf("changes after reporting again = %s, want none", kinds(cs))
		}

		// Another appliance claiming the device gets nothing.
		other := h.newAppliance()
		pairThroughConsole(t, b, other, "Back office")
		if got := other.held(kept); len(got) != 0 {
			t.Fatalf("another appliance adopted %v, held by the kiosk", got)
		}

		// Deleting the device removes it from the kiosk.
		h.mustCall(204, "DELETE", "/api/v1/users/lena/mfa-devices/"+keptBase[strings.LastIndex(keptBase, "/")+1:], nil)
		if cs := kiosk.sync(nil); kinds(cs) != proto.KindDelete || cs[0].DeviceID != kept {
			t.Fatalf("changes after deleting the re-adopted device = %+v, want its delete", cs)
		}

		// Bad reports are refused with a reason.
		body, _ := json.Marshal(proto.HeldRequest{DeviceIDs: []string{""}})
		if code, msg := kiosk.do("POST", proto.HeldPath(kiosk.id), body, nil); code != 400 || !strings.Contains(msg, "device id must be") {
			t.Errorf("empty device id = %d %s, want 400", code, msg)
		}
		if code, _ := other.do("POST", proto.HeldPath(kiosk.id), []byte(`{"device_ids":[]}`), nil); code != 403 {
			t.Errorf("reporting for another appliance = %d, want 403", code)
		}
	})
}

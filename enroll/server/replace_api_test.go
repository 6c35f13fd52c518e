package server

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestAPIReplaceAppliance replaces an appliance holding three accounts by
// a paired spare through the admin API: bad requests get one line naming
// what was wrong; the spare gets each active account once, sealed to its
// key, with the codes the server accepts; BACK declines and the same
// request resumes; repeated acks move nothing twice; the last account
// unpairs the old appliance, which is told to wipe and is gone once it
// acknowledges. Offers on the old appliance are listed as not moved.
func TestAPIReplaceAppliance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		for _, u := range []string{"ana", "ben"} {
			h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": u})
		}
		old, spare, desk := h.newAppliance(), h.newAppliance(), h.newAppliance()
		pairThroughConsole(t, b, old, "Lobby")
		pairThroughConsole(t, b, spare, "Spare")
		pairThroughConsole(t, b, desk, "Desk")
		old.sync(nil)
		spare.sync(nil)
		users := map[string]string{}
		for _, p := range []struct{ user, name string }{{"ana", "Token 1"}, {"ana", "Token 2"}, {"ben", "Token 3"}} {
			uid, _ := placeOnAppliance(t, h, b, old, p.user, p.name)
			users[uid] = p.user
		}
		// An offer still open on the old appliance does not move.
		_, _, page := b.get("/users/ben/mfa-devices/new")
		_, configure, page := b.post("/users/ben/mfa-devices", url.Values{"name": {"Waiting"}, "kind": {"appliance"}}, csrf(t, page))
		b.post(strings.TrimSuffix(configure, "/configure")+"/send", url.Values{"appliance": {old.id}}, csrf(t, page))

		bad := []struct {
			name, path string
			body       any
			status     int
			want       string
		}{
			{"unknown appliance", "/api/v1/appliances/Nowhere/replace", map[string]any{"with": "Spare"}, 404, `no paired appliance with id or name "Nowhere"`},
			{"no spare", "/api/v1/appliances/Lobby/replace", map[string]any{}, 400, `missing field "with"`},
			{"spare not paired", "/api/v1/appliances/Lobby/replace", map[string]any{"with": "Attic"}, 404, `the spare "Attic" is not a paired appliance`},
			{"same appliance", "/api/v1/appliances/Lobby/replace", map[string]any{"with": old.id}, 400, "an appliance cannot replace itself"},
			{"unknown field", "/api/v1/appliances/Lobby/replace", map[string]any{"wiht": "Spare"}, 400, `unknown field "wiht"`},
			{"nothing to move", "/api/v1/appliances/Desk/replace", map[string]any{"with": "Spare"}, 409, `"Desk" holds no active account to move`},
		}
		for _, tc := range bad {
			status, e := h.call("POST", tc.path, tc.body)
			msg, _ := e["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("%s: replace = %d %v, want %d with one line saying %q", tc.name, status, e, tc.status, tc.want)
			}
		}

		rep := h.mustCall(200, "POST", "/api/v1/appliances/Lobby/replace", map[string]any{"with": "spare"})
		if rep["state"] != "waiting" || rep["total"] != 3.0 || rep["moved"] != 0.0 || rep["spare"].(map[string]any)["name"] != "Spare" {
			t.Fatalf("replace = %v, want waiting, 3 to move to Spare", rep)
		}
		if nm := rep["not_moved"].([]any); len(nm) != 1 || !strings.Contains(nm[0].(string), "offer: ben — Waiting") {
			t.Errorf("not moved = %v, want the open offer", nm)
		}
		// The same request again changes nothing.
		if again := h.mustCall(200, "POST", "/api/v1/appliances/Lobby/replace", map[string]any{"with": "Spare"}); again["id"] != rep["id"] {
			t.Errorf("replace again = %v, want the same replacement %v", again["id"], rep["id"])
		}
		if status, e := h.call("POST", "/api/v1/appliances/Desk/replace", map[string]any{"with": "Spare"}); status != 409 || !strings.Contains(e["error"].(string), "already part of another replacement") {
			t.Errorf("replace Desk by a spare already replacing = %d %v, want 409", status, e)
		}

		takeovers := func() []proto.Change {
			t.Helper()
			cs := spare.sync(nil)
			if kinds(cs) != "takeover,takeover,takeover" {
				t.Fatalf("spare's changes = %s, want three takeovers", kinds(cs))
			}
			for _, c := range cs {
				if c.Batch != rep["id"] || c.From != "Lobby" || c.Count != 3 || users[c.DeviceID] == "" {
					t.Fatalf("takeover = %+v, want batch %v from Lobby of 3", c, rep["id"])
				}
			}
			return cs
		}
		cs := takeovers()
		// BACK on the spare declines the batch.
		spare.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultRejected}, proto.Ack{Rev: cs[1].Rev, Result: proto.ResultRejected},
			proto.Ack{Rev: cs[2].Rev, Result: proto.ResultRejected})
		list := h.mustCall(200, "GET", "/api/v1/appliances/Spare/replacements", nil)["replacements"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["state"] != "declined" {
			t.Fatalf("replacements after BACK = %v, want one declined", list)
		}
		if r := h.mustCall(200, "POST", "/api/v1/appliances/Lobby/replace", map[string]any{"with": "Spare"}); r["state"] != "waiting" {
			t.Fatalf("resume = %v, want waiting", r)
		}
		cs = takeovers()
		h.clock.Advance(30e9) // past the step of the last confirmation
		for _, c := range cs {
			k, err := proto.OpenTakeover(c.Sealed, c.DeviceID, spare.boxPub, spare.boxPriv)
			if err != nil {
				t.Fatal(err)
			}
			if status, reason := h.verify(users[c.DeviceID], enroll.Code(k, h.clock.Now())); status != 200 {
				t.Errorf("code of the account taken over for %s = %d %s, want accepted", users[c.DeviceID], status, reason)
			}
			h.clock.Advance(30e9)
		}
		// Two accounts stored; the acks come twice (a lost answer).
		for range 2 {
			spare.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted}, proto.Ack{Rev: cs[1].Rev, Result: proto.ResultAccepted})
		}
		r := h.mustCall(200, "GET", "/api/v1/appliances/Lobby/replacements", nil)["replacements"].([]any)[0].(map[string]any)
		if r["moved"] != 2.0 || r["state"] != "waiting" {
			t.Fatalf("after two acks: %v, want 2 moved, waiting", r)
		}
		if got := kinds(old.sync(nil)); got != "offer,delete,delete" {
			t.Errorf("old appliance's changes after two moves = %s, want the open offer, delete,delete", got)
		}
		spare.ack(proto.Ack{Rev: cs[2].Rev, Result: proto.ResultAccepted})
		r = h.mustCall(200, "GET", "/api/v1/appliances/Spare/replacements", nil)["replacements"].([]any)[0].(map[string]any)
		if r["moved"] != 3.0 || r["state"] != "done" {
			t.Fatalf("after the last ack: %v, want 3 moved, done", r)
		}
		if m := h.mustCall(200, "GET", "/api/v1/appliances/Lobby", nil); m["unpairing"] != true {
			t.Errorf("old appliance after the replacement = %v, want unpairing", m)
		}
		ctx := context.Background()
		on, err := h.srv.Appliances().DevicesOn(ctx, spare.id)
		if err != nil || len(on) != 3 {
			t.Errorf("devices on the spare = %d, %v; want 3", len(on), err)
		}
		for uid := range users {
			if st, err := h.srv.Appliances().OfferState(ctx, uid); err != nil || st.ApplianceName != "Spare" {
				t.Errorf("holder of %s = %+v, %v; want Spare", uid, st, err)
			}
		}
		// The old appliance syncs again: it is told to wipe, and once it
		// acknowledges, it is gone.
		wipe := old.sync(nil)
		if kinds(wipe) != "delete,"+proto.KindWipe {
			t.Fatalf("old appliance's changes = %s, want delete,wipe", kinds(wipe))
		}
		old.ack(proto.Ack{Rev: wipe[0].Rev, Result: proto.ResultApplied}, proto.Ack{Rev: wipe[1].Rev, Result: proto.ResultApplied})
		if status, _ := h.call("GET", "/api/v1/appliances/Lobby", nil); status != 404 {
			t.Errorf("old appliance after its wipe = %d, want 404", status)
		}
		audit := auditActions(t, h.st)
		for _, want := range []string{"appliance.replace.start", "appliance.replace.decline", "device.move", "appliance.replace "} {
			if !strings.Contains(audit+" ", want) {
				t.Errorf("audit %q lacks %s", audit, want)
			}
		}
		if n := strings.Count(audit, "device.move"); n != 3 {
			t.Errorf("audit has %d device.move, want 3 (one per account)", n)
		}
	})
}

// TestConsoleReplaceAppliance: the appliance's page offers "Replace
// with…", which lists the paired spares; choosing none says so under the
// field; choosing one shows the replacement's progress on the page, and
// a declined one can be resumed from there.
func TestConsoleReplaceAppliance(t *testing.T) {
	h := newHarness(t, storetest.OpenSQLite(t), nil)
	h.admin()
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "ana"})
	old, spare := h.newAppliance(), h.newAppliance()
	pairThroughConsole(t, b, old, "Lobby")
	pairThroughConsole(t, b, spare, "Spare")
	old.sync(nil)
	spare.sync(nil)
	placeOnAppliance(t, h, b, old, "ana", "Token 1")

	_, _, page := b.get("/appliances/" + old.id)
	if !strings.Contains(page, `href="/appliances/`+old.id+`/replace">Replace with…</a>`) {
		t.Fatalf("appliance page lacks Replace with…:\n%s", page)
	}
	_, _, page = b.get("/appliances/" + old.id + "/replace")
	if !strings.Contains(page, `<option value="`+spare.id+`">Spare (`) || strings.Contains(page, `<option value="`+old.id+`"`) {
		t.Fatalf("replace page does not list only the spare:\n%s", page)
	}
	status, _, errPage := b.post("/appliances/"+old.id+"/replace", url.Values{"with": {""}}, csrf(t, page))
	if status != 400 || !strings.Contains(errPage, "Choose the spare that replaces") {
		t.Fatalf("replace with no spare = %d:\n%s", status, errPage)
	}
	status, path, page := b.post("/appliances/"+old.id+"/replace", url.Values{"with": {spare.id}}, csrf(t, page))
	if status != 200 || path != "/appliances/"+old.id || !strings.Contains(page, "Waiting for OK on the spare") || !strings.Contains(page, "0 of 1 account moved") {
		t.Fatalf("after replace: %d at %s:\n%s", status, path, page)
	}
	if strings.Contains(page, "Replace with…") {
		t.Errorf("page still offers Replace with… while a replacement is open")
	}
	cs := spare.sync(nil)
	spare.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultRejected})
	_, _, page = b.get("/appliances/" + spare.id)
	if !strings.Contains(page, "Declined on the spare (BACK)") || !strings.Contains(page, ">Resume</button>") {
		t.Fatalf("spare's page after BACK lacks the declined replacement and Resume:\n%s", page)
	}
	status, _, page = b.post("/appliances/"+old.id+"/replace", url.Values{"with": {spare.id}}, csrf(t, page))
	if status != 200 || !strings.Contains(page, "Waiting for OK on the spare") {
		t.Fatalf("resume: %d:\n%s", status, page)
	}
}

// TestReplaceFinishesWithoutADeletedDevice: an MFA device deleted while
// its account waits to move is no longer waited for; once the spare has
// the others the replacement is done and the old appliance unpaired.
func TestReplaceFinishesWithoutADeletedDevice(t *testing.T) {
	h := newHarness(t, storetest.OpenSQLite(t), nil)
	h.admin()
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "ana"})
	old, spare := h.newAppliance(), h.newAppliance()
	pairThroughConsole(t, b, old, "Lobby")
	pairThroughConsole(t, b, spare, "Spare")
	old.sync(nil)
	spare.sync(nil)
	placeOnAppliance(t, h, b, old, "ana", "Token 1")
	goneUID, gone := placeOnAppliance(t, h, b, old, "ana", "Token 2")
	h.mustCall(200, "POST", "/api/v1/appliances/Lobby/replace", map[string]any{"with": "Spare"})
	cs := spare.sync(nil)
	if kinds(cs) != "takeover,takeover" {
		t.Fatalf("spare's changes = %s, want two takeovers", kinds(cs))
	}
	h.mustCall(204, "DELETE", "/api/v1/users/ana/mfa-devices/"+gone[strings.LastIndex(gone, "/")+1:], nil)
	for _, c := range cs {
		if c.DeviceID != goneUID {
			spare.ack(proto.Ack{Rev: c.Rev, Result: proto.ResultAccepted})
		}
	}
	r := h.mustCall(200, "GET", "/api/v1/appliances/Spare/replacements", nil)["replacements"].([]any)[0].(map[string]any)
	if r["state"] != "done" || r["total"] != 1.0 || r["moved"] != 1.0 {
		t.Fatalf("replacement after the delete and one move = %v, want done, 1 of 1", r)
	}
	if m := h.mustCall(200, "GET", "/api/v1/appliances/Lobby", nil); m["unpairing"] != true {
		t.Errorf("old appliance = %v, want unpairing", m)
	}
}

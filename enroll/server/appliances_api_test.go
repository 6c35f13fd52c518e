package server

import (
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestAPIAppliances enrols, lists, renames and unpairs appliances through
// the admin API, as a script enrolling a fleet does.
func TestAPIAppliances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		if l := h.mustCall(200, "GET", "/api/v1/appliances", nil); len(l["appliances"].([]any)) != 0 {
			t.Fatalf("appliances before any pairing = %v", l)
		}
		if status, _ := h.callRaw("GET", "/api/v1/appliances", nil, ""); status != 401 {
			t.Fatalf("list without a token = %d, want 401", status)
		}
		if status, _ := h.callRaw("POST", "/api/v1/appliances", map[string]any{"code": "x", "name": "y"}, "wrong"); status != 401 {
			t.Fatalf("pair with a wrong token = %d, want 401", status)
		}

		kiosk := h.newAppliance()
		code := kiosk.pairingCode()
		bad := []struct {
			name string
			body any
			want string
		}{
			{"no code", map[string]any{"name": "Lobby kiosk 3"}, `missing field "code"`},
			{"wrong code", map[string]any{"code": "ZZZZ-ZZZZ", "name": "Lobby kiosk 3"}, "no appliance is waiting with this pairing code"},
			{"no name", map[string]any{"code": code, "name": " "}, "type a name for the appliance"},
			{"control character", map[string]any{"code": code, "name": "a\x07b"}, "control character"},
			{"unknown field", map[string]any{"code": code, "name": "x", "nmae": "y"}, `unknown field "nmae"`},
			{"code as a number", `{"code": 12345678, "name": "x"}`, `field "code" must be a string`},
		}
		for _, tc := range bad {
			status, e := h.call("POST", "/api/v1/appliances", tc.body)
			if status != 400 || !strings.Contains(e["error"].(string), tc.want) {
				t.Errorf("%s: pair = %d %v, want 400 with %q", tc.name, status, e, tc.want)
			}
		}
		if l := h.mustCall(200, "GET", "/api/v1/appliances", nil); len(l["appliances"].([]any)) != 0 {
			t.Fatalf("failed pairings left %v", l)
		}

		// The code as typed from the screen: lower case, with a dash.
		typed := strings.ToLower(code[:4] + "-" + code[4:])
		status, raw := h.callRaw("POST", "/api/v1/appliances", map[string]any{"code": typed, "name": " Lobby kiosk 3 "}, h.token)
		if status != 201 {
			t.Fatalf("pair = %d %s", status, raw)
		}
		m := h.mustCall(200, "GET", "/api/v1/appliances/Lobby%20kiosk%203", nil)
		id, _ := m["id"].(string)
		if id == "" || m["name"] != "Lobby kiosk 3" || m["version"] != "1.2.3" || m["unpairing"] != false {
			t.Fatalf("paired appliance = %v", m)
		}
		kiosk.learnID()
		if kiosk.id != id {
			t.Fatalf("appliance learnt id %q, API says %q", kiosk.id, id)
		}
		if status, e := h.call("POST", "/api/v1/appliances", map[string]any{"code": code, "name": "Again"}); status != 400 {
			t.Fatalf("pair with a used code = %d %v, want 400", status, e)
		}
		other := h.newAppliance()
		if status, e := h.call("POST", "/api/v1/appliances", map[string]any{"code": other.pairingCode(), "name": "LOBBY KIOSK 3"}); status != 409 || !strings.Contains(e["error"].(string), "another appliance has this name") {
			t.Fatalf("pair with a taken name = %d %v, want 409", status, e)
		}
		h.mustCall(201, "POST", "/api/v1/appliances", map[string]any{"code": other.pairingCode(), "name": "Desk"})

		h.clock.Advance(time.Second)
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-20 * time.Millisecond), Bound: 5 * time.Millisecond, State: "SYNCED"})
		l := h.mustCall(200, "GET", "/api/v1/appliances", nil)["appliances"].([]any)
		if len(l) != 2 || l[0].(map[string]any)["name"] != "Desk" || l[1].(map[string]any)["name"] != "Lobby kiosk 3" {
			t.Fatalf("list = %v, want Desk and Lobby kiosk 3 by name", l)
		}
		if c, _ := l[1].(map[string]any)["clock"].(map[string]any); c == nil || c["state"] != "SYNCED" || l[1].(map[string]any)["accounts"] != 2.0 {
			t.Fatalf("listed kiosk = %v, want its clock report and 2 accounts", l[1])
		}

		// Rename, by id or by name.
		if status, e := h.call("PATCH", "/api/v1/appliances/"+id, map[string]any{"name": "desk"}); status != 409 {
			t.Fatalf("rename to a taken name = %d %v, want 409", status, e)
		}
		if status, e := h.call("PATCH", "/api/v1/appliances/"+id, map[string]any{"name": ""}); status != 400 {
			t.Fatalf("rename to nothing = %d %v, want 400", status, e)
		}
		if status, e := h.call("PATCH", "/api/v1/appliances/Nowhere", map[string]any{"name": "x"}); status != 404 || !strings.Contains(e["error"].(string), `"Nowhere"`) {
			t.Fatalf("rename a missing appliance = %d %v, want 404", status, e)
		}
		if m := h.mustCall(200, "PATCH", "/api/v1/appliances/lobby%20KIOSK%203", map[string]any{"name": "Lobby kiosk 4"}); m["name"] != "Lobby kiosk 4" || m["id"] != id {
			t.Fatalf("rename = %v", m)
		}
		h.mustCall(200, "PATCH", "/api/v1/appliances/"+id, map[string]any{"name": "Lobby kiosk 4"})

		// Unpair: the appliance hears it at its next sync, then is gone.
		if m := h.mustCall(200, "DELETE", "/api/v1/appliances/"+id, nil); m["unpairing"] != true {
			t.Fatalf("unpair = %v, want unpairing", m)
		}
		h.mustCall(200, "DELETE", "/api/v1/appliances/"+id, nil)
		if cs := kiosk.sync(nil); kinds(cs) != proto.KindUnpair {
			t.Fatalf("changes after unpair = %s, want unpair", kinds(cs))
		}
		if status, e := h.call("DELETE", "/api/v1/appliances/Nowhere", nil); status != 404 {
			t.Fatalf("unpair a missing appliance = %d %v, want 404", status, e)
		}

		want := "appliance.unpair appliance.rename appliance.pair appliance.pair" // newest first
		if got := auditActions(t, h.st); !strings.Contains(got, want) {
			t.Fatalf("audit = %q, want %q", got, want)
		}
		evs, err := h.st.AuditEvents(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if strings.HasPrefix(e.Action, "appliance.") && e.Actor != "token:test" {
				t.Errorf("audit %s by %q, want token:test", e.Action, e.Actor)
			}
		}
	})
}

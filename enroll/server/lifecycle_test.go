package server

import (
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestConsoleSaysWhereEachDeviceIs: the device table names the appliance
// holding each device and the kind follows what happened; an appliance's
// page lists the accounts the server placed on it and says it cannot see
// local ones. A device registered by code while offered is withdrawn from
// the appliance, and the console says it is on no appliance; a late OK
// from the appliance is answered "cancelled".
func TestConsoleSaysWhereEachDeviceIs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})
		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby kiosk 3")
		kiosk.sync(nil)

		start := func(name string) (base string) {
			_, _, page := b.get("/users/lena/mfa-devices/new")
			if strings.Contains(page, `name="kind"`) {
				t.Fatalf("the Device name page still asks for a kind:\n%s", page)
			}
			_, configure, page := b.post("/users/lena/mfa-devices", url.Values{"name": {name}}, csrf(t, page))
			base = strings.TrimSuffix(configure, "/configure")
			b.post(base+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page))
			return base
		}

		// Kiosk token: OK on the appliance, then its code.
		base := start("Kiosk token")
		cs := kiosk.sync(nil)
		k, _, err := proto.OpenOffer(cs[0].Sealed, cs[0].DeviceID, kiosk.boxPub, kiosk.boxPriv)
		if err != nil {
			t.Fatal(err)
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted})
		_, _, page := b.get(base + "/configure")
		b.post(base+"/confirm", url.Values{"code1": {enroll.Code(k, h.clock.Now())}}, csrf(t, page))
		kiosk.ack(proto.Ack{Rev: kiosk.sync(nil)[0].Rev, Result: proto.ResultApplied})

		// Phone: offered, then a phone scans the QR code and its code is
		// typed before anyone presses OK.
		base = start("Phone")
		cs = kiosk.sync(nil)
		if kinds(cs) != proto.KindOffer {
			t.Fatalf("changes = %s, want the offer", kinds(cs))
		}
		offerRev := cs[0].Rev
		_, _, page = b.get(base + "/configure")
		secret := page[strings.Index(page, `data-secret="`)+len(`data-secret="`):]
		sk, err := enroll.ParseSecret(secret[:strings.Index(secret, `"`)])
		if err != nil {
			t.Fatal(err)
		}
		phone := enroll.Key{Secret: sk, Algorithm: enroll.SHA1, Digits: 6, Period: k.Period}
		status, _, page := b.post(base+"/confirm", url.Values{"code1": {enroll.Code(phone, h.clock.Now())}}, csrf(t, page))
		if want := "Its offer to appliance &#34;Lobby kiosk 3&#34; was withdrawn: this MFA device is on no appliance."; status != 200 || !strings.Contains(page, want) {
			t.Fatalf("confirm by code while offered = %d, want %q:\n%s", status, want, page)
		}
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindCancel {
			t.Fatalf("changes after the confirm = %s, want cancel (the offer withdrawn), not activate", kinds(cs))
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})
		// An OK that was already on its way is answered "cancelled".
		var ackResp proto.AckResponse
		body := []byte(`{"acks":[{"rev":` + itoa(offerRev) + `,"result":"accepted"}]}`)
		if code, msg := kiosk.do("POST", proto.PathPrefix+kiosk.id+"/ack", body, &ackResp); code != 200 || len(ackResp.Results) != 1 || ackResp.Results[0].State != proto.StateCancelled {
			t.Fatalf("late OK = %d %s %+v, want the offer cancelled", code, msg, ackResp)
		}

		_, _, table := b.get("/users/lena/mfa-devices")
		rows := strings.Split(table[strings.Index(table, "<tbody>"):], "<tr>")
		if len(rows) != 3 {
			t.Fatalf("device table has %d rows, want 2:\n%s", len(rows)-1, table)
		}
		if r := rows[1]; !strings.Contains(r, "Kiosk token") || !strings.Contains(r, `<td data-label="Kind">Appliance</td>`) || !strings.Contains(r, `<a href="/appliances/`+kiosk.id+`">Lobby kiosk 3</a>`) {
			t.Errorf("Kiosk token row does not name its appliance:\n%s", r)
		}
		if r := rows[2]; !strings.Contains(r, "Phone") || !strings.Contains(r, `<td data-label="Kind">Authenticator app</td>`) || !strings.Contains(r, "None: registered by code while offered to “Lobby kiosk 3”; that offer was withdrawn") {
			t.Errorf("Phone row does not say it is on no appliance:\n%s", r)
		}

		_, _, page = b.get("/appliances/" + kiosk.id)
		placed := page[strings.Index(page, "<h2>Accounts placed by this server</h2>"):]
		if !strings.Contains(placed, "Kiosk token") || strings.Contains(placed, "Phone") || !strings.Contains(placed, "the server cannot see them") {
			t.Errorf("appliance page lists the wrong accounts:\n%s", placed)
		}
	})
}

// TestOneLabelPerDevice: two MFA devices of one user get otpauth labels
// that tell them apart, from the configured template; a bad template is
// refused with a message naming the problem.
func TestOneLabelPerDevice(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice"})
	labels := map[string]bool{}
	for _, name := range []string{"Alice phone", "Alice tablet"} {
		m := h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": name})
		k, err := enroll.ParseURI(m["otpauth_uri"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if want := "alice (" + name + ")"; k.Account != want {
			t.Errorf("otpauth label of %q = %q, want %q", name, k.Account, want)
		}
		labels[k.Issuer+":"+k.Account] = true
	}
	if len(labels) != 2 {
		t.Errorf("labels = %v, want two different ones", labels)
	}

	h2 := newHarness(t, storeSQLite(t), func(c *Config) { c.LabelTemplate = "{device}" })
	h2.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "bob"})
	m := h2.mustCall(201, "POST", "/api/v1/users/bob/mfa-devices", map[string]any{"name": "Desk token"})
	if k, _ := enroll.ParseURI(m["otpauth_uri"].(string)); k.Account != "Desk token" {
		t.Errorf("label with template {device} = %q, want Desk token", k.Account)
	}
	if _, err := New(Config{Store: storeSQLite(t), Sealer: testSealer(t), LabelTemplate: "{user}"}); err == nil || !strings.Contains(err.Error(), "lacks {device}") {
		t.Errorf("New with label template {user} = %v, want refused for lacking {device}", err)
	}
}

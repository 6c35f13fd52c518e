package server

import (
	"github.com/totpbox/totpbox/enroll/store/storetest"

	"github.com/totpbox/totpbox/enroll/server/core"

	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// tappliance acts as an appliance against the harness's server: it signs
// its requests with its own key, as totpd does.
type tappliance struct {
	h       *harness
	sign    ed25519.PrivateKey
	boxPub  *[32]byte
	boxPriv *[32]byte
	id      string
	rev     int64
	// secrets is the secrets mode its syncs report; empty: none.
	secrets string
}

func (h *harness) newAppliance() *tappliance {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	return &tappliance{h: h, sign: sign, boxPub: pub, boxPriv: priv}
}

// do sends a signed request through the server's handler and decodes a
// 200 answer into out.
func (a *tappliance) do(method, target string, body []byte, out any) (int, string) {
	a.h.t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	proto.Sign(r, body, a.sign, a.h.clock.Now())
	w := httptest.NewRecorder()
	a.h.srv.Handler().ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Body)
	if w.Code == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.h.t.Fatalf("%s %s: answer %q: %v", method, target, b, err)
		}
	}
	return w.Code, string(b)
}

// pairingCode asks for a pairing code, as an unpaired appliance does.
func (a *tappliance) pairingCode() string {
	a.h.t.Helper()
	body, _ := json.Marshal(proto.PairingRequest{BoxKey: a.boxPub[:], Version: "1.2.3"})
	var p proto.Pairing
	if code, b := a.do("POST", proto.PairingPath, body, &p); code != 200 || p.State != proto.PairingWaiting {
		a.h.t.Fatalf("pairing code request = %d %s", code, b)
	}
	return p.Code
}

// learnID asks the server whether the appliance is paired, and keeps its
// id.
func (a *tappliance) learnID() {
	a.h.t.Helper()
	var p proto.Pairing
	if code, b := a.do("GET", proto.PairingPath, nil, &p); code != 200 || p.State != proto.PairingPaired {
		a.h.t.Fatalf("pairing state = %d %s, want paired", code, b)
	}
	a.id = p.ApplianceID
}

// sync asks for the changes after the last one seen, with a clock report,
// without waiting.
func (a *tappliance) sync(clock *proto.ClockReport) []proto.Change {
	a.h.t.Helper()
	q := proto.SyncQuery{After: a.rev, Version: "1.2.3", Accounts: 2, Clock: clock, Secrets: a.secrets}
	var c proto.Changes
	if code, b := a.do("GET", proto.ChangesPath(a.id)+"?"+q.Encode().Encode(), nil, &c); code != 200 {
		a.h.t.Fatalf("sync = %d %s", code, b)
	}
	a.rev = c.Rev
	return c.Changes
}

func (a *tappliance) ack(acks ...proto.Ack) {
	a.h.t.Helper()
	body, _ := json.Marshal(proto.AckRequest{Acks: acks})
	if code, b := a.do("POST", proto.AckPath(a.id), body, nil); code != 200 {
		a.h.t.Fatalf("ack %v = %d %s", acks, code, b)
	}
}

// kinds lists the kinds of changes, for messages and comparisons.
func kinds(cs []proto.Change) string {
	var k []string
	for _, c := range cs {
		k = append(k, c.Kind)
	}
	return strings.Join(k, ",")
}

// pairThroughConsole pairs a under name with the code it obtained, as an
// admin does on the Appliances page.
func pairThroughConsole(t *testing.T, b *browser, a *tappliance, name string) {
	t.Helper()
	_, _, page := b.get("/appliances")
	status, path, page := b.post("/appliances", url.Values{"code": {a.pairingCode()}, "name": {name}}, csrf(t, page))
	if status != 200 || path != "/appliances" || !strings.Contains(page, "Appliance &#34;"+name+"&#34; paired.") {
		t.Fatalf("pair %q: %d at %s:\n%s", name, status, path, page)
	}
	a.learnID()
}

func auditActions(t *testing.T, st store.Store) string {
	t.Helper()
	evs, err := st.AuditEvents(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return strings.Join(out, " ")
}

// TestAppliancesPageSecrets checks that the Appliances page says how each
// appliance keeps its secrets, as its last sync reported.
func TestAppliancesPageSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		const (
			tpm      = "Secrets: TPM"
			software = "Secrets: software key file — a copy of the SD card copies every account"
			unknown  = "Secrets: unknown (not reported)"
		)
		sealed, card, silent := h.newAppliance(), h.newAppliance(), h.newAppliance()
		pairThroughConsole(t, b, sealed, "A sealed")
		pairThroughConsole(t, b, card, "B card")
		pairThroughConsole(t, b, silent, "C silent")
		sealed.secrets, card.secrets = proto.SecretsTPM, proto.SecretsSoftware
		sealed.sync(nil)
		card.sync(nil)
		silent.sync(nil)

		// Each row, in name order, says its own mode.
		_, _, page := b.get("/appliances")
		rows := regexp.MustCompile(`(?s)<tr>.*?</tr>`).FindAllString(html.UnescapeString(page), -1)
		want := []struct{ name, says string }{{"A sealed", tpm}, {"B card", software}, {"C silent", unknown}}
		if len(rows) != 1+len(want) {
			t.Fatalf("Appliances page has %d rows, want a header and %d:\n%s", len(rows), len(want), page)
		}
		for i, w := range want {
			row := rows[i+1]
			if !strings.Contains(row, w.name) || !strings.Contains(row, w.says) {
				t.Errorf("row of %q lacks %q:\n%s", w.name, w.says, row)
			}
			for _, other := range []string{tpm, software, unknown} {
				if other != w.says && strings.Contains(row, other) {
					t.Errorf("row of %q also says %q:\n%s", w.name, other, row)
				}
			}
		}

		// Moved to TPM mode: the next sync says so, and the warning goes.
		card.secrets = proto.SecretsTPM
		card.sync(nil)
		if _, _, page = b.get("/appliances"); strings.Contains(html.UnescapeString(page), software) {
			t.Errorf("an appliance that now reports tpm still shows the software warning:\n%s", page)
		}
	})
}

func TestAppliancesPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		_, _, page := b.get("/appliances")
		if !strings.Contains(page, "No appliances paired yet.") || !strings.Contains(page, `<a href="/appliances" aria-current="page">Appliances</a>`) {
			t.Fatalf("empty Appliances page:\n%s", page)
		}

		kiosk := h.newAppliance()
		code := kiosk.pairingCode()
		tests := []struct {
			name, code, appName string
			status              int
			want                string
		}{
			{"wrong code", "ZZZZ-ZZZZ", "Lobby kiosk 3", 400, "No appliance is waiting with this pairing code"},
			{"malformed code", "12", "Lobby kiosk 3", 400, "No appliance is waiting with this pairing code"},
			{"no name", code, "  ", 400, "Type a name for the appliance"},
			{"long name", code, strings.Repeat("x", appliance.MaxNameLen+1), 400, "over 64 characters"},
		}
		for _, tc := range tests {
			status, _, page := b.post("/appliances", url.Values{"code": {tc.code}, "name": {tc.appName}}, csrf(t, page))
			if status != tc.status || !strings.Contains(html.UnescapeString(page), tc.want) {
				t.Fatalf("%s: pair = %d, want %d with %q:\n%s", tc.name, status, tc.status, tc.want, page)
			}
			if !strings.Contains(page, `value="`+html.EscapeString(tc.code)+`"`) {
				t.Errorf("%s: the form lost the typed code", tc.name)
			}
		}
		// The code typed in lower case with a dash works.
		_, _, page = b.get("/appliances")
		typed := strings.ToLower(code[:4] + "-" + code[4:])
		status, path, page := b.post("/appliances", url.Values{"code": {typed}, "name": {" Lobby kiosk 3 "}}, csrf(t, page))
		if status != 200 || path != "/appliances" || !strings.Contains(page, "Appliance &#34;Lobby kiosk 3&#34; paired.") {
			t.Fatalf("pair: %d at %s:\n%s", status, path, page)
		}
		kiosk.learnID()

		other := h.newAppliance()
		status, _, page = b.post("/appliances", url.Values{"code": {other.pairingCode()}, "name": {"LOBBY KIOSK 3"}}, csrf(t, page))
		if status != 409 || !strings.Contains(page, "Another appliance has this name") {
			t.Fatalf("pair with a taken name = %d:\n%s", status, page)
		}

		// A sync reports version, accounts and clock; an offset near half
		// a step draws the warning.
		h.clock.Advance(time.Second)
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-12 * time.Second), Bound: 500 * time.Millisecond, State: "SYNCED", Frequency: 1.5})
		_, _, page = b.get("/appliances")
		for _, want := range []string{"Lobby kiosk 3", "1.2.3", `<td data-label="Accounts">2</td>`, "offset +12.000 s", "bound ±0.500 s", "SYNCED", "Warning: the appliance's time may be off by 12.5s"} {
			if !strings.Contains(html.UnescapeString(page), want) {
				t.Errorf("Appliances page lacks %q:\n%s", want, page)
			}
		}
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-20 * time.Millisecond), Bound: 5 * time.Millisecond, State: "SYNCED"})
		if _, _, page = b.get("/appliances"); strings.Contains(page, "Warning:") || !strings.Contains(html.UnescapeString(page), "offset +0.020 s") {
			t.Errorf("a good clock still warned:\n%s", page)
		}
		if !strings.Contains(page, `<span class="badge active">Online</span>`) {
			t.Errorf("an appliance that just synced is not online:\n%s", page)
		}
		// Its last-seen time is rewritten at least every SeenEvery while
		// it syncs: silent for 2 minutes more, it is offline.
		h.clock.Advance(appliance.SeenEvery + 2*time.Minute)
		if _, _, page = b.get("/appliances"); !strings.Contains(page, `<span class="badge">Offline</span>`) {
			t.Errorf("an appliance silent for SeenEvery and 2 minutes is not offline:\n%s", page)
		}
		if want := "Last seen is kept to within 5 minutes"; !strings.Contains(page, want) || !strings.Contains(page, "in the last 6.5 minutes") {
			t.Errorf("the Appliances page does not say how precise last seen is (%q, 6.5 minutes):\n%s", want, page)
		}

		// Rename.
		_, _, page = b.get("/appliances/" + kiosk.id + "/rename")
		status, _, page = b.post("/appliances/"+kiosk.id+"/rename", url.Values{"name": {""}}, csrf(t, page))
		if status != 400 || !strings.Contains(page, "Type a name for the appliance") {
			t.Fatalf("rename to empty = %d:\n%s", status, page)
		}
		status, _, page = b.post("/appliances/"+kiosk.id+"/rename", url.Values{"name": {"Front desk"}}, csrf(t, page))
		if status != 200 || !strings.Contains(page, "Appliance renamed to &#34;Front desk&#34;.") || !strings.Contains(page, `">Front desk</a></td>`) {
			t.Fatalf("rename = %d:\n%s", status, page)
		}
		if status, _, _ := b.get("/appliances/nosuch/rename"); status != 404 {
			t.Errorf("rename page of a missing appliance = %d, want 404", status)
		}

		// Unpair: confirm, then the appliance learns it and wipes its
		// accounts; once it acks, it is gone.
		_, _, page = b.get("/appliances/" + kiosk.id + "/unpair")
		if !strings.Contains(page, "wipes every account it received from this server") {
			t.Fatalf("unpair confirmation:\n%s", page)
		}
		status, _, page = b.post("/appliances/"+kiosk.id+"/unpair", nil, csrf(t, page))
		if status != 200 || !strings.Contains(page, "Appliance &#34;Front desk&#34; unpaired.") || !strings.Contains(page, "Unpairing") || !strings.Contains(page, "/appliances/"+kiosk.id+"/forget") {
			t.Fatalf("unpair = %d:\n%s", status, page)
		}
		cs := kiosk.sync(nil)
		if len(cs) != 1 || cs[0].Kind != proto.KindUnpair {
			t.Fatalf("changes after unpair = %s, want unpair", kinds(cs))
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})
		if _, _, page = b.get("/appliances"); !strings.Contains(page, "No appliances paired yet.") {
			t.Fatalf("appliance still listed after it acked the unpair:\n%s", page)
		}

		// Forget an appliance that never comes back.
		status, _, page = b.post("/appliances", url.Values{"code": {other.pairingCode()}, "name": {"Lost"}}, csrf(t, page))
		if status != 200 {
			t.Fatalf("pair another: %d\n%s", status, page)
		}
		other.learnID()
		_, _, page = b.get("/appliances/" + other.id + "/unpair")
		b.post("/appliances/"+other.id+"/unpair", nil, csrf(t, page))
		_, _, page = b.get("/appliances/" + other.id + "/forget")
		status, _, page = b.post("/appliances/"+other.id+"/forget", nil, csrf(t, page))
		if status != 200 || !strings.Contains(page, "Appliance &#34;Lost&#34; forgotten.") || !strings.Contains(page, "No appliances paired yet.") {
			t.Fatalf("forget = %d:\n%s", status, page)
		}

		got := auditActions(t, h.st)
		for _, want := range []string{"appliance.pair", "appliance.rename", "appliance.unpair", "appliance.unpaired", "appliance.forget"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit log %q lacks %s", got, want)
			}
		}

		// Admins only.
		if _, err := h.srv.Core().CreateUser(context.Background(), core.System, core.NewUser{Username: "bob", Password: "bob password 1"}); err != nil {
			t.Fatal(err)
		}
		ub := h.browser()
		ub.signIn("bob", "bob password 1", nil, h.clock)
		if status, _, _ := ub.get("/appliances"); status != 403 {
			t.Errorf("Appliances page for a user = %d, want 403", status)
		}
	})
}

var offerRE = regexp.MustCompile(`(?s)<p class="offer [a-z]+" role="status"[^>]*>\s*<span class="text">(.*?)</span>`)

// offerText returns the offer state the configuration page shows.
func offerText(t *testing.T, page string) string {
	t.Helper()
	m := offerRE.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(strings.TrimSpace(m[1]))
}

func TestSendToAppliance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})

		// Without a paired appliance the page says how to get one.
		_, _, page := b.get("/users/lena/mfa-devices/new")
		_, path, page := b.post("/users/lena/mfa-devices", url.Values{"name": {"Kiosk token"}, "kind": {"appliance"}}, csrf(t, page))
		if !strings.Contains(page, "No appliance is paired.") {
			t.Fatalf("configuration page without appliances:\n%s", page)
		}
		configure := path
		base := strings.TrimSuffix(configure, "/configure")

		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby kiosk 3")
		kiosk.sync(nil)

		_, _, page = b.get(configure)
		if !strings.Contains(page, `<option value="`+kiosk.id+`">Lobby kiosk 3</option>`) || offerText(t, page) != "" {
			t.Fatalf("configuration page does not offer the appliance:\n%s", page)
		}
		if !strings.Contains(page, `action="`+base+`/confirm"`) {
			t.Fatalf("configuration page lacks the code form")
		}
		status, path, page := b.post(base+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page))
		if status != 200 || path != configure || !strings.Contains(page, "Sent to appliance &#34;Lobby kiosk 3&#34;.") {
			t.Fatalf("send = %d at %s:\n%s", status, path, page)
		}
		if !strings.Contains(page, `action="`+base+`/confirm"`) {
			t.Fatalf("the code form went away after sending")
		}

		// The appliance gets the offer, opens the secret, and accepts.
		cs := kiosk.sync(nil)
		if len(cs) != 1 || cs[0].Kind != proto.KindOffer || cs[0].User != "lena" || cs[0].DeviceName != "Kiosk token" {
			t.Fatalf("changes = %+v, want the offer", cs)
		}
		uid := cs[0].DeviceID
		k, seq, err := proto.OpenOffer(cs[0].Sealed, cs[0].DeviceID, kiosk.boxPub, kiosk.boxPriv)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, page = b.get(configure); !strings.Contains(page, `data-secret="`+k.SecretBase32()+`"`) {
			t.Fatalf("the appliance's secret differs from the registration's")
		}
		// The status line shows the very button sequence sealed for the
		// appliance, and so does the status the page polls.
		want := "on the appliance press OK, then " + strings.ToUpper(strings.Join(seq, " ")) + "."
		if got := offerText(t, page); !strings.Contains(got, want) {
			t.Fatalf("offer state after sending = %q, want %q", got, want)
		}
		if _, _, js := b.get(base + "/status"); !strings.Contains(js, `"sequence":"OK, then `+strings.ToUpper(strings.Join(seq, " "))+`"`) {
			t.Fatalf("status JSON = %s, want the sequence", js)
		}
		if _, _, tab := b.get("/users/lena/mfa-devices"); !strings.Contains(tab, `there press <kbd class="sequence">OK, then `+strings.ToUpper(strings.Join(seq, " "))+`</kbd>`) {
			t.Fatalf("the devices tab does not show the offer's sequence:\n%s", tab)
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted})
		_, _, page = b.get(configure)
		if got := offerText(t, page); got != "Accepted on “Lobby kiosk 3”: now type the code the appliance shows." {
			t.Fatalf("offer state after accept = %q", got)
		}

		// The admin types the code the appliance shows: active on both
		// sides.
		status, path, page = b.post(base+"/confirm", url.Values{"code1": {enroll.Code(k, h.clock.Now())}}, csrf(t, page))
		if status != 200 || path != "/users/lena/mfa-devices" || !strings.Contains(page, "registered on appliance &#34;Lobby kiosk 3&#34;. It is ready for use.") {
			t.Fatalf("confirm = %d at %s:\n%s", status, path, page)
		}
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindActivate || cs[0].DeviceID != uid {
			t.Fatalf("changes after confirm = %+v, want activate of %s", cs, uid)
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})

		// Rename and delete reach the appliance.
		id := base[strings.LastIndex(base, "/")+1:]
		_, _, page = b.get(base + "/rename")
		b.post(base+"/rename", url.Values{"name": {"Front desk token"}}, csrf(t, page))
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindRename || cs[0].Name != "Front desk token" || cs[0].DeviceID != uid {
			t.Fatalf("changes after rename = %+v, want rename", cs)
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})
		h.mustCall(204, "DELETE", "/api/v1/users/lena/mfa-devices/"+id, nil)
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindDelete || cs[0].DeviceID != uid {
			t.Fatalf("changes after delete = %s, want delete", kinds(cs))
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultApplied})

		// A rejected offer says so; the code form stays.
		_, _, page = b.get("/users/lena/mfa-devices/new")
		_, configure, page = b.post("/users/lena/mfa-devices", url.Values{"name": {"Second"}, "kind": {"appliance"}}, csrf(t, page))
		base = strings.TrimSuffix(configure, "/configure")
		b.post(base+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page))
		cs = kiosk.sync(nil)
		if kinds(cs) != proto.KindOffer {
			t.Fatalf("changes = %s, want offer", kinds(cs))
		}
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultRejected})
		_, _, page = b.get(configure)
		if got := offerText(t, page); !strings.Contains(got, "Rejected on the appliance “Lobby kiosk 3”") {
			t.Fatalf("offer state after reject = %q\n%s", got, page)
		}
		if !strings.Contains(page, `action="`+base+`/confirm"`) {
			t.Fatalf("the code form went away after a reject")
		}

		// Sent again and left unanswered, it expires with the
		// registration: the janitor tells the appliance.
		b.post(base+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page))
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindOffer {
			t.Fatalf("changes after sending again = %s, want offer", kinds(cs))
		}
		h.clock.Advance(11 * time.Minute)
		h.srv.Sweep(context.Background())
		if cs = kiosk.sync(nil); kinds(cs) != proto.KindExpire {
			t.Fatalf("changes after expiry = %s, want expire", kinds(cs))
		}

		// Sending to an appliance being unpaired is refused with a reason.
		_, _, page = b.get("/users/lena/mfa-devices/new")
		_, configure, page = b.post("/users/lena/mfa-devices", url.Values{"name": {"Third"}}, csrf(t, page))
		base = strings.TrimSuffix(configure, "/configure")
		if err := h.srv.Appliances().Unpair(context.Background(), kiosk.id); err != nil {
			t.Fatal(err)
		}
		status, _, page = b.post(base+"/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page))
		if status != 409 || !strings.Contains(page, "being unpaired") || !strings.Contains(page, `action="`+base+`/confirm"`) {
			t.Fatalf("send to an unpairing appliance = %d:\n%s", status, page)
		}
		status, _, page = b.post(base+"/send", url.Values{"appliance": {"nosuch"}}, csrf(t, page))
		if status != 404 || !strings.Contains(page, "No paired appliance") {
			t.Fatalf("send to a missing appliance = %d:\n%s", status, page)
		}

		got := auditActions(t, h.st)
		for _, want := range []string{"offer.send", "offer.accept", "offer.reject"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit log %q lacks %s", got, want)
			}
		}

		// The portal never offers appliances.
		st := core.DefaultSettings()
		st.SelfService = true
		if err := h.srv.Core().SaveSettings(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := b.post("/portal/mfa-devices/1/send", url.Values{"appliance": {kiosk.id}}, csrf(t, page)); status != 404 && status != 405 {
			t.Errorf("portal send = %d, want no such route", status)
		}
	})
}

func TestAPISendToAppliance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		kiosk := h.newAppliance()
		in, err := h.srv.Appliances().Pair(context.Background(), kiosk.pairingCode(), "Lobby kiosk 3")
		if err != nil {
			t.Fatal(err)
		}
		kiosk.id = in.ID
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "alice"})

		// A missing appliance creates nothing.
		status, e := h.call("POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": "Token", "appliance": "Nowhere"})
		if status != 404 || !strings.Contains(e["error"].(string), `no paired appliance with id or name "Nowhere"`) {
			t.Fatalf("create with a missing appliance = %d %v", status, e)
		}
		if l := h.mustCall(200, "GET", "/api/v1/users/alice/mfa-devices", nil); len(l["mfa_devices"].([]any)) != 0 {
			t.Fatalf("a failed create left %v", l)
		}

		for i, which := range []string{"lobby KIOSK 3", in.ID} {
			name := "Token " + strconv.Itoa(i)
			m := h.mustCall(201, "POST", "/api/v1/users/alice/mfa-devices", map[string]any{"name": name, "appliance": which})
			offer, _ := m["offer"].(map[string]any)
			if m["kind"] != "appliance" || offer == nil || offer["state"] != "pending" || offer["appliance_id"] != in.ID || offer["appliance_name"] != "Lobby kiosk 3" {
				t.Fatalf("create with appliance %q = %v", which, m)
			}
			cs := kiosk.sync(nil)
			if len(cs) != i+1 || cs[i].Kind != proto.KindOffer || cs[i].DeviceName != name {
				t.Fatalf("changes = %+v, want %d offers", cs, i+1)
			}
		}
		cs := kiosk.sync(nil)
		kiosk.ack(proto.Ack{Rev: cs[0].Rev, Result: proto.ResultAccepted}, proto.Ack{Rev: cs[1].Rev, Result: proto.ResultRejected})
		l := h.mustCall(200, "GET", "/api/v1/users/alice/mfa-devices", nil)
		var states []string
		for _, d := range l["mfa_devices"].([]any) {
			states = append(states, d.(map[string]any)["offer"].(map[string]any)["state"].(string))
		}
		if strings.Join(states, ",") != "accepted,rejected" {
			t.Fatalf("offer states = %v, want accepted,rejected", states)
		}
	})
}

// failingAppliances is a store whose appliance change log cannot be read,
// to see that appliance hooks never fail a person's action.
type failingAppliances struct{ store.Store }

func (f failingAppliances) OffersByDevice(ctx context.Context, uid string) ([]store.Change, error) {
	return nil, errors.New("offers by device: database is gone")
}

func TestApplianceHookFailureIsLogged(t *testing.T) {
	st := storeSQLite(t)
	h := newHarness(t, st, func(c *Config) {
		c.Appliance.Store = failingAppliances{st}
	})
	_, id := h.registered("alice", "Phone")
	h.mustCall(204, "DELETE", devPath("alice", id), nil)
	if !strings.Contains(h.logs.String(), "appliances not told about an MFA device change") {
		t.Errorf("hook failure not logged:\n%s", h.logs.String())
	}
	m := scrape(t, h)
	if m[`totpserver_appliance_hook_errors_total{hook="activate"}`] != 1 || m[`totpserver_appliance_hook_errors_total{hook="delete"}`] != 1 {
		t.Errorf("hook errors = activate %v, delete %v, want 1 each", m[`totpserver_appliance_hook_errors_total{hook="activate"}`], m[`totpserver_appliance_hook_errors_total{hook="delete"}`])
	}
}

// scrape reads the server's metrics as "name{labels}" -> value.
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	w := httptest.NewRecorder()
	h.srv.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("GET /metrics = %d %s", w.Code, w.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

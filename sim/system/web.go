package system

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/device"
)

// Handler serves the simulator's page and its HTTP API:
//
//	GET  /                                 the page: every appliance's display and buttons
//	GET  /sim/display.png[?scale=N]        the first appliance's frame, read back from GDDRAM
//	POST /sim/buttons/{name}               one press of next, ok or back
//	GET  /sim/state                        JSON: view, account, whether a code is shown, time,
//	                                       what each button does now, the accounts;
//	                                       sync.pairing_code while it waits to be paired
//	GET  /sim/appliances/{n}/panel         HTML: appliance n's buttons and state (the page's refresh)
//	POST /sim/appliances/{n}/forget        the server forgets appliance n's pairing
//	     /sim/appliances/{n}/...           the same for appliance n (0-based)
func (s *System) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /sim/display.png", s.withAppliance(0, displayPNG))
	mux.HandleFunc("POST /sim/buttons/{name}", s.withAppliance(0, press))
	mux.HandleFunc("GET /sim/state", s.withAppliance(0, state))
	mux.HandleFunc("GET /sim/appliances/{n}/display.png", s.withAppliance(-1, displayPNG))
	mux.HandleFunc("POST /sim/appliances/{n}/buttons/{name}", s.withAppliance(-1, press))
	mux.HandleFunc("GET /sim/appliances/{n}/state", s.withAppliance(-1, state))
	mux.HandleFunc("GET /sim/appliances/{n}/panel", s.panelLive)
	mux.HandleFunc("POST /sim/appliances/{n}/forget", s.forget)
	mux.HandleFunc("GET /sim/appliances", s.list)
	return mux
}

type applianceHandler func(w http.ResponseWriter, r *http.Request, a *Appliance)

// withAppliance resolves the appliance: fixed when n >= 0, else from the
// {n} path value.
func (s *System) withAppliance(n int, h applianceHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n >= 0 {
			h(w, r, s.appliances[n])
			return
		}
		if i, ok := s.applianceIndex(w, r); ok {
			h(w, r, s.appliances[i])
		}
	}
}

// applianceIndex reads the {n} path value; on a bad one it answers and
// returns false.
func (s *System) applianceIndex(w http.ResponseWriter, r *http.Request) (int, bool) {
	i, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("appliance %q is not a number", r.PathValue("n")))
		return 0, false
	}
	if i < 0 || i >= len(s.appliances) {
		httpError(w, http.StatusNotFound, fmt.Sprintf("no appliance %d (have %d)", i, len(s.appliances)))
		return 0, false
	}
	return i, true
}

func displayPNG(w http.ResponseWriter, r *http.Request, a *Appliance) {
	scale := 1
	if v := r.URL.Query().Get("scale"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("scale %q must be a whole number from 1 to 16", v))
			return
		}
		scale = n
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.PNG(w, scale); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
	}
}

func press(w http.ResponseWriter, r *http.Request, a *Appliance) {
	b, err := device.ParseButton(r.PathValue("name"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.Press(r.Context(), b); err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if r.Header.Get("Accept") == "application/json" || r.FormValue("redirect") == "" {
		writeJSON(w, http.StatusOK, a.State())
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func state(w http.ResponseWriter, _ *http.Request, a *Appliance) {
	writeJSON(w, http.StatusOK, a.State())
}

func (s *System) list(w http.ResponseWriter, _ *http.Request) {
	out := make([]State, len(s.appliances))
	for i, a := range s.appliances {
		out[i] = a.State()
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// The page: per appliance its panel, its buttons labelled with what they
// do now, and its state as a table; the live part (buttons and table) is
// also served alone at /sim/appliances/{n}/panel for the page's refresh.
var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>totpbox simulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#20232a;color:#ddd;margin:1.5rem;line-height:1.4}
h1{font-weight:500;font-size:1.4rem;margin:0 0 .5rem} h2{font-weight:500;font-size:1.15rem;margin:0 0 .8rem} a{color:#8cf}
.app{display:inline-block;vertical-align:top;margin:0 1.5rem 1.5rem 0;background:#2c3038;padding:1.2rem;border-radius:14px;max-width:100%;box-sizing:border-box}
.glass{background:#111;padding:14px;border-radius:8px;display:inline-block;max-width:100%;box-sizing:border-box}
.glass img{image-rendering:pixelated;display:block;max-width:100%;height:auto;background:#000}
.buttons{margin:1rem 0;display:flex;gap:.8rem;flex-wrap:wrap}
.buttons button{font-size:1.05rem;padding:.5rem 1rem;border-radius:8px;border:0;background:#445;color:#eee;cursor:pointer;min-width:8.5rem;text-align:center}
.buttons button:hover{background:#557} .buttons button .does{display:block;font-size:.85rem;color:#bcd;min-height:1.2em}
.buttons button.idle .does{color:#778}
table.state{border-collapse:collapse;font-size:.95rem} table.state th{text-align:left;font-weight:500;color:#9ab;padding:.25rem 1rem .25rem 0;vertical-align:top}
table.state td{padding:.25rem 0} .muted{color:#889} ul.accounts{margin:0;padding-left:1.1rem}
form.forget{margin-top:1rem} form.forget button{font-size:.95rem;padding:.4rem .9rem;border-radius:6px;border:1px solid #866;background:#3a2c2c;color:#fcc;cursor:pointer}
</style></head><body>
<h1>totpbox simulator</h1>
{{if .Console}}<p>Registration server console: <a href="{{.Console}}">{{.Console}}</a>{{if .Admin}} — sign in as <code>{{.Admin}}</code>{{end}}</p>{{end}}
{{if .Message}}<p class="message">{{.Message}}</p>{{end}}
{{range .Appliances}}
<section class="app" data-n="{{.N}}">
<h2>{{.Name}}</h2>
<div class="glass"><img id="d{{.N}}" src="/sim/appliances/{{.N}}/display.png?scale={{.Scale}}" width="{{.W}}" height="{{.H}}" alt="Display of {{.Name}}"></div>
<div class="live" id="l{{.N}}">{{template "live" .Live}}</div>
</section>
{{end}}
<script>
// Refresh each display and its buttons and state once a second, and at
// once after a press; the page works without it.
function refresh(n){
 var img=document.getElementById('d'+n);
 img.src=img.src.replace(/&t=\d+/,'')+'&t='+Date.now();
 return fetch('/sim/appliances/'+n+'/panel').then(function(r){return r.text()}).then(function(h){
  document.getElementById('l'+n).innerHTML=h;});}
function tick(){document.querySelectorAll('.app').forEach(function(el){refresh(el.dataset.n)});}
document.addEventListener('click',function(e){
 var b=e.target.closest('form.buttons button'); if(!b)return;
 e.preventDefault();
 var n=b.closest('.app').dataset.n;
 fetch(b.formAction,{method:'POST',headers:{'Accept':'application/json'}}).then(function(){return refresh(n)});});
setInterval(tick,1000);
</script>
</body></html>`))

func init() {
	template.Must(pageTmpl.New("live").Parse(`<form class="buttons" method="post">
<input type="hidden" name="redirect" value="1">
{{range .Buttons}}<button class="{{if not .Does}}idle{{end}}" name="button" value="{{.Name}}" formaction="/sim/appliances/{{$.N}}/buttons/{{.Name}}" data-does="{{.Does}}" title="{{.Label}}: {{if .Does}}{{.Does}}{{else}}does nothing on this screen{{end}}">{{.Label}}<span class="does">{{if .Does}}{{.Does}}{{else}}—{{end}}</span></button>
{{end}}</form>
<table class="state">
<tr><th>Screen</th><td class="screen">{{.Screen}}</td></tr>
<tr><th>Clock</th><td class="clock">{{.Clock}}{{if .ClockReason}} <span class="muted">({{.ClockReason}})</span>{{end}}</td></tr>
<tr><th>Server</th><td class="link">{{.Link}}</td></tr>
<tr><th>Secrets</th><td>{{.Secrets}}</td></tr>
<tr><th>Accounts</th><td>{{if .Accounts}}<ul class="accounts">{{range .Accounts}}<li>{{.Name}}{{if ne .State "active"}} <span class="muted">({{.State}})</span>{{end}}</li>{{end}}</ul>{{else}}none{{end}}</td></tr>
<tr><th>Panel</th><td>{{.Panel}} <span class="muted">· <a href="/sim/appliances/{{.N}}/state">state as JSON</a></span></td></tr>
</table>
{{if .CanForget}}<form class="forget" method="post" action="/sim/appliances/{{.N}}/forget"><button type="submit" title="The server forgets this appliance; it waits with a pairing code to enter on the console. Paired again, it keeps the accounts whose MFA device is still active (placed on it again) and wipes the rest">Forget pairing</button></form>{{end}}`))
}

type pageAppliance struct {
	N           int
	Name, Panel string
	Scale, W, H int
	Live        liveView
}

// liveView is the part of an appliance's block the page refreshes: its
// buttons and its state in words.
type liveView struct {
	N                   int
	Panel               string
	Buttons             []buttonLabel
	Screen, Clock, Link string
	ClockReason         string
	Secrets             string
	Accounts            []AccountState
	CanForget           bool
}

type buttonLabel struct{ Name, Label, Does string }

// viewWords names the loop's views for people.
var viewWords = map[string]string{
	"code": "Code", "hidden": "Code hidden until OK", "untrusted": "No code: clock not trusted",
	"qr": "QR code of the new account", "secret": "Secret key of the new account", "offer": "New account offered by the server",
	"message": "Message", "pairing": "Pairing code", "blank": "Blank (screen saver)",
}

// clockWords names the clock's states for people.
var clockWords = map[string]string{"SYNCED": "In sync", "HOLDOVER": "Holding over (no recent NTP reply)", "UNSYNCED": "Not synced yet", "UNTRUSTED": "Not trusted"}

func (s *System) live(n int) liveView {
	a := s.appliances[n]
	st := a.State()
	v := liveView{N: n, Panel: a.Panel, Secrets: a.Secrets(), Accounts: st.Accounts, ClockReason: st.Clock}
	v.Buttons = []buttonLabel{{"next", "NEXT", st.Buttons.Next}, {"ok", "OK", st.Buttons.OK}, {"back", "BACK", st.Buttons.Back}}
	v.Screen = viewWords[st.View]
	if v.Screen == "" {
		v.Screen = st.View
	}
	switch {
	case st.Label != "" && (st.View == "code" || st.View == "hidden" || st.View == "untrusted" || st.View == "qr" || st.View == "secret"):
		v.Screen += fmt.Sprintf(" — %s (%d of %d)", st.Label, st.AccountIndex+1, st.AccountCount)
	case st.Message != "":
		v.Screen += ": " + st.Message
	}
	v.Clock = clockWords[st.TimeState]
	if v.Clock == "" {
		v.Clock = st.TimeState
	}
	if st.Bound > 0 {
		v.Clock += fmt.Sprintf(", within ±%s", roundBound(st.Bound))
	}
	switch sy := st.Sync; {
	case sy == nil:
		v.Link = "Standalone (no registration server)"
	case sy.Paired:
		v.Link = fmt.Sprintf("Paired as %q; link %s", sy.Name, sy.Link)
		if sy.LastError != "" {
			v.Link += " (" + sy.LastError + ")"
		}
		v.CanForget = s.server != nil
	case sy.PairingCode != "":
		v.Link = "Waiting to be paired: pairing code " + sy.PairingCode
	default:
		v.Link = "Not paired; asking the server for a pairing code"
	}
	return v
}

// roundBound rounds an error bound for reading: milliseconds below a
// second, else tenths of seconds.
func roundBound(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// panelScale is the whole-number scale that shows a panel about 640
// pixels wide.
func panelScale(width int) int {
	return max(1, min(8, 640/width))
}

func (s *System) page(w http.ResponseWriter, r *http.Request) {
	data := struct {
		Console, Admin, Message string
		Appliances              []pageAppliance
	}{Console: s.consoleURL, Admin: s.adminHint, Message: r.URL.Query().Get("msg")}
	for i, a := range s.appliances {
		sz := a.Size()
		scale := panelScale(sz.X)
		data.Appliances = append(data.Appliances, pageAppliance{N: i, Name: a.Name, Panel: a.Panel, Scale: scale, W: sz.X * scale, H: sz.Y * scale, Live: s.live(i)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	pageTmpl.Execute(w, data)
}

// panelLive serves the live part of appliance n's block.
func (s *System) panelLive(w http.ResponseWriter, r *http.Request) {
	n, ok := s.applianceIndex(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	pageTmpl.ExecuteTemplate(w, "live", s.live(n))
}

// forget makes the server forget appliance n's pairing (Forget pairing).
func (s *System) forget(w http.ResponseWriter, r *http.Request) {
	n, ok := s.applianceIndex(w, r)
	if !ok {
		return
	}
	err := s.ForgetPairing(r.Context(), n)
	if r.Header.Get("Accept") == "application/json" {
		if err != nil {
			httpError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.appliances[n].State())
		return
	}
	msg := s.appliances[n].Name + " was forgotten by the server: it shows a pairing code to enter on the console's Appliances page."
	if err != nil {
		msg = "Could not forget the pairing: " + err.Error()
	}
	http.Redirect(w, r, "/?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

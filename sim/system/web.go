package system

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/totpbox/totpbox/device"
)

// Handler serves the simulator's page and its HTTP API:
//
//	GET  /                                 the page: every appliance's display and buttons
//	GET  /sim/display.png[?scale=N]        the first appliance's frame, read back from GDDRAM
//	POST /sim/buttons/{name}               one press of next, ok or back
//	GET  /sim/state                        JSON: view, account, whether a code is shown, time
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
	mux.HandleFunc("GET /sim/appliances", s.list)
	return mux
}

type applianceHandler func(w http.ResponseWriter, r *http.Request, a *Appliance)

// withAppliance resolves the appliance: fixed when n >= 0, else from the
// {n} path value.
func (s *System) withAppliance(n int, h applianceHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		i := n
		if i < 0 {
			var err error
			if i, err = strconv.Atoi(r.PathValue("n")); err != nil {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("appliance %q is not a number", r.PathValue("n")))
				return
			}
		}
		if i < 0 || i >= len(s.appliances) {
			httpError(w, http.StatusNotFound, fmt.Sprintf("no appliance %d (have %d)", i, len(s.appliances)))
			return
		}
		h(w, r, s.appliances[i])
	}
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

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>totpbox simulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#20232a;color:#ddd;margin:2rem}
h1{font-weight:500;font-size:1.3rem} a{color:#8cf}
.app{display:inline-block;vertical-align:top;margin:0 2rem 2rem 0;background:#2c3038;padding:1rem;border-radius:12px}
.app img{image-rendering:pixelated;border:6px solid #111;border-radius:4px;background:#000;display:block}
.buttons{margin-top:.8rem;display:flex;gap:.6rem}
button{font-size:1rem;padding:.4rem 1rem;border-radius:6px;border:0;background:#445;color:#eee;cursor:pointer}
button:hover{background:#557} pre{font-size:.8rem;color:#aaa;white-space:pre-wrap;max-width:34rem}
</style></head><body>
<h1>totpbox simulator</h1>
{{if .Console}}<p>Registration server console: <a href="{{.Console}}">{{.Console}}</a>{{if .Admin}} — sign in as <code>{{.Admin}}</code>{{end}}</p>{{end}}
{{range .Appliances}}
<div class="app" data-n="{{.N}}">
<div>{{.Name}} · {{.Panel}}</div>
<img id="d{{.N}}" src="/sim/appliances/{{.N}}/display.png?scale={{.Scale}}" width="{{.W}}" height="{{.H}}" alt="display of {{.Name}}">
<form class="buttons" method="post">
<input type="hidden" name="redirect" value="1">
<button formaction="/sim/appliances/{{.N}}/buttons/next">NEXT</button>
<button formaction="/sim/appliances/{{.N}}/buttons/ok">OK</button>
<button formaction="/sim/appliances/{{.N}}/buttons/back">BACK</button>
</form>
<pre id="s{{.N}}"></pre>
</div>
{{end}}
<script>
// Refresh each display and state once a second; the page works without it.
function tick(){document.querySelectorAll('.app').forEach(function(el){
 var n=el.dataset.n, img=document.getElementById('d'+n);
 img.src=img.src.replace(/&t=\d+/,'')+'&t='+Date.now();
 fetch('/sim/appliances/'+n+'/state').then(function(r){return r.json()}).then(function(s){
  document.getElementById('s'+n).textContent=JSON.stringify(s,null,1)});});}
document.querySelectorAll('form.buttons button').forEach(function(b){b.addEventListener('click',function(e){
 e.preventDefault(); fetch(b.formAction,{method:'POST',headers:{'Accept':'application/json'}}).then(tick);});});
setInterval(tick,1000); tick();
</script>
</body></html>`))

type pageAppliance struct {
	N           int
	Name, Panel string
	Scale, W, H int
}

func (s *System) page(w http.ResponseWriter, _ *http.Request) {
	data := struct {
		Console, Admin string
		Appliances     []pageAppliance
	}{Console: s.consoleURL, Admin: s.adminHint}
	for i, a := range s.appliances {
		sz := a.Size()
		scale := 4
		if sz.X > 200 {
			scale = 2
		}
		data.Appliances = append(data.Appliances, pageAppliance{N: i, Name: a.Name, Panel: a.Panel, Scale: scale, W: sz.X * scale, H: sz.Y * scale})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, data)
}

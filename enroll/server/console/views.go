package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// onlineWithin is how recent an appliance's last-seen time must be for it
// to count as online: a held long-poll is renewed at least every
// proto.MaxWait, and the last-seen time is rewritten at least every
// appliance.SeenEvery while the appliance syncs.
const onlineWithin = appliance.SeenEvery + proto.MaxWait + 30*time.Second

// views holds one template set per page (the layout with the page's
// "content") and the checksums that version static URLs.
type views struct {
	pages  map[string]*template.Template
	static map[string]string // file name -> short checksum
}

var funcs = template.FuncMap{
	"when":       when,
	"clockState": deviceClockState,
	// groupSecret splits a base32 secret in groups of four for typing.
	"groupSecret": func(s string) string {
		var b strings.Builder
		for i, r := range s {
			if i > 0 && i%4 == 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
		}
		return b.String()
	},
	"errfor": errorFor,
	"locked": func(d store.Device, now time.Time) bool { return d.LockedUntil.After(now) },
	// capitalize upper-cases the first letter of a message written to
	// follow other words, such as a core.Failure's.
	"capitalize": capitalize,
	// online reports whether an appliance holds a sync on this server or
	// synced recently enough to be holding one on another replica.
	"online": func(a appliance.Info, now time.Time) bool {
		return a.Online || !a.LastSeen.IsZero() && now.Sub(a.LastSeen) < onlineWithin
	},
	// seenEvery and onlineWithin are how precise an appliance's last-seen
	// time is and how recent it must be for the appliance to count as
	// online; minutes shows them.
	"seenEvery":    func() time.Duration { return appliance.SeenEvery },
	"onlineWithin": func() time.Duration { return onlineWithin },
	"minutes":      func(d time.Duration) string { return fmt.Sprintf("%g minutes", d.Minutes()) },
	// offset shows a clock offset in seconds with its sign.
	"offset": func(d time.Duration) string { return fmt.Sprintf("%+.3f s", d.Seconds()) },
	// seconds shows a duration in seconds.
	"seconds": func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) },
	"seq": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	},
}

// when shows instant t as a <time> element: in UTC, which static/time.js
// turns into the viewer's time zone, keeping UTC on hover (its title).
func when(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `" title="` + u.Format(core.TimeLayout) + `">` + u.Format(core.TimeLayout) + `</time>`)
}

// clockState is how an MFA device's clock looks to the server, in words
// for people: Text for the page, Title with the exact figures.
type clockState struct {
	Text  string
	Title string
	// OutOfSync says the device needs a resync (Text is then "Out of sync").
	OutOfSync bool
}

// deviceClockState tells how far device d's clock runs from the server's,
// from its learned drift, and whether it needs a resync (registered with
// a late code).
func deviceClockState(d store.Device) clockState {
	if d.HOTP {
		return clockState{Text: fmt.Sprintf("Counter %d", d.Counter), Title: "An event token: its codes follow a counter, not a clock; a resync with two consecutive codes catches up with a token pressed too often"}
	}
	secs := d.DriftSteps * int64(d.PeriodSec)
	title := fmt.Sprintf("Learned drift %+d s (%+d steps of %d s)", secs, d.DriftSteps, d.PeriodSec)
	switch {
	case d.OutOfSync:
		return clockState{Text: "Out of sync", Title: "Registered with a late code: a resync with two consecutive codes sets its clock. " + title, OutOfSync: true}
	case secs == 0:
		return clockState{Text: "In sync", Title: title}
	case secs > 0:
		return clockState{Text: "Clock " + aboutDuration(secs) + " fast", Title: title}
	default:
		return clockState{Text: "Clock " + aboutDuration(-secs) + " slow", Title: title}
	}
}

// aboutDuration says secs (positive) in the largest unit that reads well:
// "30 s", "5 min", "2 h 10 min".
func aboutDuration(secs int64) string {
	switch {
	case secs < 120:
		return fmt.Sprintf("%d s", secs)
	case secs < 3600:
		return fmt.Sprintf("%d min", (secs+30)/60)
	}
	m := (secs + 30) / 60
	if m%60 == 0 {
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}

func loadViews() (*views, error) {
	v := &views{pages: make(map[string]*template.Template), static: make(map[string]string)}
	files, err := fs.Glob(staticFS, "static/*")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := staticFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		v.static[path.Base(f)] = hex.EncodeToString(sum[:6])
	}
	f := template.FuncMap{"static": func(name string) (string, error) {
		sum, ok := v.static[name]
		if !ok {
			return "", fmt.Errorf("no static file %q", name)
		}
		return "/static/" + name + "?v=" + sum, nil
	}}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).Funcs(f).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		v.pages[name] = t
	}
	return v, nil
}

// page is what every template gets: the common fields and the page's own
// data in D.
type page struct {
	Title string
	Me    *store.User
	// Can says which console sections the signed-in person's role
	// reaches; the navigation shows only those (core enforces the rest).
	Can   can
	CSRF  string
	Flash string
	Error string
	// Field names the form field Error concerns (its input's id): the
	// message is then shown under that field and announced there, not at
	// the top of the page.
	Field string
	// Section is the navigation entry to highlight.
	Section string
	// NoMFA asks the signed-in admin to register an MFA device (a
	// banner): they sign in with a password alone.
	NoMFA bool
	// DirectoryDown says why the directory's users cannot be synced (a
	// banner for admins); empty while it works.
	DirectoryDown string
	// Wide lets the page use the width of a desktop screen (wide tables).
	Wide bool
	Now  time.Time
	D    any
}

// can is what the navigation offers a role.
type can struct {
	Users, Appliances, HardwareTokens, Settings, Audit, Webhooks bool
	// Console is true when any of the console's sections is offered.
	Console bool
	// ChangeAppliances offers pairing, renaming and unpairing.
	ChangeAppliances bool
	// ChangeUsers, ManageDevices, ChangeSettings and ChangeWebhooks offer
	// the forms that change them.
	ChangeUsers, ManageDevices, ChangeSettings, ChangeWebhooks bool
}

func canFor(a core.Actor) can {
	ok := func(op core.Op) bool { return core.Allow(a, op) == nil }
	c := can{Users: ok(core.OpReadUsers), Appliances: ok(core.OpReadAppliances),
		HardwareTokens: ok(core.OpReadHardwareTokens), Settings: ok(core.OpReadSettings),
		Audit: ok(core.OpReadAudit), Webhooks: ok(core.OpReadWebhooks)}
	c.ChangeAppliances = ok(core.OpAppliances)
	c.ChangeUsers, c.ManageDevices = ok(core.OpManageUsers), ok(core.OpManageDevices)
	c.ChangeSettings, c.ChangeWebhooks = ok(core.OpSettings), ok(core.OpWebhooks)
	c.Console = c.Users || c.Appliances || c.HardwareTokens || c.Settings || c.Audit || c.Webhooks
	return c
}

// render writes page name with status. Render errors after the first byte
// cannot change the status, so the page is made in memory first.
func (s *Console) render(w http.ResponseWriter, r *http.Request, a *auth, status int, name string, p page) {
	t, ok := s.views.pages[name]
	if !ok {
		s.log.Error("no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if a != nil {
		u := a.user
		// The pages show an admin's navigation to whoever signed in as
		// admin, by the admin flag or by the identity provider's groups.
		u.Admin = a.role() == core.RoleAdmin
		p.Me = &u
		p.CSRF = a.sess.CSRF
		p.Can = canFor(a.actor(r))
		if u.Admin && p.Section != "portal" {
			if a.sess.Role == "" { // one from the identity provider did its MFA there
				has, err := s.hasMFA(r.Context(), u.ID)
				if err != nil {
					s.log.Error("read the admin's MFA devices", "err", err)
				}
				p.NoMFA = err == nil && !has
			}
			if f := s.cfg.DirectoryStatus; f != nil {
				if err := f(); err != nil {
					p.DirectoryDown = err.Error()
				}
			}
		}
	}
	p.Now = s.clock.Now()
	if f := s.takeFlash(w, r); f != "" && p.Flash == "" {
		p.Flash = f
	}
	p.Error = sentence(p.Error)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if p.Error != "" && p.Field != "" && !bytes.Contains(buf.Bytes(), []byte(`id="`+fieldErrorID(p.Field)+`"`)) {
		// The page has no such field: show the message at the top.
		s.log.Warn("page has no field for its error", "name", name, "field", p.Field)
		p.Field = ""
		buf.Reset()
		if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
			s.log.Error("render page", "name", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	formAction := "'self'"
	if s.ssoOn() {
		// Sign-out's form ends at the provider's logout (a redirect the
		// browser holds to form-action).
		if o := s.cfg.OIDC.LogoutOrigin(); o != "" {
			formAction += " " + o
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fieldError is an error message shown under the field it concerns.
type fieldError struct {
	// ID is the message's element id, for the input's aria-describedby.
	ID  string
	Msg string
}

func fieldErrorID(field string) string { return field + "-error" }

// errorFor returns p's error when it concerns field, or nil.
func errorFor(p page, field string) *fieldError {
	if p.Error == "" || p.Field != field {
		return nil
	}
	return &fieldError{ID: fieldErrorID(field), Msg: p.Error}
}

// quoted matches the names a message quotes, which may hold any word.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|“[^”]*”`)

// errorField names the form field that msg concerns: the first field
// whose word the message uses outside the names it quotes (fields are
// pairs of an input's id and its word: "name", "friendly name"), or ""
// when the message concerns the whole form.
func errorField(msg string, fields ...[2]string) string {
	m := strings.ToLower(quoted.ReplaceAllString(msg, ""))
	for _, f := range fields {
		if strings.Contains(m, f[1]) {
			return f[0]
		}
	}
	return ""
}

// nameField and codeFields are the fields of the MFA device forms.
var (
	nameField  = [2]string{"name", "name"}
	codeFields = [][2]string{{"code2", "code 2"}, {"code1", "code"}}
)

// sentence makes msg a sentence, with a capital and a full stop: the
// core's messages are written to follow a colon ("pair: no appliance is
// waiting..."), the pages show them on their own.
func sentence(msg string) string {
	r, n := utf8.DecodeRuneInString(msg)
	if n == 0 {
		return msg
	}
	msg = string(unicode.ToUpper(r)) + msg[n:]
	if !strings.ContainsAny(msg[len(msg)-1:], ".!?") {
		msg += "."
	}
	return msg
}

// errorPage shows err as a page: its message when it is a failure, or
// "internal error" (and a log line) otherwise.
func (s *Console) errorPage(w http.ResponseWriter, r *http.Request, a *auth, err error) {
	status, msg := core.Explain(err)
	if status >= http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", core.RetryAfter)
	}
	s.render(w, r, a, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// capitalize upper-cases the first letter of s.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// serveStatic serves the embedded assets; versioned URLs are cached for
// long.
func (s *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	if r.URL.Query().Get("v") == s.views.static[name] {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

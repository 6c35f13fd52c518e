package server

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"github.com/totpbox/totpbox/enroll/server/api"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

func testSealer(t testing.TB) *store.Sealer {
	key := make([]byte, store.KeySize)
	rand.Read(key)
	s, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockedBuffer collects logs from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	t     testing.TB
	st    store.Store
	srv   *Server
	clock *testkit.Clock
	token string
	logs  *lockedBuffer
}

// start is a fixed instant in the middle of a 30 s step.
var start = time.Date(2026, 3, 1, 12, 0, 15, 0, time.UTC)

func newHarness(t testing.TB, st store.Store, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, st: st, clock: testkit.NewClock(start), logs: &lockedBuffer{}}
	cfg := Config{
		Store:  st,
		Sealer: testSealer(t),
		Clock:  h.clock,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv = srv
	tok, err := api.CreateToken(context.Background(), st, "test")
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	h.token = tok
	return h
}

// call makes an API request with the harness's token and returns the
// status and the decoded body.
func (h *harness) call(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	status, raw := h.callRaw(method, path, body, h.token)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			h.t.Fatalf("%s %s: response is not JSON: %q", method, path, raw)
		}
	}
	return status, m
}

func (h *harness) callRaw(method, path string, body any, token string) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// mustCall is call that fails the test unless the status is want.
func (h *harness) mustCall(want int, method, path string, body any) map[string]any {
	h.t.Helper()
	status, m := h.call(method, path, body)
	if status != want {
		h.t.Fatalf("%s %s = %d %v, want %d", method, path, status, m, want)
	}
	return m
}

// registered creates user with an active MFA device and returns its key
// and id.
func (h *harness) registered(username, name string) (enroll.Key, int64) {
	h.t.Helper()
	if _, err := h.st.UserByName(context.Background(), username); err != nil {
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": username})
	}
	m := h.mustCall(201, "POST", "/api/v1/users/"+username+"/mfa-devices", map[string]any{"name": name})
	k, err := enroll.ParseURI(m["otpauth_uri"].(string))
	if err != nil {
		h.t.Fatal(err)
	}
	id := int64(m["id"].(float64))
	h.mustCall(200, "POST", devPath(username, id)+"/confirm", map[string]any{"codes": []string{enroll.Code(k, h.clock.Now())}})
	// Move on a step so the next code is fresh.
	h.clock.Advance(30 * time.Second)
	return k, id
}

func devPath(username string, id int64) string {
	return "/api/v1/users/" + username + "/mfa-devices/" + itoa(id)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// browser is a cookie-keeping client of a real listener running the
// server, for console and portal tests.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (h *harness) browser() *browser {
	h.t.Helper()
	ts := httptest.NewServer(h.srv.Handler())
	h.t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, base: ts.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// get fetches a page following redirects and returns the final status,
// path and body.
func (b *browser) get(path string) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.Path, string(body)
}

// post submits a form, adding the CSRF token of the page at from (when
// from is not empty).
func (b *browser) post(path string, form url.Values, csrf string) (int, string, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf != "" {
		form.Set("csrf", csrf)
	}
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.Path, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token in a page.
func csrf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

// signIn signs b in with a password (and a code from k when given).
func (b *browser) signIn(username, password string, k *enroll.Key, clock Clock) string {
	b.t.Helper()
	status, path, body := b.post("/signin", url.Values{"username": {username}, "password": {password}}, "")
	if k != nil {
		if path != "/signin/code" {
			b.t.Fatalf("sign in as %s: at %s (%d), want /signin/code", username, path, status)
		}
		status, path, body = b.post("/signin/code", url.Values{"code": {enroll.Code(*k, clock.Now())}}, csrf(b.t, body))
	}
	if status != 200 || path == "/signin" || path == "/signin/code" {
		b.t.Fatalf("sign in as %s: at %s (%d):\n%s", username, path, status, body)
	}
	return body
}

func storeSQLite(t testing.TB) store.Store { return storetest.OpenSQLite(t) }

func (h *harness) callWithType(method, path, body, ctype string) (int, []byte) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", ctype)
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

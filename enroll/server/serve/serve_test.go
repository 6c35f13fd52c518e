package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

// assemble assembles a server on a fresh data directory, listening on a
// free loopback port, with edit applied to the defaults.
func assemble(t *testing.T, edit func(*Config)) (*Assembly, Config) {
	t.Helper()
	isolateCredentials(t)
	c := Defaults()
	c.Data = t.TempDir()
	c.Listen = "127.0.0.1:0"
	if edit != nil {
		edit(&c)
	}
	c, err := Load("", func(l *Config) { *l = c })
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assemble(t.Context(), c, Options{Create: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// TestShutdownFlushesRefusedSignIns checks that a sign-in refused by the
// rate limit in the minute before shutdown reaches the audit log: the
// janitor writes refusals once their minute has ended, so without the
// shutdown's flush the last minute's would be lost.
func TestShutdownFlushesRefusedSignIns(t *testing.T) {
	a, c := assemble(t, func(c *Config) {
		c.Limits.SignInPerIP = Rate{PerSecond: 0.001, Burst: 1}
	})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	form := url.Values{"username": {"mallory"}, "password": {"guess"}}
	var codes []int
	for range 2 {
		resp, err := http.PostForm(a.URL()+"/signin", form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[1] != http.StatusTooManyRequests {
		t.Fatalf("sign-in statuses = %v, want the second refused (429)", codes)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after shutdown", err)
	}

	st, err := store.Open(context.Background(), c.Data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.AuditEvents(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range events {
		if e.Action == "signin.limited" {
			found = append(found, e.Target+" "+e.Detail)
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "user:mallory") || !strings.Contains(found[0], "1 sign-in attempts refused") {
		t.Fatalf("audit signin.limited rows = %q, want one for mallory counting 1 refusal", found)
	}
}

// TestAssembleNamesTheBusyAddress checks that an address already in use
// is refused naming its key, and that nothing stays open.
func TestAssembleNamesTheBusyAddress(t *testing.T) {
	a, _ := assemble(t, nil)
	defer a.Close()
	busy := strings.TrimPrefix(a.URL(), "http://")
	isolateCredentials(t)
	c := Defaults()
	c.Data = t.TempDir()
	c.Listen = "127.0.0.1:0"
	c.Metrics.Listen = busy
	_, err := Assemble(t.Context(), c, Options{Create: true, Logger: slog.New(slog.DiscardHandler)})
	le, ok := err.(*ListenError)
	if !ok || le.Key != "metrics.listen" || le.Addr != busy {
		t.Fatalf("Assemble with a busy metrics.listen = %v, want a ListenError naming metrics.listen %s", err, busy)
	}
}

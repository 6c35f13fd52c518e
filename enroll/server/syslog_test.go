package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/server/events/syslog/syslogtest"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestSyslogSession runs a scripted session (a user, a registration, a
// good and a bad code, a lock, a deletion) on a server that sends its
// audit to rsyslog over TLS: every audit row the server writes arrives
// with its structured data, in order.
func TestSyslogSession(t *testing.T) {
	r := syslogtest.Start(t)
	h := newHarness(t, storeSQLite(t), func(c *Config) {
		c.Syslog = &syslog.Config{Address: r.Addr, Transport: syslog.TransportTLS, TLS: r.TLS,
			Header: syslog.Header{Hostname: "totp1"}, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	})
	testkit.Run(t, func(ctx context.Context) error { h.srv.Run(ctx); return nil })

	k, id := h.registered("alice", "Phone")
	h.mustCall(200, "POST", "/api/v1/verify", map[string]any{"username": "alice", "code": enroll.Code(k, h.clock.Now())})
	for range 6 {
		h.call("POST", "/api/v1/verify", map[string]any{"username": "alice", "code": "000000", "ip": "198.51.100.7"})
	}
	h.mustCall(204, "DELETE", devPath("alice", id), nil)

	all, err := h.st.AuditAfter(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// The harness's token was made as `totpserver token create` makes
	// it: by another process, whose rows the server does not send.
	var rows []store.AuditEvent
	for _, e := range all {
		if e.Actor != "cli" {
			rows = append(rows, e)
		}
	}
	if len(rows) < 5 {
		t.Fatalf("the session wrote %d audit rows, want more", len(rows))
	}
	waitFor(t, 10*time.Second, func() bool { return len(r.Lines()) >= len(rows) })
	lines := r.Lines()
	for i, e := range rows {
		l := lines[i]
		want := []string{" totp1 totpserver ", " " + e.Action[:min(32, len(e.Action))] + " ",
			fmt.Sprintf(`event="%s"`, e.Action), fmt.Sprintf(`actor="%s"`, e.Actor)}
		if e.Target != "" {
			want = append(want, fmt.Sprintf(`target="%s"`, e.Target))
		}
		if e.IP != "" {
			want = append(want, fmt.Sprintf(`address="%s"`, e.IP))
		}
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("rsyslog line %d = %q, want it to hold %q (audit row %+v)", i, l, w, e)
			}
		}
	}
}

// waitFor polls cond every 10 ms for up to limit, and reports whether it
// held, for real time across processes.
func waitFor(t testing.TB, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("not after %v", limit)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

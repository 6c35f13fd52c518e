package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// auditPage is GET /api/v1/audit's answer.
type auditPage struct {
	Entries []struct {
		ID     int64  `json:"id"`
		Actor  string `json:"actor"`
		Type   string `json:"type"`
		Target string `json:"target"`
	} `json:"entries"`
	Next string `json:"next"`
}

func (h *harness) auditPage(query string) auditPage {
	h.t.Helper()
	status, raw := h.callRaw("GET", "/api/v1/audit?"+query, nil, h.token)
	if status != 200 {
		h.t.Fatalf("GET /api/v1/audit?%s = %d %s", query, status, raw)
	}
	var p auditPage
	if err := json.Unmarshal(raw, &p); err != nil {
		h.t.Fatalf("GET /api/v1/audit: %v in %s", err, raw)
	}
	return p
}

func TestAuditAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		ctx := context.Background()
		for i := range 7 {
			must(t, h.st.Audit(ctx, store.AuditEvent{Time: h.clock.Now(), Actor: "system", Action: "test.event", Target: fmt.Sprintf("user:u%d", i%2)}))
		}
		// Following next reads every row once, then stays put.
		var seen []string
		next := ""
		for range 10 {
			p := h.auditPage("limit=3&type=test.event&after=" + next)
			for _, e := range p.Entries {
				seen = append(seen, e.Target)
			}
			if p.Next == "" {
				t.Fatal("next is empty")
			}
			next = p.Next
		}
		if len(seen) != 7 {
			t.Fatalf("following next read %d rows, want 7: %v", len(seen), seen)
		}
		// A new row shows after the cursor.
		must(t, h.st.Audit(ctx, store.AuditEvent{Time: h.clock.Now(), Actor: "system", Action: "test.event", Target: "user:u1"}))
		if p := h.auditPage("type=test.event&after=" + next); len(p.Entries) != 1 {
			t.Errorf("after a new row: %d entries, want 1", len(p.Entries))
		}
		if p := h.auditPage("user=u1"); len(p.Entries) != 4 {
			t.Errorf("user=u1: %d entries, want 4", len(p.Entries))
		}
		if p := h.auditPage("since=2100-01-01T00:00:00Z"); len(p.Entries) != 0 || p.Next != "0" {
			t.Errorf("since the future = %+v, want no entries and next 0", p)
		}

		for _, tc := range []struct{ query, want string }{
			{"after=x", "after must be a cursor"},
			{"after=-1", "after must be a cursor"},
			{"limit=0", "limit must be a whole number from 1 to 1000"},
			{"limit=1001", "limit must be a whole number from 1 to 1000"},
			{"since=yesterday", "since must be an RFC 3339 time"},
			{"user=" + strings.Repeat("a", 201), "user must be valid text of at most 200 bytes"},
		} {
			status, m := h.call("GET", "/api/v1/audit?"+tc.query, nil)
			if msg, _ := m["error"].(string); status != 400 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("GET /api/v1/audit?%.30s = %d %v, want 400 %q on one line", tc.query, status, m, tc.want)
			}
		}
		if status, _ := h.callRaw("GET", "/api/v1/audit", nil, ""); status != 401 {
			t.Errorf("GET /api/v1/audit without a token = %d, want 401", status)
		}
		if status, _ := h.callRaw("GET", "/api/v1/audit", nil, "not-a-token"); status != 401 {
			t.Errorf("GET /api/v1/audit with a wrong token = %d, want 401", status)
		}
	})
}

func TestAuditCSV(t *testing.T) {
	h := newHarness(t, storeSQLite(t), nil)
	h.admin()
	ctx := context.Background()
	evil := []string{"=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"}
	for _, d := range evil {
		must(t, h.st.Audit(ctx, store.AuditEvent{Time: h.clock.Now(), Actor: "mallory", Action: "test.csv", Target: "user:mallory", Detail: d}))
	}
	b := h.browser()
	b.signIn("root", adminPassword, nil, h.clock)
	_, _, page := b.get("/audit")
	if !strings.Contains(page, `action="/audit.csv"`) {
		t.Fatalf("the Audit page has no CSV download form")
	}
	status, _, body := b.get("/audit.csv?" + url.Values{"type": {"test.csv"}, "user": {"mallory"}}.Encode())
	if status != 200 {
		t.Fatalf("GET /audit.csv = %d %s", status, body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if len(recs) != len(evil)+1 || strings.Join(recs[0], ",") != "id,time,actor,type,target,detail,address" {
		t.Fatalf("CSV = %q, want a header and %d rows", recs, len(evil))
	}
	for i, r := range recs[1:] {
		d := r[5]
		want := "'" + evil[i]
		if evil[i] == "plain" {
			want = "plain"
		}
		if d != want {
			t.Errorf("CSV detail %d = %q, want %q", i, d, want)
		}
	}
	if status, _, body := b.get("/audit.csv?since=nope"); status != 400 || !strings.Contains(body, "Since must be an RFC 3339 time") {
		t.Errorf("GET /audit.csv?since=nope = %d, want 400 naming since:\n%s", status, body)
	}
	// Signed out, the CSV is not served.
	if _, path, _ := h.browser().get("/audit.csv"); path != "/signin" {
		t.Errorf("GET /audit.csv signed out ends at %s, want /signin", path)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

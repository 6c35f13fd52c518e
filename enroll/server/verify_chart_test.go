package server

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// verifySVG is the part of a user's verify chart the tests read.
type verifySVG struct {
	XMLName xml.Name `xml:"svg"`
	Groups  []struct {
		Class string `xml:"class,attr"`
		Rects []struct {
			Y      string `xml:"y,attr"`
			Height string `xml:"height,attr"`
			Value  string `xml:"data-value,attr"`
			Title  string `xml:"title"`
		} `xml:"rect"`
	} `xml:"g"`
}

// verifyChartOf parses the verify chart of a user's page.
func verifyChartOf(t *testing.T, page string) verifySVG {
	t.Helper()
	i := strings.Index(page, `<svg class="chart verify-chart"`)
	j := strings.Index(page[max(i, 0):], "</svg>")
	if i < 0 || j < 0 {
		t.Fatalf("no verify chart on the page:\n%s", page)
	}
	var c verifySVG
	if err := xml.Unmarshal([]byte(page[i:i+j+len("</svg>")]), &c); err != nil {
		t.Fatalf("the verify chart is not well-formed SVG: %v\n%s", err, page[i:i+j])
	}
	return c
}

// TestUserVerifyChart: a user's page draws their seeded daily counts of
// the last 30 UTC days, 30 bars per series, heights to one scale.
func TestUserVerifyChart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "ivy"})
		ctx := context.Background()
		if _, _, page := b.get("/users/ivy"); !strings.Contains(page, "No code verified in the last 30 days.") {
			t.Errorf("a user without activity has a chart:\n%s", page)
		}
		u, err := h.st.UserByName(ctx, "ivy")
		if err != nil {
			t.Fatal(err)
		}
		today := store.UTCDay(h.clock.Now())
		day := func(n int) time.Time { return today.AddDate(0, 0, -n).Add(7 * time.Hour) }
		if err := h.st.AddVerifyDays(ctx, []store.VerifyDay{
			{UserID: u.ID, Day: day(0), Successes: 10, Failures: 2, Lockouts: 1},
			{UserID: u.ID, Day: day(5), Successes: 4},
			{UserID: u.ID, Day: day(29), Failures: 5},
			{UserID: u.ID, Day: day(30), Successes: 100}, // before the window
		}); err != nil {
			t.Fatal(err)
		}
		_, _, page := b.get("/users/ivy")
		c := verifyChartOf(t, page)
		// The scale is the highest day in the window, 10, over 118 units
		// (y 10 to 128); bar i is the day 29-i days ago.
		want := map[string]map[int]string{
			"ok":   {29: "118.0", 24: "47.2"},
			"fail": {29: "23.6", 0: "59.0"},
			"lock": {29: "11.8"},
		}
		if len(c.Groups) != 3 {
			t.Fatalf("verify chart has %d series, want 3", len(c.Groups))
		}
		for _, g := range c.Groups {
			w, ok := want[g.Class]
			if !ok {
				t.Errorf("unexpected series %q", g.Class)
				continue
			}
			if len(g.Rects) != 30 {
				t.Errorf("series %s has %d bars, want 30", g.Class, len(g.Rects))
				continue
			}
			for i, r := range g.Rects {
				h := w[i]
				if h == "" {
					h = "0.0"
				}
				if r.Height != h {
					t.Errorf("series %s bar %d height %s, want %s", g.Class, i, r.Height, h)
				}
			}
		}
		if got, want := c.Groups[0].Rects[24].Title, today.AddDate(0, 0, -5).Format("Jan 2")+": 4 codes accepted"; got != want {
			t.Errorf("bar title = %q, want %q", got, want)
		}
		if !strings.Contains(page, "Over 30 days: 14 accepted, 7 refused, 1 locked.") {
			t.Errorf("the page does not give the totals:\n%s", page)
		}
	})
}

// TestVerifyCountsFlush: two servers on one database count verifies in
// memory; each janitor pass adds its counts to the same (user, day)
// row, so the day holds both servers' counts, once.
func TestVerifyCountsFlush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		noLimit := Limits{VerifyPerUser: Rate{PerSecond: -1}, VerifyPerIP: Rate{PerSecond: -1}}
		a := newHarness(t, st, func(c *Config) { c.Limits = noLimit })
		b := *a // the same token and clock, another server
		srv, err := New(Config{Store: st, Sealer: a.srv.cfg.Sealer, Clock: a.clock, Logger: testkit.Quiet(), Limits: noLimit})
		if err != nil {
			t.Fatal(err)
		}
		b.srv = srv
		ctx := context.Background()
		k, _ := a.registered("ivy", "Token")
		u, err := st.UserByName(ctx, "ivy")
		if err != nil {
			t.Fatal(err)
		}
		wrong := func() string {
			for d := time.Duration(1); ; d++ { // a code of no nearby step
				c := enroll.Code(k, a.clock.Now().Add(d*time.Hour))
				near := false
				for s := -3; s <= 3; s++ {
					near = near || c == enroll.Code(k, a.clock.Now().Add(time.Duration(s)*30*time.Second))
				}
				if !near {
					return c
				}
			}
		}
		good := func(h *harness) {
			t.Helper()
			if status, reason := h.verify("ivy", enroll.Code(k, a.clock.Now())); status != 200 {
				t.Fatalf("verify a right code = %d %q", status, reason)
			}
			a.clock.Advance(30 * time.Second)
		}
		good(a)
		good(a)
		if _, reason := a.verify("ivy", wrong()); reason != core.ReasonInvalid {
			t.Fatalf("verify a wrong code on a = %q", reason)
		}
		good(&b)
		failsB := 0
		for {
			_, reason := b.verify("ivy", wrong())
			if reason != core.ReasonInvalid {
				if !strings.HasPrefix(reason, core.ReasonLocked) {
					t.Fatalf("verify a wrong code on b = %q", reason)
				}
				break
			}
			if failsB++; failsB > 50 {
				t.Fatal("no lockout after 50 wrong codes")
			}
		}
		if got, _ := st.VerifyDays(ctx, u.ID, a.clock.Now()); len(got) != 0 {
			t.Fatalf("counts stored before any janitor pass: %v", got)
		}
		a.srv.Sweep(ctx)
		b.srv.Sweep(ctx)
		a.srv.Sweep(ctx) // nothing new: adds nothing
		want := fmt.Sprintf("ok=3 fail=%d lock=1", 1+failsB)
		got, err := st.VerifyDays(ctx, u.ID, a.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Day != store.UTCDay(a.clock.Now()) ||
			fmt.Sprintf("ok=%d fail=%d lock=%d", got[0].Successes, got[0].Failures, got[0].Lockouts) != want {
			t.Fatalf("stored counts = %+v, want one day today with %s", got, want)
		}
	})
}

package server

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// svgChart is the part of the appliance page's clock chart the tests read.
type svgChart struct {
	XMLName  xml.Name `xml:"svg"`
	Polyline struct {
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Polygon struct {
		Points string `xml:"points,attr"`
	} `xml:"polygon"`
	Lines []struct {
		Class string `xml:"class,attr"`
		Y1    string `xml:"y1,attr"`
		Y2    string `xml:"y2,attr"`
		Dash  string `xml:"stroke-dasharray,attr"`
	} `xml:"line"`
}

// chartOf parses the clock chart of an appliance's page.
func chartOf(t *testing.T, page string) svgChart {
	t.Helper()
	i, j := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if i < 0 || j < i {
		t.Fatalf("no chart on the page:\n%s", page)
	}
	var c svgChart
	if err := xml.Unmarshal([]byte(page[i:j+len("</svg>")]), &c); err != nil {
		t.Fatalf("the chart is not well-formed SVG: %v\n%s", err, page[i:j+6])
	}
	return c
}

func TestApplianceClockChart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		ctx := context.Background()

		// Syncs write the history, at most one sample a minute.
		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby")
		if _, _, page := b.get("/appliances/" + kiosk.id); !strings.Contains(page, "No clock report in this time.") {
			t.Errorf("an appliance without reports has a chart:\n%s", page)
		}
		for _, d := range []time.Duration{0, 20 * time.Second, 50 * time.Second} {
			kiosk.sync(&proto.ClockReport{Time: h.clock.Now().Add(-d), Bound: 5 * time.Millisecond, State: "SYNCED"})
		}
		h.clock.Advance(time.Minute)
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now(), Bound: 5 * time.Millisecond, State: "SYNCED"})
		kiosk.sync(nil) // no clock report: no sample
		got, err := h.st.ClockSamples(ctx, kiosk.id, time.Time{})
		if err != nil || len(got) != 2 || got[0].Offset != 0 {
			t.Fatalf("samples after 3 syncs in one minute and 1 in the next = %+v, %v; want 2, the first of each minute", got, err)
		}

		// A seeded history: one sample an hour for a week, and one a
		// minute for the last hour on a second appliance.
		hourly, minutely := h.newAppliance(), h.newAppliance()
		pairThroughConsole(t, b, hourly, "Hourly")
		pairThroughConsole(t, b, minutely, "Minutely")
		now := h.clock.Now().Truncate(time.Minute)
		h.clock.Set(now)
		for k := range 168 {
			off := time.Duration(k%7-3) * 100 * time.Millisecond
			c := store.ClockSample{At: now.Add(-time.Duration(k) * time.Hour), Offset: off, Bound: 50 * time.Millisecond, State: "SYNCED"}
			if _, err := h.st.AppendClockSample(ctx, hourly.id, c); err != nil {
				t.Fatal(err)
			}
		}
		for k := range 60 {
			c := store.ClockSample{At: now.Add(-time.Duration(k) * time.Minute), Offset: time.Millisecond, Bound: time.Millisecond, State: "SYNCED"}
			if _, err := h.st.AppendClockSample(ctx, minutely.id, c); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name, path string
			points     int
		}{
			// 24 h: the samples of hours 0..24 ago (24 h ago is the edge).
			{"hourly 24h", "/appliances/" + hourly.id, 25},
			{"hourly 24h explicit", "/appliances/" + hourly.id + "?range=24h", 25},
			{"hourly 7d", "/appliances/" + hourly.id + "?range=7d", 168},
			// 24 h has 288 slots of 5 min: an hour of minutes fills 13.
			{"minutely 24h", "/appliances/" + minutely.id, 13},
			{"minutely 7d", "/appliances/" + minutely.id + "?range=7d", 3}, // slots of 35 min: now, 1-35 and 36-59 min ago
		}
		for _, tc := range tests {
			status, _, page := b.get(tc.path)
			if status != 200 {
				t.Fatalf("%s: GET %s = %d:\n%s", tc.name, tc.path, status, page)
			}
			c := chartOf(t, page)
			if n := len(strings.Fields(c.Polyline.Points)); n != tc.points {
				t.Errorf("%s: offset line has %d points, want %d", tc.name, n, tc.points)
			}
			if n := len(strings.Fields(c.Polygon.Points)); n != 2*tc.points {
				t.Errorf("%s: bound band has %d points, want %d", tc.name, n, 2*tc.points)
			}
			var dashed []string
			for _, l := range c.Lines {
				if l.Class == "threshold" && l.Dash != "" && l.Y1 == l.Y2 {
					dashed = append(dashed, l.Y1)
				}
			}
			// A 30 s step warns at 12 s; the scale is 1.25 × that, 15 s,
			// from y 69 (zero) to y 10: ±12 s sits at 69 ∓ 47.2.
			if strings.Join(dashed, " ") != "21.8 116.2" {
				t.Errorf("%s: dashed threshold lines at y %v, want [21.8 116.2]", tc.name, dashed)
			}
		}
		// The Appliances list: a sparkline per appliance over 24 h, in
		// 120 slots of 12 min.
		_, _, list := b.get("/appliances")
		for _, tc := range []struct {
			id     string
			points int
		}{{hourly.id, 25}, {minutely.id, 6}} {
			row := ""
			for _, r := range strings.Split(list, "<tr>") {
				if strings.Contains(r, `href="/appliances/`+tc.id+`"`) {
					row = r
				}
			}
			c := chartOf(t, row)
			if n := len(strings.Fields(c.Polyline.Points)); n != tc.points {
				t.Errorf("sparkline of %s has %d points, want %d", tc.id, n, tc.points)
			}
		}
		if status, _, page := b.get("/appliances/" + hourly.id + "?range=1y"); status != 400 || !strings.Contains(page, "range must be 24h or 7d") {
			t.Errorf("range=1y = %d, want 400 naming the choices:\n%s", status, page)
		}
	})
}

func TestJanitorPrunesClockHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby")
		ctx := context.Background()
		now := h.clock.Now()
		for _, age := range []time.Duration{8 * 24 * time.Hour, 7*24*time.Hour + time.Minute, 6 * 24 * time.Hour, time.Hour} {
			c := store.ClockSample{At: now.Add(-age), Bound: time.Millisecond, State: "SYNCED"}
			if _, err := h.st.AppendClockSample(ctx, kiosk.id, c); err != nil {
				t.Fatal(err)
			}
		}
		h.srv.Sweep(ctx)
		got, err := h.st.ClockSamples(ctx, kiosk.id, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || now.Sub(got[0].At) > 7*24*time.Hour {
			t.Errorf("after Sweep: %+v, want the 2 samples younger than 7 days", got)
		}
	})
}

// TestClockChartLeavesOutUnknownBound: a new appliance's first report
// comes before its clock ever synced, with no error bound (the largest
// int64 on the wire). The store keeps the bound as unknown, and neither
// the chart nor the sparkline nor the list draws it: their scale stays
// set by the threshold and the bounded reports.
func TestClockChartLeavesOutUnknownBound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		ctx := context.Background()

		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby")
		h.clock.Set(h.clock.Now().Truncate(time.Minute))
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now(), Bound: proto.UnknownBound, State: "UNSYNCED"})
		got, err := h.st.ClockSamples(ctx, kiosk.id, time.Time{})
		if err != nil || len(got) != 1 || !got[0].BoundUnknown || got[0].Bound != 0 {
			t.Fatalf("samples after an unsynced report = %+v, %v; want one with an unknown bound", got, err)
		}
		app, err := h.st.Appliance(ctx, kiosk.id)
		if err != nil || !app.Clock.BoundUnknown || app.Clock.Bound != 0 {
			t.Fatalf("the appliance's clock after an unsynced report = %+v, %v; want an unknown bound", app.Clock, err)
		}
		if _, _, list := b.get("/appliances"); !strings.Contains(list, "bound unknown") || strings.Contains(list, "e+09") {
			t.Errorf("the list does not say the bound is unknown:\n%s", list)
		}
		h.clock.Advance(time.Minute)
		kiosk.sync(&proto.ClockReport{Time: h.clock.Now(), Bound: 5 * time.Millisecond, State: "SYNCED"})

		_, _, page := b.get("/appliances/" + kiosk.id)
		c := chartOf(t, page)
		var dashed []string
		for _, l := range c.Lines {
			if l.Class == "threshold" && l.Y1 == l.Y2 {
				dashed = append(dashed, l.Y1)
			}
		}
		// A 30 s step warns at ±12 s on a scale of 15 s, as without the
		// unsynced report.
		if strings.Join(dashed, " ") != "21.8 116.2" || !strings.Contains(page, ">&#43;15 s</text>") {
			t.Errorf("chart's threshold lines at y %v, want [21.8 116.2] on a scale of +15 s:\n%s", dashed, page)
		}
		if n := len(strings.Fields(c.Polyline.Points)); n != 1 {
			t.Errorf("offset line has %d points, want 1 (the bounded report)", n)
		}
		if !strings.Contains(page, "Not drawn: 1 report without an error bound") {
			t.Errorf("the page does not say a report without a bound is left out:\n%s", page)
		}

		_, _, list := b.get("/appliances")
		row := ""
		for _, r := range strings.Split(list, "<tr>") {
			if strings.Contains(r, `href="/appliances/`+kiosk.id+`"`) {
				row = r
			}
		}
		spark := chartOf(t, row)
		dashed = dashed[:0]
		for _, l := range spark.Lines {
			if l.Class == "threshold" && l.Y1 == l.Y2 {
				dashed = append(dashed, l.Y1)
			}
		}
		if strings.Join(dashed, " ") != "4.4 23.6" {
			t.Errorf("sparkline's threshold lines at y %v, want [4.4 23.6]", dashed)
		}
	})
}

// TestAppliancePageSaysTimeAuthenticated: the appliance's page says
// whether its clock was last set only by NTS servers, as its last sync
// reported.
func TestAppliancePageSaysTimeAuthenticated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		h := newHarness(t, open(t), nil)
		h.admin()
		b := h.browser()
		b.signIn("root", adminPassword, nil, h.clock)
		kiosk := h.newAppliance()
		pairThroughConsole(t, b, kiosk, "Lobby")
		for _, tc := range []struct {
			authenticated bool
			want, not     string
		}{
			{true, "Time authenticated:", "Time not authenticated:"},
			{false, "Time not authenticated:", "Time authenticated:"},
		} {
			h.clock.Advance(time.Minute)
			kiosk.sync(&proto.ClockReport{Time: h.clock.Now(), Bound: 2 * time.Millisecond, State: "SYNCED", Authenticated: tc.authenticated})
			_, _, page := b.get("/appliances/" + kiosk.id)
			if !strings.Contains(page, tc.want) || strings.Contains(page, tc.not) {
				i := strings.Index(page, "clock-auth")
				t.Errorf("after a sync with authenticated %v the page does not say %q: %s", tc.authenticated, tc.want, page[max(i, 0):max(i, 0)+200])
			}
		}
	})
}

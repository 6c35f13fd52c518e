package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// chartGeom is a chart's geometry, in the SVG's user units: the chart
// scales to its box, so these only set its proportions; MaxPoints is the
// number of time slots samples are merged into.
type chartGeom struct {
	W, H, Left, Right, Top, Bottom, MaxPoints int
}

var (
	// pageChart is the appliance page's chart: a point per 5 min over 24 h.
	pageChart = chartGeom{W: 360, H: 150, Left: 44, Right: 354, Top: 10, Bottom: 128, MaxPoints: 288}
	// sparkChart is the Appliances list's sparkline: a point per 12 min
	// over 24 h, no labels.
	sparkChart = chartGeom{W: 120, H: 28, Left: 1, Right: 119, Top: 2, Bottom: 26, MaxPoints: 120}
)

const (
	chartHeadroom          = 1.25
	chartDefaultRange      = "24h"
	chartRangeParam        = "range"
	chartMinScale          = 10 * time.Millisecond
	chartThresholdLabelFmt = "±%s"
)

// chartRanges are the windows the appliance's page offers, by the value
// of its ?range= parameter.
var chartRanges = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// clockChart is the appliance's clock history drawn as an SVG: the
// offset as a line, its error bound as a band around it, and the warning
// threshold as dashed lines at ±threshold. Every field is plain text the
// template escapes.
type clockChart struct {
	Range     string // "24h" or "7d"
	Samples   int    // clock samples drawn
	Unbounded int    // samples left out: the clock had no error bound
	Points    int    // points on the offset line
	Line      string // the offset polyline's points
	Band      string // the bound polygon's points
	ZeroY     string
	WarnHiY   string // y of +threshold
	WarnLoY   string // y of -threshold
	Threshold string // the threshold, as "±12 s"
	Scale     string // the value at the top edge, as "+15 s"
	Left      string // the window's start, as "24 h ago"
	W, H      int
	X0, X1    int
	Y0, Y1    int
}

// bucket is the samples falling into one point's time slot.
type bucket struct {
	at     time.Time // its first sample's
	sum    time.Duration
	n      int
	hi, lo time.Duration // widest offset ± bound
	bucket int           // the slot's index in the window
}

// newClockChart draws samples (oldest first) over the window ending at
// now; samples are merged into at most g.MaxPoints points (mean
// offset, widest band). Samples without an error bound are left out. It
// draws in g's geometry.
func newClockChart(g chartGeom, samples []store.ClockSample, threshold time.Duration, rng string, now time.Time) clockChart {
	window := chartRanges[rng]
	since := now.Add(-window)
	slot := window / time.Duration(g.MaxPoints)
	c := clockChart{Range: rng, W: g.W, H: g.H, X0: g.Left, X1: g.Right, Y0: g.Top, Y1: g.Bottom}
	var bs []*bucket
	for _, s := range samples {
		if s.At.Before(since) || s.At.After(now) {
			continue
		}
		if s.BoundUnknown {
			// A clock that never synced: its offset says nothing and it
			// has no band; drawn, it would set the scale.
			c.Unbounded++
			continue
		}
		c.Samples++
		i := int(s.At.Sub(since) / slot)
		if len(bs) == 0 || bs[len(bs)-1].bucket != i {
			bs = append(bs, &bucket{at: s.At, bucket: i, hi: s.Offset + s.Bound, lo: s.Offset - s.Bound})
		}
		b := bs[len(bs)-1]
		b.sum += s.Offset
		b.n++
		b.hi, b.lo = max(b.hi, s.Offset+s.Bound), min(b.lo, s.Offset-s.Bound)
	}
	scale := max(time.Duration(float64(threshold)*chartHeadroom), chartMinScale)
	for _, b := range bs {
		scale = max(scale, b.hi, -b.lo)
	}
	x := func(t time.Time) string {
		f := float64(t.Sub(since)) / float64(window)
		return num(float64(g.Left) + f*float64(g.Right-g.Left))
	}
	y := func(d time.Duration) string {
		f := float64(d) / float64(scale) // -1..1
		return num(float64(g.Top+g.Bottom)/2 - f*float64(g.Bottom-g.Top)/2)
	}
	var line, upper, lower []string
	for _, b := range bs {
		xs := x(b.at)
		line = append(line, xs+","+y(b.sum/time.Duration(b.n)))
		upper = append(upper, xs+","+y(b.hi))
		lower = append(lower, xs+","+y(b.lo))
	}
	for i, j := 0, len(lower)-1; i < j; i, j = i+1, j-1 {
		lower[i], lower[j] = lower[j], lower[i]
	}
	c.Points = len(line)
	c.Line = strings.Join(line, " ")
	c.Band = strings.Join(append(upper, lower...), " ")
	c.ZeroY, c.WarnHiY, c.WarnLoY = y(0), y(threshold), y(-threshold)
	c.Threshold = fmt.Sprintf(chartThresholdLabelFmt, short(threshold))
	c.Scale = "+" + short(scale)
	c.Left = map[string]string{"24h": "24 h ago", "7d": "7 days ago"}[rng]
	return c
}

// num formats a coordinate with one decimal.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// short formats a duration for an axis label: "12 s", "250 ms".
func short(d time.Duration) string {
	if d >= time.Second {
		return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + " s"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'g', 3, 64) + " ms"
}

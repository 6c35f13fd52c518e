package console

import (
	"fmt"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// verifyChartDays is how many UTC days the user's verify chart covers,
// today included.
const verifyChartDays = 30

// verifyGeom is the user page's verify chart: three bars per day.
var verifyGeom = chartGeom{W: 360, H: 150, Left: 30, Right: 354, Top: 10, Bottom: 128, MaxPoints: verifyChartDays}

// verifyChart is a user's verify activity per UTC day over the last
// verifyChartDays days, drawn as an SVG bar chart: codes accepted, codes
// refused and devices locked, side by side for each day. Every field is
// plain text the template escapes.
type verifyChart struct {
	Series                       []verifySeries
	Successes, Failures, Lockout int64 // totals over the window
	Scale                        string
	From, To                     string // the first and last day, as "Nov 2"
	W, H                         int
	X0, X1, Y0, Y1               int
}

// verifySeries is one kind of outcome: a bar per day, zero-height on a
// day without any.
type verifySeries struct {
	Class, Name, Color string
	Bars               []verifyBar
}

// verifyBar is one day's bar of a series.
type verifyBar struct {
	X, Y, W, H string
	Value      int64
	Title      string // "Nov 2: 3 codes accepted"
}

// Total is the outcomes counted over the window.
func (c verifyChart) Total() int64 { return c.Successes + c.Failures + c.Lockout }

// newVerifyChart draws days (any order; other users' or days outside
// the window are ignored) over the verifyChartDays UTC days ending with
// now's.
func newVerifyChart(g chartGeom, days []store.VerifyDay, now time.Time) verifyChart {
	last := store.UTCDay(now)
	first := last.AddDate(0, 0, -(verifyChartDays - 1))
	var ok, fail, lock [verifyChartDays]int64
	c := verifyChart{W: g.W, H: g.H, X0: g.Left, X1: g.Right, Y0: g.Top, Y1: g.Bottom,
		From: first.Format("Jan 2"), To: last.Format("Jan 2")}
	for _, d := range days {
		i := int(store.UTCDay(d.Day).Sub(first) / (24 * time.Hour))
		if i < 0 || i >= verifyChartDays {
			continue
		}
		ok[i] += d.Successes
		fail[i] += d.Failures
		lock[i] += d.Lockouts
	}
	scale := int64(1)
	for i := range verifyChartDays {
		scale = max(scale, ok[i], fail[i], lock[i])
		c.Successes += ok[i]
		c.Failures += fail[i]
		c.Lockout += lock[i]
	}
	c.Scale = strconv.FormatInt(scale, 10)
	slot := float64(g.Right-g.Left) / verifyChartDays
	barW := slot * 0.8 / 3
	pad := slot * 0.1
	series := []struct {
		class, name, color, what string
		v                        *[verifyChartDays]int64
	}{
		{"ok", "Accepted", "#2e8b57", "codes accepted", &ok},
		{"fail", "Refused", "#c0392b", "codes refused", &fail},
		{"lock", "Locked", "#7d3c98", "devices locked", &lock},
	}
	for k, s := range series {
		vs := verifySeries{Class: s.class, Name: s.name, Color: s.color}
		for i, v := range s.v {
			h := float64(v) / float64(scale) * float64(g.Bottom-g.Top)
			vs.Bars = append(vs.Bars, verifyBar{
				X:     num(float64(g.Left) + float64(i)*slot + pad + float64(k)*barW),
				Y:     num(float64(g.Bottom) - h),
				W:     num(barW),
				H:     num(h),
				Value: v,
				Title: fmt.Sprintf("%s: %d %s", first.AddDate(0, 0, i).Format("Jan 2"), v, s.what),
			})
		}
		c.Series = append(c.Series, vs)
	}
	return c
}

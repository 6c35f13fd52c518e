package clock

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Sample is one measurement of one server: the best reply of a burst.
type Sample struct {
	// Server names the server as configured.
	Server string
	// Local is the timebase reading at the middle of the exchange.
	Local time.Duration
	// Offset is UTC minus the uncorrected clock (Epoch + Local).
	Offset time.Duration
	// Delay is the round-trip time.
	Delay time.Duration
	// RootDelay and RootDispersion are the server's distance to its
	// reference, as it reports them.
	RootDelay, RootDispersion time.Duration
	// Precision is the server's clock precision.
	Precision time.Duration
}

// distance returns λ of the sample at the moment it was taken: the
// half-width of the interval that must contain the true offset.
func (s Sample) distance() time.Duration {
	return s.Delay/2 + s.RootDelay/2 + s.RootDispersion + s.Precision + localPrecision
}

// localPrecision covers reading the timebase and rounding.
const localPrecision = time.Microsecond

// Limits of the discipline.
const (
	// maxFrequency is the largest frequency error accepted, 500 ppm.
	maxFrequency = 500e-6
	// unknownFrequencyError is the frequency uncertainty assumed until an
	// estimate exists: 100 ppm.
	unknownFrequencyError = 100e-6
	// maxPoints is the most samples in the regression.
	maxPoints = 64
	// syncedBound is the largest bound shown as Synced.
	syncedBound = time.Second
	// anchorSpacing and anchorSpan shape the long-term frequency: the
	// estimated offset is remembered every 10 min for 48 h, and the
	// frequency over the last full day (24 h, one diurnal cycle) is used for
	// long holdover, as chrony's fallback drift does.
	anchorSpacing = 600.0
	anchorSpan    = 48 * 3600.0
	longWindow    = 24 * 3600.0
	minLongWindow = 3600.0
	// blendTime is how fast holdover prediction moves from the short-term
	// to the long-term frequency.
	blendTime = 3600.0
	// unbounded is the bound of a reading that has none.
	unbounded = time.Duration(math.MaxInt64)
)

// DisciplineConfig configures the pure discipline core.
type DisciplineConfig struct {
	// Epoch is the wall time that timebase zero stands for before any
	// correction; offsets are measured against Epoch + local.
	Epoch time.Time
	// Servers is how many servers are configured; with two or more, at
	// least two must agree.
	Servers int
	// MaxClockError is the extra frequency error in ppm allowed for while
	// the clock is not updated. Zero means 5.
	MaxClockError float64
	// HoldoverLimit is the largest bound shown as Holdover. Zero means 5 s.
	HoldoverLimit time.Duration
	// NotBefore is a lower bound for UTC (the last good time saved before a
	// restart); servers claiming earlier are not believed.
	NotBefore time.Time
	// WarmFrequency is a frequency estimate in ppm to start from (from the
	// drift file). It is used for prediction only, not in the bound.
	WarmFrequency float64
}

// serverState is what the discipline remembers of one server.
type serverState struct {
	last        Sample
	have        bool
	selected    bool
	falseticker bool
}

// Discipline is the pure clock discipline: feed it samples with Update, ask
// it for a Reading at a timebase value. It never reads a clock itself and is
// not safe for concurrent use.
type Discipline struct {
	cfg     DisciplineConfig
	mce     float64 // max clock error, dimensionless
	servers map[string]*serverState
	poll    time.Duration

	// Phase reference: x = local - refLocal, y = offset - refOffset, seconds.
	haveRef   bool
	refLocal  time.Duration
	refOffset time.Duration

	pts     []point
	fit     fit
	haveFit bool // at least 3 points: a frequency estimate exists

	// Prior frequency knowledge used while fewer than 3 points exist.
	priorFreq  float64
	priorSkew  float64
	havePrior  bool // priorSkew may be trusted for the bound
	anchors    []point
	longFreq   float64
	haveLong   bool
	lastX      float64 // x of the last update
	lastEst    float64 // estimated offset at lastX
	lastBound  float64 // bound at lastX, seconds
	synced     bool    // updated since start or the last reset
	untrusted  string  // reason the clock is untrusted until the next update
	lastReason string  // why the last round did not update
	updates    int
	guess      time.Duration // last estimated offset, for unsynced readings
}

// NewDiscipline returns a discipline that has heard nothing yet.
func NewDiscipline(cfg DisciplineConfig) *Discipline {
	if cfg.MaxClockError == 0 {
		cfg.MaxClockError = DefaultMaxClockError
	}
	if cfg.HoldoverLimit == 0 {
		cfg.HoldoverLimit = DefaultHoldoverLimit
	}
	if cfg.Servers < 1 {
		cfg.Servers = 1
	}
	d := &Discipline{
		cfg:        cfg,
		mce:        cfg.MaxClockError * 1e-6,
		servers:    make(map[string]*serverState),
		poll:       DefaultMinPoll,
		lastReason: "no NTP reply yet",
	}
	if f := cfg.WarmFrequency; !math.IsNaN(f) && math.Abs(f) <= maxFrequency*1e6 {
		d.priorFreq = -f * 1e-6
	}
	return d
}

// SetPollInterval tells the discipline how often servers are polled; it
// decides how long a sample stays usable and when an update is recent.
func (d *Discipline) SetPollInterval(p time.Duration) {
	if p > 0 {
		d.poll = p
	}
}

// sampleMaxAge is how long a server's last sample takes part in selection.
func (d *Discipline) sampleMaxAge() time.Duration { return 4*d.poll + 30*time.Second }

// recent is how long after an update the clock stays Synced.
func (d *Discipline) recent() float64 { return (2*d.poll + 30*time.Second).Seconds() }

// shortFreq returns the short-term slope of offset against local time.
func (d *Discipline) shortFreq() float64 {
	if d.haveFit {
		return d.fit.slope
	}
	return d.priorFreq
}

// freqError returns the frequency uncertainty used in the bound, without
// the max clock error.
func (d *Discipline) freqError() float64 {
	switch {
	case d.haveFit:
		e := d.fit.skew()
		if d.haveLong {
			e += math.Abs(d.fit.slope - d.longFreq)
		}
		return e
	case d.havePrior:
		return d.priorSkew
	default:
		return unknownFrequencyError
	}
}

// predict returns the estimated offset at x (seconds from the reference).
func (d *Discipline) predict(x float64) float64 {
	dt := x - d.lastX
	fs := d.shortFreq()
	if !d.haveLong || dt <= 0 {
		return d.lastEst + fs*dt
	}
	return d.lastEst + d.longFreq*dt + (fs-d.longFreq)*blendTime*(1-math.Exp(-dt/blendTime))
}

// boundAt returns the error bound at x in seconds.
func (d *Discipline) boundAt(x float64) float64 {
	dt := math.Abs(x - d.lastX)
	return d.lastBound + (d.freqError()+d.mce)*dt
}

func (d *Discipline) x(local time.Duration) float64 { return (local - d.refLocal).Seconds() }

// Reading returns what the clock says at timebase value local.
func (d *Discipline) Reading(local time.Duration) Reading {
	r := Reading{Frequency: -d.shortFreq() * 1e6, Bound: unbounded}
	base := d.cfg.Epoch.Add(local)
	if !d.synced {
		r.Time = base.Add(d.guess)
		r.State = Unsynced
		r.Reason = d.lastReason
		if d.untrusted != "" {
			r.State, r.Reason = Untrusted, d.untrusted
		}
		return r
	}
	x := d.x(local)
	r.Time = base.Add(d.refOffset).Add(seconds(d.predict(x)))
	b := d.boundAt(x)
	r.Bound = seconds(b)
	switch {
	case d.untrusted != "":
		r.State, r.Reason = Untrusted, d.untrusted
	case r.Bound > d.cfg.HoldoverLimit:
		r.State, r.Reason = Untrusted, "error bound too large"
	case x-d.lastX <= d.recent() && r.Bound <= syncedBound:
		r.State = Synced
	default:
		r.State, r.Reason = Holdover, d.lastReason
		if r.Reason == "" {
			r.Reason = "no recent update"
		}
	}
	return r
}

// seconds converts seconds to a Duration, saturating.
func seconds(s float64) time.Duration {
	ns := s * 1e9
	switch {
	case ns >= math.MaxInt64 || math.IsInf(ns, 1):
		return unbounded
	case ns <= math.MinInt64:
		return time.Duration(math.MinInt64)
	}
	return time.Duration(math.Round(ns))
}

// Outcome says what one Update did.
type Outcome struct {
	// Updated reports whether the clock took a new measurement.
	Updated bool
	// Selected and Falsetickers name the servers that agreed and those
	// whose intervals missed the agreed region.
	Selected, Falsetickers []string
	// Offset and Distance are the combined measurement (UTC minus the
	// clock's reading before the update) and its λ, when Updated.
	Offset, Distance time.Duration
	// Reason says why the clock was not updated.
	Reason string
}

// Update feeds the samples of one polling round, taken up to timebase value
// now, and updates the clock if a majority of servers agree.
func (d *Discipline) Update(now time.Duration, fresh []Sample) Outcome {
	freshSet := make(map[string]bool, len(fresh))
	for _, s := range fresh {
		st := d.servers[s.Server]
		if st == nil {
			st = &serverState{}
			d.servers[s.Server] = st
		}
		st.last, st.have = s, true
		freshSet[s.Server] = true
	}
	if !d.haveRef && len(fresh) > 0 {
		// The first sample sets the reference so offsets stay small
		// numbers in float64 even when Epoch is years off.
		d.haveRef, d.refLocal, d.refOffset = true, fresh[0].Local, fresh[0].Offset
	}
	if !d.haveRef {
		d.lastReason = "no NTP reply yet"
		return Outcome{Reason: d.lastReason}
	}

	// Project each usable sample to now.
	names := make([]string, 0, len(d.servers))
	for name, st := range d.servers {
		st.selected, st.falseticker = false, false
		if st.have && now-st.last.Local <= d.sampleMaxAge() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	rate := d.freqError() + d.mce
	xNow := d.x(now)
	fs := d.shortFreq()
	iv := make([]interval, len(names))
	for i, name := range names {
		s := d.servers[name].last
		age := (now - s.Local).Seconds()
		y := (s.Offset - d.refOffset).Seconds() + fs*age
		iv[i] = interval{mid: y, half: s.distance().Seconds() + rate*math.Abs(age)}
	}
	need := 1
	if d.cfg.Servers >= 2 {
		need = 2
	}
	if len(iv) < need {
		if len(iv) == 0 {
			d.lastReason = "no reply from any server"
		} else {
			d.lastReason = "too few servers reachable"
		}
		if !d.synced && d.untrusted == "" && d.updates == 0 && len(d.servers) > 0 {
			d.lastReason = "no agreeing servers"
		}
		return Outcome{Reason: d.lastReason}
	}
	sel := intersect(iv)
	var out Outcome
	for i, name := range names {
		st := d.servers[name]
		st.selected = sel.survivor[i]
		st.falseticker = !sel.survivor[i]
		if st.selected {
			out.Selected = append(out.Selected, name)
		} else {
			out.Falsetickers = append(out.Falsetickers, name)
		}
	}
	if !agreed(sel.count, len(iv), d.cfg.Servers) {
		for _, name := range names {
			d.servers[name].selected, d.servers[name].falseticker = false, false
		}
		out.Selected, out.Falsetickers = nil, nil
		d.lastReason = "no agreeing servers"
		if d.synced {
			d.untrusted = d.lastReason
		}
		out.Reason = d.lastReason
		return out
	}

	// Combine the fresh survivors weighted by 1/λ². Stale samples vote but
	// are not counted twice.
	var sw, swy, swl float64
	for i, name := range names {
		if !sel.survivor[i] || !freshSet[name] {
			continue
		}
		w := 1 / (iv[i].half * iv[i].half)
		sw += w
		swy += w * iv[i].mid
		swl += w * iv[i].half
	}
	if sw == 0 {
		d.lastReason = "no fresh sample from an agreeing server"
		out.Reason = d.lastReason
		return out
	}
	y, lam := swy/sw, swl/sw
	out.Offset = seconds(y) + d.refOffset
	out.Distance = seconds(lam)

	if !d.cfg.NotBefore.IsZero() {
		latest := d.cfg.Epoch.Add(now).Add(d.refOffset).Add(seconds(y + lam))
		if latest.Before(d.cfg.NotBefore) {
			d.reset("servers report a time before the last known good time", false)
			out.Reason = d.untrusted
			return out
		}
	}
	if d.synced {
		pred, b := d.predict(xNow), d.boundAt(xNow)
		if math.Abs(y-pred) > b+lam {
			// The measurement and the prediction cannot both be right: the
			// timebase was disturbed. Start over, frequency unknown.
			d.reset(fmt.Sprintf("measurement contradicts prediction by %v", seconds(y-pred)), false)
			out.Reason = d.untrusted
			return out
		}
	}
	d.add(point{x: xNow, y: y, w: 1 / (lam * lam)}, lam)
	out.Updated = true
	d.lastReason = ""
	return out
}

// add puts one combined measurement into the regression and moves the
// clock's estimate.
func (d *Discipline) add(p point, lam float64) {
	d.pts = append(d.pts, p)
	if len(d.pts) > maxPoints {
		d.pts = d.pts[len(d.pts)-maxPoints:]
	}
	if len(d.pts) >= 3 {
		if s := bestStart(d.pts); s > 0 {
			d.pts = d.pts[s:]
		}
		d.fit = regress(d.pts)
		d.haveFit = true
		if math.Abs(d.fit.slope) > maxFrequency {
			d.fit.slope = math.Copysign(maxFrequency, d.fit.slope)
		}
	}
	est, resid := p.y, 0.0
	if d.haveFit {
		est = d.fit.at(p.x)
		resid = max(math.Abs(p.y-est), d.fit.sigma())
	}
	d.lastX, d.lastEst, d.lastBound = p.x, est, lam+resid
	d.guess = d.refOffset + seconds(est)
	d.synced = true
	d.untrusted = ""
	d.updates++
	d.addAnchor(point{x: p.x, y: est})
}

// addAnchor remembers the estimated offset for the long-term frequency.
func (d *Discipline) addAnchor(a point) {
	if n := len(d.anchors); n > 0 && a.x-d.anchors[n-1].x < anchorSpacing {
		return
	}
	d.anchors = append(d.anchors, a)
	for len(d.anchors) > 2 && a.x-d.anchors[1].x >= anchorSpan {
		d.anchors = d.anchors[1:]
	}
	first := d.anchors[0]
	span := a.x - first.x
	if span < minLongWindow {
		d.haveLong = false
		return
	}
	w := min(span, longWindow)
	start := a.x - w
	ys := first.y
	for i := 1; i < len(d.anchors); i++ {
		p, q := d.anchors[i-1], d.anchors[i]
		if q.x >= start {
			ys = p.y + (q.y-p.y)*(start-p.x)/(q.x-p.x)
			break
		}
	}
	d.longFreq = (a.y - ys) / w
	d.haveLong = true
}

// reset forgets the phase after the timebase was disturbed. keepFreq keeps
// the frequency estimate and its skew (after a suspend the oscillator is
// the same); otherwise only the frequency value is kept, unvouched.
func (d *Discipline) reset(reason string, keepFreq bool) {
	if d.haveFit {
		d.priorFreq = d.fit.slope
		d.priorSkew = d.fit.skew()
		d.havePrior = keepFreq && !math.IsInf(d.priorSkew, 0) && !math.IsNaN(d.priorSkew)
	} else if !keepFreq {
		d.havePrior = false
	}
	d.haveRef, d.haveFit, d.synced = false, false, false
	d.pts, d.anchors, d.haveLong = nil, nil, false
	for _, st := range d.servers {
		st.have, st.selected, st.falseticker = false, false, false
	}
	d.untrusted = reason
	d.lastReason = reason
}

// Suspended tells the discipline the machine was suspended: the timebase
// stopped while UTC went on, so the phase is lost until the next update.
func (d *Discipline) Suspended() {
	d.reset("suspend detected", true)
}

// Frequency returns the frequency estimate and its skew in ppm, and whether
// an estimate from measurements exists.
func (d *Discipline) Frequency() (freq, skew float64, ok bool) {
	if !d.haveFit {
		return -d.priorFreq * 1e6, 0, false
	}
	return -d.fit.slope * 1e6, d.fit.skew() * 1e6, true
}

// ServerState reports what the last selection decided about a server.
func (d *Discipline) ServerState(name string) (selected, falseticker bool) {
	if st := d.servers[name]; st != nil {
		return st.selected, st.falseticker
	}
	return false, false
}

// estimate returns the clock's offset (UTC minus Epoch+local) at local:
// the prediction when synced, else the last estimate.
func (d *Discipline) estimate(local time.Duration) time.Duration {
	if !d.synced {
		return d.guess
	}
	return d.refOffset + seconds(d.predict(d.x(local)))
}

// Samples returns how many measurements the regression holds.
func (d *Discipline) Samples() int { return len(d.pts) }

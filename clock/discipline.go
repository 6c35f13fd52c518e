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
	latest      Sample // the last sample, which votes in the selection
	last        Sample // the last sample the filter accepted
	have        bool
	reg         register
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
	priorFreq float64
	priorSkew float64
	havePrior bool // priorSkew may be trusted for the bound
	anchors   []point
	longFreq  float64
	haveLong  bool
	lastX     float64 // x of the last update
	lastEst   float64 // estimated offset at lastX
	lastBound float64 // bound at lastX, seconds
	lastPath  float64 // the common part of lastBound (see spread)
	// The reading is slewed, not stepped, to each new estimate: it shows
	// predict(x) + the correction, which shrinks linearly from corr at
	// lastX to zero at lastX+corrTime. The bound covers it.
	corr       float64
	corrTime   float64
	synced     bool   // updated since start or the last reset
	untrusted  string // reason the clock is untrusted until the next update
	lastReason string // why the last round did not update
	updates    int
	guess      time.Duration // last estimated offset, for unsynced readings

	// A start from the RTC, until the first update: the offset and its
	// bound at startLocal.
	haveStart   bool
	startLocal  time.Duration
	startOffset time.Duration
	startBound  float64
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

// correction returns what the reading still differs from the prediction
// at x while it slews to the last estimate.
func (d *Discipline) correction(x float64) float64 {
	dt := x - d.lastX
	if d.corr == 0 || dt >= d.corrTime {
		return 0
	}
	if dt <= 0 {
		return d.corr
	}
	return d.corr * (1 - dt/d.corrTime)
}

// display returns the offset the reading shows at x: the prediction plus
// what is left of the slew.
func (d *Discipline) display(x float64) float64 { return d.predict(x) + d.correction(x) }

// boundAt returns the error bound of the prediction at x in seconds.
func (d *Discipline) boundAt(x float64) float64 {
	dt := math.Abs(x - d.lastX)
	return d.lastBound + (d.freqError()+d.mce)*dt
}

// displayBound returns the error bound of what the reading shows at x: the
// prediction's, plus the slew still to come.
func (d *Discipline) displayBound(x float64) float64 {
	return d.boundAt(x) + math.Abs(d.correction(x))
}

// BoundTerms splits the error bound of a reading into its parts, in
// seconds; they add up to the bound. The clock bench reports them, to show
// what a bound is made of.
type BoundTerms struct {
	// Path is the part of the last update's distance that every sample
	// over the same paths shares: half the minimum round trip, the
	// servers' root distance, the precisions. It bounds the paths' unknown
	// asymmetry, which no averaging shrinks.
	Path float64 `json:"path_s"`
	// Estimate is the last estimate's random error: the regression's
	// error at that point and how far the point strayed from the line.
	Estimate float64 `json:"estimate_s"`
	// Frequency is what the frequency's uncertainty (the regression's
	// skew, and the short- and long-term frequencies' difference) has
	// added since the last update.
	Frequency float64 `json:"frequency_s"`
	// Drift is what the allowance for an unmeasured frequency change
	// (max_clock_error_ppm) has added since the last update.
	Drift float64 `json:"drift_s"`
	// Slew is the part of the last correction the reading has still to
	// slew.
	Slew float64 `json:"slew_s"`
}

// boundTerms returns the parts of displayBound at x.
func (d *Discipline) boundTerms(x float64) BoundTerms {
	dt := math.Abs(x - d.lastX)
	return BoundTerms{
		Path:      d.lastPath,
		Estimate:  d.lastBound - d.lastPath,
		Frequency: d.freqError() * dt,
		Drift:     d.mce * dt,
		Slew:      math.Abs(d.correction(x)),
	}
}

// BoundTerms returns the parts of the error bound of a reading at
// timebase value local; all zero while the clock is not synced.
func (d *Discipline) BoundTerms(local time.Duration) BoundTerms {
	if !d.synced {
		return BoundTerms{}
	}
	return d.boundTerms(d.x(local))
}

func (d *Discipline) x(local time.Duration) float64 { return (local - d.refLocal).Seconds() }

// Reading returns what the clock says at timebase value local.
func (d *Discipline) Reading(local time.Duration) Reading {
	r := Reading{Frequency: -d.shortFreq() * 1e6, Bound: unbounded}
	base := d.cfg.Epoch.Add(local)
	if !d.synced && d.haveStart && d.untrusted == "" {
		return d.startReading(local)
	}
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
	r.Time = base.Add(d.refOffset).Add(seconds(d.display(x)))
	r.Bound = seconds(d.displayBound(x))
	return d.judge(r, x)
}

// StartFrom begins an unsynced clock from a time known by other means (the
// RTC): at timebase value local UTC was t within bound. Until the first
// update the reading runs on from it, its bound growing at the unknown
// frequency error plus the max clock error; it is trusted (Holdover) while
// that bound is within the holdover limit. An update, a reset or a suspend
// ends it.
func (d *Discipline) StartFrom(local time.Duration, t time.Time, bound time.Duration) {
	if d.synced {
		return
	}
	d.haveStart, d.startLocal, d.startBound = true, local, bound.Seconds()
	d.startOffset = t.Sub(d.cfg.Epoch.Add(local))
	d.guess = d.startOffset
	d.lastReason = "started from the RTC; no NTP reply yet"
}

// startReading is the reading of a clock started from the RTC.
func (d *Discipline) startReading(local time.Duration) Reading {
	dt := (local - d.startLocal).Seconds()
	r := Reading{
		Frequency: -d.shortFreq() * 1e6,
		Time:      d.cfg.Epoch.Add(local).Add(d.startOffset).Add(seconds(d.shortFreq() * dt)),
		Bound:     seconds(d.startBound + (d.freqError()+d.mce)*math.Abs(dt)),
	}
	switch {
	case r.Bound > d.cfg.HoldoverLimit:
		r.State, r.Reason = Untrusted, "error bound too large (started from the RTC)"
	default:
		r.State, r.Reason = Holdover, d.lastReason
	}
	return r
}

// judge sets a synced reading's state from its bound and age.
func (d *Discipline) judge(r Reading, x float64) Reading {
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
	// Filtered names the servers whose fresh sample the clock filter held
	// back (a delay spike).
	Filtered []string
}

// Update feeds the samples of one polling round, taken up to timebase value
// now, and updates the clock if a majority of servers agree. The steps:
// the clock filter takes or holds back each sample; the servers' last
// accepted samples, projected to now, go through the selection; the fresh
// survivors are combined; the result is checked against what the clock
// already knows and put into the regression.
func (d *Discipline) Update(now time.Duration, fresh []Sample) Outcome {
	accepted := d.record(fresh)
	var filtered []string
	for _, s := range fresh {
		if !accepted[s.Server] {
			filtered = append(filtered, s.Server)
		}
	}
	if !d.haveRef {
		d.lastReason = "no NTP reply yet"
		return Outcome{Reason: d.lastReason}
	}
	names, iv := d.candidates(now)
	if reason := d.quorum(len(iv)); reason != "" {
		d.lastReason = reason
		return Outcome{Reason: reason, Filtered: filtered}
	}
	sel, out := d.selectServers(names, iv)
	out.Filtered = filtered
	if !agreed(sel.count, len(iv), d.cfg.Servers) {
		out := d.disagreement(names)
		out.Filtered = filtered
		return out
	}
	m, ok := d.combine(now, names, iv, sel, accepted)
	if !ok {
		d.lastReason = "no fresh sample from an agreeing server"
		if len(fresh) > 0 && len(accepted) == 0 {
			d.lastReason = "samples held back by the delay filter"
		}
		out.Reason = d.lastReason
		return out
	}
	out.Offset = seconds(m.y) + d.refOffset
	out.Distance = seconds(m.common + m.random)
	if reason := d.contradiction(now, m); reason != "" {
		d.reset(reason, false)
		out.Reason = d.untrusted
		return out
	}
	d.add(m)
	out.Updated = true
	d.lastReason = ""
	return out
}

// record passes the fresh samples through each server's clock filter and
// returns the servers whose sample it accepted. The first sample ever
// sets the reference, so offsets stay small numbers in float64 even when
// Epoch is years off.
func (d *Discipline) record(fresh []Sample) map[string]bool {
	accepted := make(map[string]bool, len(fresh))
	for _, s := range fresh {
		st := d.servers[s.Server]
		if st == nil {
			st = &serverState{}
			d.servers[s.Server] = st
		}
		st.latest, st.have = s, true
		if st.reg.push(s) {
			st.last = s
			accepted[s.Server] = true
		}
	}
	if !d.haveRef && len(fresh) > 0 {
		d.haveRef, d.refLocal, d.refOffset = true, fresh[0].Local, fresh[0].Offset
	}
	return accepted
}

// candidates returns the servers whose last sample is recent enough,
// sorted, and their intervals projected to now. A sample the filter held
// back still votes: its interval is honest, only too wide to be combined.
func (d *Discipline) candidates(now time.Duration) ([]string, []interval) {
	names := make([]string, 0, len(d.servers))
	for name, st := range d.servers {
		st.selected, st.falseticker = false, false
		if st.have && now-st.latest.Local <= d.sampleMaxAge() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	rate := d.freqError() + d.mce
	fs := d.shortFreq()
	iv := make([]interval, len(names))
	for i, name := range names {
		s := d.servers[name].latest
		age := (now - s.Local).Seconds()
		y := (s.Offset - d.refOffset).Seconds() + fs*age
		iv[i] = interval{mid: y, half: s.distance().Seconds() + rate*math.Abs(age)}
	}
	return names, iv
}

// quorum returns why usable servers are too few to vote, or "".
func (d *Discipline) quorum(usable int) string {
	need := 1
	if d.cfg.Servers >= 2 {
		need = 2
	}
	switch {
	case usable >= need:
		return ""
	case !d.synced && d.untrusted == "" && d.updates == 0 && len(d.servers) > 0:
		return "no agreeing servers"
	case usable == 0:
		return "no reply from any server"
	default:
		return "too few servers reachable"
	}
}

// selectServers runs the intersection and marks each server selected or a
// falseticker.
func (d *Discipline) selectServers(names []string, iv []interval) (selection, Outcome) {
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
	return sel, out
}

// disagreement records that no majority agreed: nobody is selected or
// named, and a synced clock becomes untrusted.
func (d *Discipline) disagreement(names []string) Outcome {
	for _, name := range names {
		d.servers[name].selected, d.servers[name].falseticker = false, false
	}
	d.lastReason = "no agreeing servers"
	if d.synced {
		d.untrusted = d.lastReason
	}
	return Outcome{Reason: d.lastReason}
}

// measurement is one round's combined offset: y (seconds from the
// reference) at x, with the two parts of its distance (see spread) and
// its weight in the regression.
type measurement struct {
	x, y, w        float64
	common, random float64
}

// combine merges the fresh accepted survivors, each weighted by 1/λ² for
// its whole distance λ. Stale samples vote but are not counted twice.
//
// The weights are not 1/r² for the random part r alone, though r is what
// differs from sample to sample: r of a sample at the register's minimum
// delay is only the floor, a few µs on a LAN, while its true error is half
// the unknown excess of that minimum over the path's, tens of µs. Such
// weights trusted a few samples a hundred times more than the rest; the
// regression then rested on a handful of points, and in the clock bench
// the worst RMS error over 50 seeds rose by half (lan 164 → 249 µs, kod
// 161 → 402 µs) and on the jittery path settled RMS was twice as large.
// Weights by λ differ by a few times at most, as chrony's do.
func (d *Discipline) combine(now time.Duration, names []string, iv []interval, sel selection, accepted map[string]bool) (measurement, bool) {
	rate := d.freqError() + d.mce
	var sw, swy, swc, swr float64
	for i, name := range names {
		if !sel.survivor[i] || !accepted[name] {
			continue
		}
		st := d.servers[name]
		common, random := spread(st.last, st.reg.minDelay(), len(st.reg.samples))
		random += rate * math.Abs((now - st.last.Local).Seconds())
		w := 1 / (iv[i].half * iv[i].half)
		sw += w
		swy += w * iv[i].mid
		swc += w * common
		swr += w * random
	}
	if sw == 0 {
		return measurement{}, false
	}
	return measurement{x: d.x(now), y: swy / sw, w: sw, common: swc / sw, random: swr / sw}, true
}

// contradiction returns why the measurement cannot be believed, or "": the
// servers claim a time before the last known good one, or the measurement
// and the prediction cannot both be right (the timebase was disturbed).
func (d *Discipline) contradiction(now time.Duration, m measurement) string {
	lam := m.common + m.random
	if !d.cfg.NotBefore.IsZero() {
		latest := d.cfg.Epoch.Add(now).Add(d.refOffset).Add(seconds(m.y + lam))
		if latest.Before(d.cfg.NotBefore) {
			return "servers report a time before the last known good time"
		}
	}
	if d.synced {
		pred, b := d.predict(m.x), d.boundAt(m.x)
		if math.Abs(m.y-pred) > b+lam {
			return fmt.Sprintf("measurement contradicts prediction by %v", seconds(m.y-pred))
		}
	}
	return ""
}

// Slewing: a new estimate within maxSlewed of what the reading shows is
// reached by changing the reading's rate, by at most maxSlewRate. A
// correction within the new estimate's random error (noise) is spread over
// the polling interval, or maxSlewTime if shorter; a larger one is news
// (the estimate has learned something) and is spread over a share of that
// time, the ratio of the random error to the correction, so the reading
// is not held on a value known to be worse for a minute. A difference
// beyond maxSlewed (the first update, or a clock far off) is stepped, and
// so is one beyond the new measurement's distance while the regression
// has no frequency yet.
const (
	maxSlewRate = 500e-6
	maxSlewed   = 0.1
	maxSlewTime = 64.0
)

// add puts one combined measurement into the regression and moves the
// clock's estimate, slewing the reading to it.
func (d *Discipline) add(m measurement) {
	shown, wasSynced, hadFit := d.display(m.x), d.synced, d.haveFit
	d.pts = append(d.pts, point{x: m.x, y: m.y, w: m.w, r: m.random})
	if len(d.pts) > maxPoints {
		d.pts = d.pts[len(d.pts)-maxPoints:]
	}
	if len(d.pts) >= 3 {
		if s := bestStart(d.pts); s > 0 {
			d.pts = d.pts[s:]
		}
		d.fit = regress(d.pts)
		// The runs test misses a frequency that turns steadily (a
		// temperature swing): a line through a parabola leaves three runs.
		// The newest point shows it, lying off the line by more than the
		// points' distances allow; old points go until it does not.
		for len(d.pts) > minRegressionPoints && strays(m, d.fit) {
			d.pts = d.pts[min(max(1, len(d.pts)/4), len(d.pts)-minRegressionPoints):]
			d.fit = regress(d.pts)
		}
		d.haveFit = true
		if math.Abs(d.fit.slope) > maxFrequency {
			d.fit.slope = math.Copysign(maxFrequency, d.fit.slope)
		}
	}
	est, random := m.y, m.random
	if d.haveFit {
		// The fitted line is off at m.x by its points' random errors, and
		// by what no line can follow (the frequency moving), which shows as
		// the new point straying from the line: that is counted whole,
		// since the point alone cannot tell which of the two it is.
		est = d.fit.at(m.x)
		random = d.fit.randomError(m.x) + math.Abs(m.y-est)
	}
	d.corr, d.corrTime = 0, 0
	// Until the regression has a frequency, a reading that the new
	// measurement shows wrong by more than its distance has drifted at the
	// oscillator's unknown frequency: it is stepped (chrony steps its
	// first updates too), since a slew would hold it off for seconds more.
	if c := shown - est; wasSynced && math.Abs(c) <= maxSlewed && (hadFit || math.Abs(c) <= m.common+m.random) {
		d.corr, d.corrTime = c, slewTime(c, random, d.poll.Seconds())
	}
	d.lastX, d.lastEst, d.lastBound, d.lastPath = m.x, est, m.common+random, m.common
	d.guess = d.refOffset + seconds(est)
	d.synced = true
	d.haveStart = false
	d.untrusted = ""
	d.updates++
	d.addAnchor(point{x: m.x, y: est})
}

// strays reports whether the newest measurement m lies off the line f by
// more than strayFactor times what its own random error and the line's
// (as the points' random parts claim it) allow: the frequency has moved
// faster than the runs test noticed.
func strays(m measurement, f fit) bool {
	return math.Abs(m.y-f.at(m.x)) > strayFactor*(m.random+f.claimedError(m.x))
}

// strayFactor is how many times its random error the newest point may lie
// off the line before old points are dropped.
const strayFactor = 2

// slewTime returns how long a correction c is spread over, given the new
// estimate's random error and the polling interval, in seconds.
func slewTime(c, random, poll float64) float64 {
	span := min(poll, maxSlewTime)
	if a := math.Abs(c); a > random {
		span *= random / a
	}
	return max(math.Abs(c)/maxSlewRate, span)
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
	d.corr, d.corrTime = 0, 0
	for _, st := range d.servers {
		st.have, st.selected, st.falseticker = false, false, false
	}
	d.haveStart = false
	d.untrusted = reason
	d.lastReason = reason
}

// Suspended tells the discipline the machine was suspended: the timebase
// stopped while UTC went on, so the phase is lost until the next update.
func (d *Discipline) Suspended() {
	d.reset("suspend detected", true)
}

// steadyShare: the frequency's uncertainty may move the reading by at most
// this share of the bound over a polling interval before it is raised.
const steadyShare = 8

// steadyFor reports whether the frequency is known well enough to poll
// every p: over p its uncertainty moves the reading by at most an eighth
// of the bound at the last update. A noisy path keeps short polls until
// the regression has the points to pin the frequency down.
func (d *Discipline) steadyFor(p time.Duration) bool {
	return d.haveFit && d.fit.skew()*p.Seconds() <= d.lastBound/steadyShare
}

// steadyPoll returns the longest polling interval over which the
// frequency's uncertainty moves the reading by at most an eighth of the
// bound at the last update (as steadyFor), or by acquireDrift if that is
// more: less is nothing a code or its user could notice. It is 0 while
// there is no fitted frequency.
func (d *Discipline) steadyPoll() time.Duration {
	if !d.haveFit {
		return 0
	}
	// A skew of 0 gives +Inf, capped like any long interval.
	return seconds(min(max(d.lastBound/steadyShare, acquireDrift)/d.fit.skew(), 1e6))
}

// acquireDrift is the drift between updates that steadyPoll allows
// whatever the bound: below it early rounds cost the server queries for
// nothing (on a LAN the bound is a few hundred µs).
const acquireDrift = 250e-6

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
	return d.refOffset + seconds(d.display(d.x(local)))
}

// Samples returns how many measurements the regression holds.
func (d *Discipline) Samples() int { return len(d.pts) }

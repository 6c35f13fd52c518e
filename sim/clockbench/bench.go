// Package clockbench runs the disciplined clock against simulated NTP
// servers and a simulated oscillator in virtual time and measures it: time
// to SYNCED, error once synced, bound violations and holdover error, next
// to two baselines (a naive SNTP client that steps to every reply, and a
// clock left free-running after its first reply).
package clockbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/beevik/ntp"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/osc"
)

// Config chooses a bench run.
type Config struct {
	// Scenario is one of Scenarios().
	Scenario string
	// Seed makes the run repeatable.
	Seed uint64
	// PPM and Wander override the scenario's oscillator when not nil.
	PPM, Wander *float64
	// Hours of synchronised running before the servers go away for the
	// 24 h holdover; zero means the scenario's default.
	Hours float64
	// Step is how often the clock is read; zero means 1 s.
	Step time.Duration
	// NTS runs the clock over NTS: every simulated server also speaks
	// NTS-KE (certificates from a CA made for the run) and authenticates
	// its replies, and the clock polls them as nts:// servers. The
	// baselines stay on plain NTP.
	NTS bool
}

// Figures are the measurements of one clock in a run. Errors are in
// seconds.
type Figures struct {
	// TimeToSynced is the virtual time from start to the first SYNCED
	// reading (for a baseline: to its first reply); -1 if never.
	TimeToSynced float64 `json:"time_to_synced_s"`
	// MaxAbsError and RMSError are over readings from then until the last
	// reply, trusted readings only for the disciplined clock.
	MaxAbsError float64 `json:"max_abs_error_s"`
	RMSError    float64 `json:"rms_error_s"`
	// SettledMaxAbsError and SettledRMSError are the same over the
	// readings from 5 min after start (the clock has settled).
	SettledMaxAbsError float64 `json:"settled_max_abs_error_s"`
	SettledRMSError    float64 `json:"settled_rms_error_s"`
	// MedianBound is the median of the claimed bound over the readings
	// counted in RMSError.
	MedianBound float64 `json:"median_bound_s"`
	// BoundViolations counts readings whose true error exceeded the
	// claimed bound (trusted readings of the disciplined clock; for a
	// baseline the root distance of the reply it follows).
	BoundViolations int `json:"bound_violations"`
	// HoldoverError is |error| 1 h, 6 h and 24 h after the last reply.
	HoldoverError map[string]float64 `json:"holdover_error_s"`
}

// Result is the outcome of one run.
type Result struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	// NTS reports whether the disciplined clock ran over NTS.
	// CountedReadings is how many readings RMSError is over, and
	// AuthenticatedReadings how many of them said their time was
	// authenticated.
	NTS                   bool `json:"nts"`
	CountedReadings       int  `json:"counted_readings"`
	AuthenticatedReadings int  `json:"authenticated_readings"`
	Figures
	// UpdatesPerHour is how many rounds per hour of synchronised running
	// updated the disciplined clock: how often it polled its servers.
	UpdatesPerHour float64 `json:"updates_per_hour"`
	// BoundRMSRatio is MedianBound over RMSError: how many times its RMS
	// error the clock's median bound claims.
	BoundRMSRatio float64 `json:"bound_rms_ratio"`
	// MedianBoundTerms is the median of each part of the claimed bound
	// over the readings counted in RMSError, each on its own (so they need
	// not add up to MedianBound).
	MedianBoundTerms clock.BoundTerms `json:"median_bound_terms"`
	// Baselines holds the same figures for "naive_sntp" and "free_running".
	Baselines map[string]Figures `json:"baselines"`

	// Falsetickers are the servers the clock named falsetickers at the
	// end of the synchronised part.
	Falsetickers []string `json:"-"`
	// Readings is how many times the clock was read.
	Readings int `json:"-"`
	// States counts readings per state over the whole run.
	States map[clock.State]int `json:"-"`
	// HoldoverStates is the state 1 h, 6 h and 24 h after the last reply.
	HoldoverStates map[string]clock.State `json:"-"`
	// PPM, Wander and Hours are what the run used.
	PPM, Wander, Hours float64 `json:"-"`
}

// Holdover checkpoints after the last reply.
var checkpoints = []struct {
	name  string
	after time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}}

// simTimebase is the clock's timebase in the bench: the oscillator at the
// network's virtual time.
type simTimebase struct {
	net *ntpsim.Network
	osc *osc.Oscillator
}

func (t simTimebase) Local() time.Duration {
	t.osc.AdvanceTo(t.net.Elapsed())
	return t.osc.Local()
}

func (t simTimebase) Suspended() time.Duration { return t.osc.Suspended() }

// settleAfter is when, from start, the settled figures begin.
const settleAfter = 5 * time.Minute

// tally accumulates one clock's figures.
type tally struct {
	f       Figures
	sumSq   float64
	n       int
	settled struct {
		sumSq float64
		n     int
	}
	bounds []float64
}

func newTally() *tally {
	return &tally{f: Figures{TimeToSynced: -1, HoldoverError: make(map[string]float64)}}
}

// add counts one reading's error and claimed bound, elapsed after start.
func (t *tally) add(err, bound float64, elapsed time.Duration) {
	t.f.MaxAbsError = max(t.f.MaxAbsError, math.Abs(err))
	t.sumSq += err * err
	t.n++
	t.bounds = append(t.bounds, bound)
	if elapsed >= settleAfter {
		t.f.SettledMaxAbsError = max(t.f.SettledMaxAbsError, math.Abs(err))
		t.settled.sumSq += err * err
		t.settled.n++
	}
}

func (t *tally) figures() Figures {
	if t.n > 0 {
		t.f.RMSError = math.Sqrt(t.sumSq / float64(t.n))
		slices.Sort(t.bounds)
		t.f.MedianBound = t.bounds[len(t.bounds)/2]
	}
	if t.settled.n > 0 {
		t.f.SettledRMSError = math.Sqrt(t.settled.sumSq / float64(t.settled.n))
	}
	return t.f
}

// baseline is a clock that adopts reply offsets without discipline.
type baseline struct {
	have   bool
	offset time.Duration
	bound  time.Duration
	// follow steps to one server's reply each round, taking the servers in
	// turn as an SNTP client of a pool does; false keeps the first reply.
	follow bool
	want   string // the server whose reply is taken this round
}

func (b *baseline) reply(s clock.Sample, r *ntp.Response) {
	switch {
	case b.follow && s.Server != b.want:
		return
	case b.follow:
		b.want = ""
	case b.have:
		return
	}
	b.have, b.offset, b.bound = true, s.Offset, r.RootDistance
}

// Run runs one scenario and returns its figures.
func Run(opts Config) (Result, error) {
	b, err := newBench(opts)
	if err != nil {
		return Result{}, err
	}
	if err := b.loop(); err != nil {
		return Result{}, err
	}
	b.res.Figures = b.disc.figures()
	b.res.UpdatesPerHour = float64(b.updates) / b.res.Hours
	if b.res.RMSError > 0 {
		b.res.BoundRMSRatio = b.res.MedianBound / b.res.RMSError
	}
	b.res.MedianBoundTerms = medianTerms(b.terms)
	b.res.Baselines = map[string]Figures{
		"naive_sntp":   b.tNaive.figures(),
		"free_running": b.tFree.figures(),
	}
	return b.res, nil
}

// bench is one run in progress: the simulated world, the clock under test,
// its baselines and their tallies.
type bench struct {
	sc      scenario
	step    time.Duration
	network *ntpsim.Network
	tb      simTimebase
	epoch   time.Time
	servers []string
	eng     *clock.Engine
	naive   *baseline
	free    *baseline
	res     Result

	disc, tNaive, tFree *tally
	terms               []clock.BoundTerms // the parts of each bound counted in disc

	synced      time.Duration // end of the synchronised part
	suspendAt   time.Duration // -1 once done or when none
	outageStart time.Time     // zero until the servers go
	lastReply   time.Time
	replies     int
	rounds      int
	updates     int // rounds that updated the clock while synchronised
	nextCheck   int // index into checkpoints
}

// newBench checks the options and builds the world of a run.
func newBench(opts Config) (*bench, error) {
	sc, err := lookup(opts.Scenario)
	if err != nil {
		return nil, err
	}
	ppm, wander, hours, err := sc.oscillatorFigures(opts)
	if err != nil {
		return nil, err
	}
	b := &bench{sc: sc, step: opts.Step, suspendAt: -1}
	if b.step <= 0 {
		b.step = time.Second
	}
	r := rand.New(rand.NewPCG(opts.Seed, 0xc10c))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
	b.network = ntpsim.NewNetwork(start, opts.Seed)
	b.network.Timeout = time.Second
	cfg := clock.DefaultConfig()
	cfg.Servers = nil
	var hosts []string
	for _, s := range sc.servers(r) {
		b.network.Add(s)
		cfg.Servers = append(cfg.Servers, s.Address)
		host, _, _ := net.SplitHostPort(s.Address)
		hosts = append(hosts, host)
	}
	var ntsEnv clock.NTSEnv
	if opts.NTS {
		ca, err := ntpsim.NewCA()
		if err != nil {
			return nil, err
		}
		cert, err := ca.Issue(hosts[0], hosts[1:]...)
		if err != nil {
			return nil, err
		}
		if err := b.network.EnableNTS(cert); err != nil {
			return nil, err
		}
		ntsEnv = clock.NTSEnv{Roots: ca.Pool(), Dial: b.network.DialKE}
		cfg.Servers = nil
		for _, h := range hosts {
			cfg.Servers = append(cfg.Servers, "nts://"+h)
		}
	}
	b.servers = cfg.Servers
	b.tb = simTimebase{net: b.network, osc: sc.oscillator(ppm, wander, opts.Seed, r)}
	// The appliance boots with its clock some seconds off.
	b.epoch = start.Add(time.Duration((r.Float64()*2 - 1) * float64(10*time.Second)))
	b.naive, b.free = &baseline{follow: true}, &baseline{}
	b.eng = clock.NewEngine(cfg, clock.EngineConfig{
		Epoch:    b.epoch,
		Timebase: b.tb,
		Dialer:   b.network.Dial,
		Sleep:    b.network.Sleep,
		Timeout:  b.network.Timeout,
		OnReply:  b.onReply,
		NTS:      ntsEnv,
	})
	b.res = Result{
		Scenario:       sc.name,
		Seed:           opts.Seed,
		NTS:            opts.NTS,
		States:         make(map[clock.State]int),
		HoldoverStates: make(map[string]clock.State),
		PPM:            ppm, Wander: wander, Hours: hours,
	}
	b.disc, b.tNaive, b.tFree = newTally(), newTally(), newTally()
	b.synced = time.Duration(hours * float64(time.Hour))
	if sc.suspend > 0 {
		b.suspendAt = b.synced / 2
	}
	return b, nil
}

// oscillatorFigures returns the run's oscillator and length: the
// scenario's, overridden by the options, checked.
func (s scenario) oscillatorFigures(opts Config) (ppm, wander, hours float64, err error) {
	ppm, wander, hours = s.ppm, s.wander, s.hours
	if opts.PPM != nil {
		ppm = *opts.PPM
	}
	if opts.Wander != nil {
		wander = *opts.Wander
	}
	if opts.Hours != 0 {
		hours = opts.Hours
	}
	switch {
	case math.IsNaN(ppm) || math.Abs(ppm) > 500:
		err = fmt.Errorf("clockbench: --ppm %g is outside -500..500", ppm)
	case math.IsNaN(wander) || wander < 0 || wander > 1e-6:
		err = fmt.Errorf("clockbench: --wander %g is outside 0..1e-6", wander)
	case math.IsNaN(hours) || hours < 0.1 || hours > 24*30:
		err = fmt.Errorf("clockbench: --hours %g is outside 0.1..720", hours)
	}
	return ppm, wander, hours, err
}

// onReply feeds every valid reply to the baselines.
func (b *bench) onReply(s clock.Sample, resp *ntp.Response) {
	b.naive.reply(s, resp)
	b.free.reply(s, resp)
	b.lastReply = b.network.Now()
	b.replies++
}

// loop runs rounds as they fall due and reads the clock between them until
// the last holdover checkpoint.
func (b *bench) loop() error {
	ctx := context.Background()
	for {
		el := b.network.Elapsed()
		if b.outageStart.IsZero() && el >= b.synced {
			if err := b.startOutage(); err != nil {
				return err
			}
		}
		if !b.outageStart.IsZero() && b.nextCheck >= len(checkpoints) {
			return nil
		}
		if b.suspendAt >= 0 && el >= b.suspendAt {
			b.suspend(el)
		}
		local, next := b.tb.Local(), b.eng.NextRound()
		if local >= next {
			b.naive.want = b.servers[b.rounds%len(b.servers)]
			b.rounds++
			if out := b.eng.Round(ctx); out.Updated && b.outageStart.IsZero() {
				b.updates++
			}
			b.read("")
			continue
		}
		if b.checkpointDue() {
			b.read(checkpoints[b.nextCheck].name)
			b.nextCheck++
			continue
		}
		b.network.Advance(max(b.nextStep(el, next-local), time.Nanosecond))
		b.read("")
	}
}

// startOutage cuts the servers off at the end of the synchronised part.
func (b *bench) startOutage() error {
	b.network.SetDown(true)
	b.outageStart = b.network.Now()
	b.res.Falsetickers = falsetickers(b.eng)
	if b.replies == 0 {
		return errors.New("clockbench: no server ever replied")
	}
	return nil
}

// suspend stops the oscillator for the scenario's suspend while true time
// goes on.
func (b *bench) suspend(el time.Duration) {
	b.tb.osc.AdvanceTo(el)
	b.tb.osc.Suspend(b.sc.suspend)
	b.network.Advance(b.sc.suspend)
	b.suspendAt = -1
}

// checkpointDue reports whether the next holdover checkpoint has come.
func (b *bench) checkpointDue() bool {
	if b.outageStart.IsZero() {
		return false
	}
	at := b.lastReply.Add(checkpoints[b.nextCheck].after)
	return !b.network.Now().Before(at)
}

// nextStep returns how far to advance: to the next reading, round,
// checkpoint or phase change, whichever is first. toRound is the timebase
// left until the next round.
func (b *bench) nextStep(el, toRound time.Duration) time.Duration {
	d := min(b.step, toRound+time.Microsecond)
	if !b.outageStart.IsZero() {
		at := b.lastReply.Add(checkpoints[b.nextCheck].after)
		return min(d, at.Sub(b.network.Now()))
	}
	d = min(d, b.synced-el)
	if b.suspendAt >= 0 {
		d = min(d, b.suspendAt-el)
	}
	return d
}

// read takes one reading of the clock and of the baselines and counts
// them; at a holdover checkpoint it also records the error there.
func (b *bench) read(checkpoint string) {
	now := b.network.Now()
	local := b.tb.Local()
	rd := b.eng.Reading()
	b.res.Readings++
	b.res.States[rd.State]++
	el := b.network.Elapsed()
	inSynced := b.outageStart.IsZero()
	errD := rd.Time.Sub(now).Seconds()
	if rd.State == clock.Synced && b.disc.f.TimeToSynced < 0 {
		b.disc.f.TimeToSynced = el.Seconds()
	}
	if rd.State.Trusted() {
		if inSynced && b.disc.f.TimeToSynced >= 0 {
			b.disc.add(errD, rd.Bound.Seconds(), el)
			b.terms = append(b.terms, b.eng.BoundTerms(local))
			b.res.CountedReadings++
			if rd.Authenticated {
				b.res.AuthenticatedReadings++
			}
		}
		if math.Abs(errD) > rd.Bound.Seconds() {
			b.disc.f.BoundViolations++
		}
	}
	b.readBaseline(b.tNaive, b.naive, local, now, el, checkpoint)
	b.readBaseline(b.tFree, b.free, local, now, el, checkpoint)
	if checkpoint != "" {
		b.disc.f.HoldoverError[checkpoint] = math.Abs(errD)
		b.res.HoldoverStates[checkpoint] = rd.State
	}
}

// readBaseline counts one reading of a baseline clock.
func (b *bench) readBaseline(t *tally, bl *baseline, local time.Duration, now time.Time, el time.Duration, checkpoint string) {
	if !bl.have {
		return
	}
	e := b.epoch.Add(local).Add(bl.offset).Sub(now).Seconds()
	if t.f.TimeToSynced < 0 {
		t.f.TimeToSynced = el.Seconds()
	}
	if b.outageStart.IsZero() {
		t.add(e, bl.bound.Seconds(), el)
	}
	if math.Abs(e) > bl.bound.Seconds() {
		t.f.BoundViolations++
	}
	if checkpoint != "" {
		t.f.HoldoverError[checkpoint] = math.Abs(e)
	}
}

// medianTerms returns the median of each part of the bounds.
func medianTerms(terms []clock.BoundTerms) clock.BoundTerms {
	if len(terms) == 0 {
		return clock.BoundTerms{}
	}
	median := func(part func(clock.BoundTerms) float64) float64 {
		v := make([]float64, len(terms))
		for i, t := range terms {
			v[i] = part(t)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return clock.BoundTerms{
		Path:      median(func(t clock.BoundTerms) float64 { return t.Path }),
		Estimate:  median(func(t clock.BoundTerms) float64 { return t.Estimate }),
		Frequency: median(func(t clock.BoundTerms) float64 { return t.Frequency }),
		Drift:     median(func(t clock.BoundTerms) float64 { return t.Drift }),
		Slew:      median(func(t clock.BoundTerms) float64 { return t.Slew }),
	}
}

func falsetickers(e *clock.Engine) []string {
	var out []string
	for _, s := range e.Status().Servers {
		if s.Falseticker {
			out = append(out, s.Address)
		}
	}
	return out
}

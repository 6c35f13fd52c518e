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
	"time"

	"github.com/beevik/ntp"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/osc"
)

// Options choose a bench run.
type Options struct {
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
	Figures
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

// tally accumulates one clock's figures.
type tally struct {
	f     Figures
	sumSq float64
	n     int
}

func newTally() *tally {
	return &tally{f: Figures{TimeToSynced: -1, HoldoverError: make(map[string]float64)}}
}

func (t *tally) add(err float64) {
	t.f.MaxAbsError = max(t.f.MaxAbsError, math.Abs(err))
	t.sumSq += err * err
	t.n++
}

func (t *tally) figures() Figures {
	if t.n > 0 {
		t.f.RMSError = math.Sqrt(t.sumSq / float64(t.n))
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
func Run(opts Options) (Result, error) {
	sc, err := lookup(opts.Scenario)
	if err != nil {
		return Result{}, err
	}
	ppm, wander, hours := sc.ppm, sc.wander, sc.hours
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
		return Result{}, fmt.Errorf("clockbench: --ppm %g is outside -500..500", ppm)
	case math.IsNaN(wander) || wander < 0 || wander > 1e-6:
		return Result{}, fmt.Errorf("clockbench: --wander %g is outside 0..1e-6", wander)
	case math.IsNaN(hours) || hours < 0.1 || hours > 24*30:
		return Result{}, fmt.Errorf("clockbench: --hours %g is outside 0.1..720", hours)
	}
	step := opts.Step
	if step <= 0 {
		step = time.Second
	}

	r := rand.New(rand.NewPCG(opts.Seed, 0xc10c))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
	network := ntpsim.NewNetwork(start, opts.Seed)
	network.Timeout = time.Second
	servers := sc.servers(r)
	cfg := clock.DefaultConfig()
	cfg.Servers = nil
	for _, s := range servers {
		network.Add(s)
		cfg.Servers = append(cfg.Servers, s.Address)
	}
	tb := simTimebase{net: network, osc: sc.oscillator(ppm, wander, opts.Seed, r)}
	// The appliance boots with its clock some seconds off.
	epoch := start.Add(time.Duration((r.Float64()*2 - 1) * float64(10*time.Second)))
	naive := &baseline{follow: true}
	free := &baseline{}
	var lastReply time.Time
	var replies int
	eng := clock.NewEngine(cfg, clock.EngineOptions{
		Epoch:    epoch,
		Timebase: tb,
		Dialer:   network.Dial,
		Sleep:    network.Sleep,
		Timeout:  network.Timeout,
		OnReply: func(s clock.Sample, resp *ntp.Response) {
			naive.reply(s, resp)
			free.reply(s, resp)
			lastReply = network.Now()
			replies++
		},
	})

	res := Result{
		Scenario:       sc.name,
		Seed:           opts.Seed,
		States:         make(map[clock.State]int),
		HoldoverStates: make(map[string]clock.State),
		PPM:            ppm, Wander: wander, Hours: hours,
	}
	disc, tNaive, tFree := newTally(), newTally(), newTally()
	synced := time.Duration(hours * float64(time.Hour))
	suspendAt := time.Duration(-1)
	if sc.suspend > 0 {
		suspendAt = synced / 2
	}
	var outageStart time.Time // zero until the servers go
	rounds := 0
	nextCheck := 0
	ctx := context.Background()

	read := func(checkpoint string) {
		now := network.Now()
		local := tb.Local()
		rd := eng.Reading()
		res.Readings++
		res.States[rd.State]++
		el := network.Elapsed().Seconds()
		inSynced := outageStart.IsZero()
		errD := rd.Time.Sub(now).Seconds()
		if rd.State == clock.Synced && disc.f.TimeToSynced < 0 {
			disc.f.TimeToSynced = el
		}
		if rd.State.Trusted() {
			if inSynced && disc.f.TimeToSynced >= 0 {
				disc.add(errD)
			}
			if math.Abs(errD) > rd.Bound.Seconds() {
				disc.f.BoundViolations++
			}
		}
		for _, b := range []struct {
			t *tally
			b *baseline
		}{{tNaive, naive}, {tFree, free}} {
			if !b.b.have {
				continue
			}
			e := epoch.Add(local).Add(b.b.offset).Sub(now).Seconds()
			if b.t.f.TimeToSynced < 0 {
				b.t.f.TimeToSynced = el
			}
			if inSynced {
				b.t.add(e)
			}
			if math.Abs(e) > b.b.bound.Seconds() {
				b.t.f.BoundViolations++
			}
			if checkpoint != "" {
				b.t.f.HoldoverError[checkpoint] = math.Abs(e)
			}
		}
		if checkpoint != "" {
			disc.f.HoldoverError[checkpoint] = math.Abs(errD)
			res.HoldoverStates[checkpoint] = rd.State
		}
	}

	for {
		el := network.Elapsed()
		if outageStart.IsZero() && el >= synced {
			network.SetDown(true)
			outageStart = network.Now()
			res.Falsetickers = falsetickers(eng)
			if replies == 0 {
				return Result{}, errors.New("clockbench: no server ever replied")
			}
		}
		if !outageStart.IsZero() && nextCheck >= len(checkpoints) {
			break
		}
		if suspendAt >= 0 && el >= suspendAt {
			tb.osc.AdvanceTo(el)
			tb.osc.Suspend(sc.suspend)
			network.Advance(sc.suspend)
			suspendAt = -1
		}
		local, next := tb.Local(), eng.NextRound()
		if local >= next {
			naive.want = cfg.Servers[rounds%len(cfg.Servers)]
			rounds++
			eng.Round(ctx)
			read("")
			continue
		}
		// Step to the next reading, round, checkpoint or phase change.
		d := step
		d = min(d, next-local+time.Microsecond)
		if outageStart.IsZero() {
			d = min(d, synced-el)
			if suspendAt >= 0 {
				d = min(d, suspendAt-el)
			}
		} else {
			at := lastReply.Add(checkpoints[nextCheck].after)
			if !network.Now().Before(at) {
				read(checkpoints[nextCheck].name)
				nextCheck++
				continue
			}
			d = min(d, at.Sub(network.Now()))
		}
		network.Advance(max(d, time.Nanosecond))
		read("")
	}
	res.Figures = disc.figures()
	res.Baselines = map[string]Figures{
		"naive_sntp":   tNaive.figures(),
		"free_running": tFree.figures(),
	}
	return res, nil
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

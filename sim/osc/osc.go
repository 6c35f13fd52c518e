// Package osc models the crystal oscillator of an appliance for the
// simulator and the clock bench: a fixed frequency offset, a random-walk
// wander, a diurnal temperature term and white noise on every reading, the
// way chrony's clknetsim models clocks. Time advances only when told to.
package osc

import (
	"math"
	"math/rand/v2"
	"time"
)

// Config describes an oscillator. The zero value is a perfect clock.
type Config struct {
	// PPM is the constant frequency offset in ppm; positive runs fast.
	PPM float64
	// Wander is the standard deviation of the frequency's random-walk
	// step per second, as a fraction (chrony's simulation uses 1e-9).
	Wander float64
	// DiurnalPPM is the amplitude in ppm of the daily temperature swing.
	DiurnalPPM float64
	// DiurnalPeriod is the period of that swing; zero means 24 h.
	DiurnalPeriod time.Duration
	// DiurnalPhase is the phase of the swing at start, in radians.
	DiurnalPhase float64
	// Noise is the standard deviation of the white noise on each reading.
	Noise time.Duration
	// Seed makes the random parts repeatable.
	Seed uint64
}

// Oscillator is a simulated oscillator. It is not safe for concurrent use.
type Oscillator struct {
	cfg       Config
	rng       *rand.Rand // the wander's steps
	noise     *rand.Rand // the readings' noise, apart so reads leave the wander alone
	period    float64    // seconds
	t         float64    // true seconds since start
	local     float64    // noiseless local seconds at t
	walk      float64    // random-walk part of the frequency
	suspended float64    // true seconds spent suspended
}

// New returns an oscillator at true time zero reading zero.
func New(cfg Config) *Oscillator {
	p := cfg.DiurnalPeriod
	if p == 0 {
		p = 24 * time.Hour
	}
	return &Oscillator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x05c1)),
		noise:  rand.New(rand.NewPCG(cfg.Seed, 0x2015e)),
		period: p.Seconds(),
	}
}

// Frequency returns the oscillator's frequency offset now, as a fraction
// (positive runs fast).
func (o *Oscillator) Frequency() float64 {
	return o.cfg.PPM*1e-6 + o.walk + o.diurnal(o.t)
}

func (o *Oscillator) diurnal(t float64) float64 {
	return o.cfg.DiurnalPPM * 1e-6 * math.Sin(2*math.Pi*t/o.period+o.cfg.DiurnalPhase)
}

// integral of the diurnal term from a to b.
func (o *Oscillator) diurnalIntegral(a, b float64) float64 {
	if o.cfg.DiurnalPPM == 0 {
		return 0
	}
	w := 2 * math.Pi / o.period
	k := o.cfg.DiurnalPPM * 1e-6 / w
	return k * (math.Cos(w*a+o.cfg.DiurnalPhase) - math.Cos(w*b+o.cfg.DiurnalPhase))
}

// AdvanceTo moves true time to elapsed since start; earlier values are
// ignored. The wander steps once per true second.
func (o *Oscillator) AdvanceTo(elapsed time.Duration) {
	to := elapsed.Seconds()
	for o.t < to {
		next := to
		if o.cfg.Wander != 0 {
			next = min(to, math.Floor(o.t)+1)
		}
		o.local += (next-o.t)*(1+o.cfg.PPM*1e-6+o.walk) + o.diurnalIntegral(o.t, next)
		if o.cfg.Wander != 0 && next == math.Floor(o.t)+1 {
			o.walk += o.rng.NormFloat64() * o.cfg.Wander
		}
		o.t = next
	}
}

// Suspend lets d of true time pass with the oscillator stopped, as a
// machine's raw clock does in suspend. The wander still moves.
func (o *Oscillator) Suspend(d time.Duration) {
	from := o.t
	local := o.local
	o.AdvanceTo(time.Duration((o.t + d.Seconds()) * 1e9))
	o.local = local
	o.suspended += o.t - from
}

// Local returns the oscillator's reading at the current true time, with
// white noise.
func (o *Oscillator) Local() time.Duration {
	v := o.local
	if o.cfg.Noise > 0 {
		v += o.noise.NormFloat64() * o.cfg.Noise.Seconds()
	}
	return time.Duration(math.Round(v * 1e9))
}

// Exact returns the noiseless local reading in seconds.
func (o *Oscillator) Exact() float64 { return o.local }

// Elapsed returns the true time since start.
func (o *Oscillator) Elapsed() time.Duration { return time.Duration(math.Round(o.t * 1e9)) }

// Suspended returns the true time spent suspended so far.
func (o *Oscillator) Suspended() time.Duration {
	return time.Duration(math.Round(o.suspended * 1e9))
}

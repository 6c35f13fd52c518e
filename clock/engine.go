package clock

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"github.com/totpbox/totpbox/clock/nts"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Engine polls the servers and feeds the discipline. It owns the polling
// policy: bursts at start and after failures, kiss-of-death, the interval
// growing from the minimum to the maximum as the clock settles. It runs in
// real time in Service and in virtual time in the clock bench; time passes
// only through the timebase, the dialer and the sleep function.
//
// Reading and Status may be called while Round runs: Round holds the lock
// only around the discipline, not while waiting for replies. Rounds must
// not overlap.
type Engine struct {
	mu         sync.Mutex
	cfg        Config
	disc       *Discipline
	q          querier
	sleep      func(context.Context, time.Duration) error
	log        *slog.Logger
	concurrent bool
	onReply    func(Sample, *ntp.Response)

	servers    []*server
	poll       time.Duration
	good       int // consecutive updates at the current interval
	failed     int // consecutive rounds without an update
	suspended  time.Duration
	lastUpdate time.Duration
	lastRound  time.Duration
	lastOut    Outcome
	quickLeft  int  // quick rounds still to come since the clock was set
	acquiring  int  // rounds still to come, after those, that may come early
	retries    int  // rounds in a row whose samples the filter held back
	authed     bool // the last update's selected servers were all NTS
}

// server is the engine's view of one configured server.
type server struct {
	name      string
	reach     uint8
	needBurst bool
	interval  time.Duration // at least this long between polls (kiss RATE)
	nextPoll  time.Duration // timebase value before which it is not polled
	setAside  string        // why it is no longer polled; empty if in use
	retryAt   time.Duration // when a set-aside name is tried again; 0 never
	lastErr   string
	badRounds int // consecutive rounds whose replies were unusable
	last      Sample
	have      bool
	nts       *nts.Client // nil for plain NTP
	failures  int         // polls that gave no sample
}

// EngineConfig are the edges of an Engine.
type EngineConfig struct {
	// Epoch is the wall time timebase zero stands for before correction.
	Epoch time.Time
	// Timebase is the oscillator. Required.
	Timebase Timebase
	// Dialer carries queries; nil means UDP.
	Dialer Dialer
	// Sleep waits for d to pass; nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Timeout is how long a query waits for its reply. Zero means 2 s.
	Timeout time.Duration
	// Logger receives one line per problem; nil discards.
	Logger *slog.Logger
	// Concurrent polls servers in parallel (real time only).
	Concurrent bool
	// NotBefore and WarmFrequency come from the drift file.
	NotBefore     time.Time
	WarmFrequency float64
	// OnReply sees every valid reply (for the bench's baselines).
	OnReply func(Sample, *ntp.Response)
	// NTS reaches the NTS-KE servers of nts:// entries.
	NTS NTSEnv
}

// NTSEnv is how the clock reaches NTS-KE servers.
type NTSEnv struct {
	// Roots are the certificate authorities KE servers must chain to; nil
	// means the system's.
	Roots *x509.CertPool
	// Time is the time certificates are checked at; nil means the host's
	// clock.
	Time func() time.Time
	// Dial opens KE connections; nil means TCP.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewEngine returns an engine for cfg, which must be valid.
func NewEngine(cfg Config, o EngineConfig) *Engine {
	cfg = cfg.withDefaults()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = wallclock.Sleep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	requireAuth := cfg.RequiresAuthentication()
	steering := 0
	for _, name := range cfg.Servers {
		if isNTS(name) || !requireAuth {
			steering++
		}
	}
	e := &Engine{
		cfg: cfg,
		disc: NewDiscipline(DisciplineConfig{
			Epoch:         o.Epoch,
			Servers:       steering,
			MaxClockError: cfg.MaxClockError,
			HoldoverLimit: cfg.HoldoverLimit,
			NotBefore:     o.NotBefore,
			WarmFrequency: o.WarmFrequency,
		}),
		q:          querier{epoch: o.Epoch, timebase: o.Timebase, dialer: o.Dialer, timeout: o.Timeout},
		sleep:      o.Sleep,
		log:        o.Logger,
		concurrent: o.Concurrent,
		onReply:    o.OnReply,
		poll:       cfg.MinPoll,
		suspended:  o.Timebase.Suspended(),
	}
	e.disc.SetPollInterval(e.poll)
	e.lastRound = o.Timebase.Local() - e.poll
	for _, name := range cfg.Servers {
		s := &server{name: name, needBurst: true, nextPoll: math.MinInt64}
		if err := checkServer(name); err != nil {
			s.setAside = err.Error()
			e.log.Warn("clock: server set aside", "server", name, "reason", s.setAside)
		} else if host, port, ok, _ := nts.ParseServer(name); ok {
			s.nts = nts.NewClient(nts.ClientConfig{
				Host: host,
				Port: port,
				TLS:  &tls.Config{RootCAs: o.NTS.Roots, Time: o.NTS.Time},
				Dial: o.NTS.Dial,
			})
		} else if requireAuth {
			s.setAside = "plain NTP ignored: clock.require_authenticated is set"
			e.log.Info("clock: server not polled", "server", name, "reason", s.setAside)
		}
		e.servers = append(e.servers, s)
	}
	return e
}

// acquiringPoll is the longest interval while the clock is acquiring.
const acquiringPoll = 64 * time.Second

// Reading returns the clock's reading now, noticing a suspend first.
func (e *Engine) Reading() Reading {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checkSuspend()
	rd := e.disc.Reading(e.q.timebase.Local())
	rd.Authenticated = e.authed && rd.State != Unsynced
	return rd
}

// StartFrom begins a clock that has no update yet from a time known by
// other means (the RTC) with its error bound (see Discipline.StartFrom).
func (e *Engine) StartFrom(t time.Time, bound time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disc.StartFrom(e.q.timebase.Local(), t, bound)
}

// BoundTerms returns the parts of the error bound of a reading at timebase
// value local (see Discipline.BoundTerms).
func (e *Engine) BoundTerms(local time.Duration) BoundTerms {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disc.BoundTerms(local)
}

// CheckSuspend looks for a suspend since the last check and, if there was
// one, distrusts the phase and polls at once. It reports whether it found
// one.
func (e *Engine) CheckSuspend() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.checkSuspend()
}

func (e *Engine) checkSuspend() bool {
	s := e.q.timebase.Suspended()
	if s-e.suspended < 100*time.Millisecond {
		return false
	}
	e.log.Warn("clock: suspend detected", "suspended", s-e.suspended)
	e.suspended = s
	e.disc.Suspended()
	e.restart()
	return true
}

// restart goes back to acquiring: short polls, bursts.
func (e *Engine) restart() {
	e.poll, e.good, e.quickLeft, e.acquiring = e.cfg.MinPoll, 0, 0, 0
	e.disc.SetPollInterval(e.poll)
	for _, s := range e.servers {
		s.needBurst, s.nextPoll = true, math.MinInt64
	}
	e.lastRound = e.q.timebase.Local() - e.poll // the next round is due now
}

// quickPoll is the interval between the first rounds after the clock is
// set, so the regression has a frequency soon (like chrony's iburst).
const quickPoll = 2 * time.Second

// quickRounds is how many rounds follow the first update at quickPoll,
// whether or not the clock filter takes their samples: on a path with
// queueing spikes a few will not count, and a frequency from 4 points 2 s
// apart is off by a hundred ppm on a path with a millisecond of jitter.
const quickRounds = 8

// acquiringRounds is how many rounds after the quick ones may still come
// early, as often as every quickPoll, while the frequency is known too
// poorly for the polling interval (see Discipline.steadyPoll). On a path
// with a millisecond of jitter a frequency fitted over the quick rounds'
// 16 s can be 100 ppm off, and at 16 s polls the reading then drifts 2 ms
// before the next update pulls it back; polling again as soon as the
// drift would matter keeps that within a fraction of the bound. A LAN
// needs none (see acquireDrift); the count caps what a jittery path costs
// the server: 24 queries more, once, in the clock's first minutes.
const acquiringRounds = 24

// Local returns the timebase's reading.
func (e *Engine) Local() time.Duration { return e.q.timebase.Local() }

// NextRound returns the timebase value at which the next round is due.
func (e *Engine) NextRound() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.quickLeft > 0 || e.retryFiltered() {
		return e.lastRound + min(quickPoll, e.poll)
	}
	if e.acquiring > 0 {
		return e.lastRound + min(e.poll, max(quickPoll, e.disc.steadyPoll()))
	}
	return e.lastRound + e.poll
}

// Round polls every server that is due, updates the discipline and adapts
// the polling interval.
func (e *Engine) Round(ctx context.Context) Outcome {
	e.mu.Lock()
	e.checkSuspend()
	start := e.q.timebase.Local()
	e.lastRound = start
	type result struct {
		s   *server
		smp Sample
		err error
	}
	var due []*server
	for _, s := range e.servers {
		if s.setAside != "" && (s.retryAt == 0 || start < s.retryAt) {
			continue
		}
		if start < s.nextPoll {
			continue
		}
		due = append(due, s)
	}
	sizes := make([]int, len(due))
	for i, s := range due {
		sizes[i] = 1
		if s.needBurst {
			sizes[i] = burstSize
		}
	}
	e.mu.Unlock()

	results := make([]result, len(due))
	var replyMu sync.Mutex
	onReply := func(s Sample, r *ntp.Response) {
		if e.onReply != nil {
			replyMu.Lock()
			defer replyMu.Unlock()
			e.onReply(s, r)
		}
	}
	poll1 := func(i int) {
		smp, err := e.q.burst(ctx, source{due[i].name, due[i].nts}, sizes[i], e.sleep, onReply)
		results[i] = result{due[i], smp, err}
	}
	if e.concurrent {
		var wg sync.WaitGroup
		for i := range due {
			wg.Go(func() { poll1(i) })
		}
		wg.Wait()
	} else {
		for i := range due {
			poll1(i)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var fresh []Sample
	for _, r := range results {
		s := r.s
		if r.err != nil && ctx.Err() != nil {
			continue // stopping: not the server's fault, and no reach lost
		}
		s.reach <<= 1
		s.nextPoll = start + s.interval
		if r.err != nil {
			e.failure(s, r.err)
			continue
		}
		s.reach |= 1
		s.badRounds = 0
		s.needBurst = false
		s.setAside, s.retryAt = "", 0
		if s.lastErr != "" {
			e.log.Info("clock: server answering again", "server", s.name)
			s.lastErr = ""
		}
		s.last, s.have = r.smp, true
		fresh = append(fresh, r.smp)
	}
	if ctx.Err() != nil {
		return Outcome{Reason: ctx.Err().Error()}
	}
	now := e.q.timebase.Local()
	out := e.disc.Update(now, fresh)
	e.lastOut = out
	if out.Updated {
		e.authed = len(out.Selected) > 0
		for _, name := range out.Selected {
			if !isNTS(name) {
				e.authed = false
			}
		}
	}
	e.adapt(out, now)
	e.countQuick(out)
	if !out.Updated && len(out.Filtered) > 0 {
		e.retries++
	} else {
		e.retries = 0
	}
	return out
}

// maxFilteredRetries is how many rounds in a row come early because the
// clock filter held every fresh sample back.
const maxFilteredRetries = 2

// retryFiltered reports whether the next round comes early: the last one
// updated nothing because its samples met a delay spike, and a sample a
// moment later most likely will not.
func (e *Engine) retryFiltered() bool {
	return !e.lastOut.Updated && len(e.lastOut.Filtered) > 0 && e.retries <= maxFilteredRetries
}

// countQuick starts the quick rounds, and the acquiring ones after them, at
// the first update since the clock was set and counts them down.
func (e *Engine) countQuick(out Outcome) {
	switch {
	case e.quickLeft > 0:
		e.quickLeft--
	case e.acquiring > 0:
		e.acquiring--
	case out.Updated && e.disc.Samples() == 1:
		e.quickLeft, e.acquiring = quickRounds, acquiringRounds
	}
}

// badRoundsToSetAside is how many rounds in a row a server may answer with
// unusable replies before it is set aside.
const badRoundsToSetAside = 3

// failure records a failed poll of s and logs the reason once.
func (e *Engine) failure(s *server, err error) {
	s.needBurst = true
	s.failures++
	reason := err.Error()
	var kiss *KissError
	var dns *net.DNSError
	switch {
	case errors.As(err, new(*nts.AuthError)):
		// A reply that fails authentication is an attack or a broken
		// path; it never steers the clock. The NTS client counts it and
		// runs a new key exchange after several in a row.
		reason = "reply refused: " + reason
	case errors.As(err, new(*nts.NAKError)), errors.As(err, new(*nts.KEError)), errors.As(err, new(*nts.WaitError)):
		// The NTS client backs off its key exchanges itself.
		s.needBurst = false
	case errors.As(err, &kiss) && kiss.Code == "RATE":
		s.needBurst = false // a burst is what it objects to
		s.interval = min(max(2*s.interval, 2*e.poll), e.cfg.MaxPoll)
		s.nextPoll = e.q.timebase.Local() + s.interval
		reason = fmt.Sprintf("asked to slow down (kiss-of-death RATE), polling every %v", s.interval)
	case errors.As(err, &kiss):
		s.setAside = fmt.Sprintf("refused service (kiss-of-death %s)", kiss.Code)
		reason = s.setAside
	case errors.As(err, &dns):
		s.setAside = "cannot resolve: " + dns.Err
		s.retryAt = e.q.timebase.Local() + e.cfg.MaxPoll
		reason = s.setAside
	case errors.Is(err, errBadAddress):
		s.setAside = reason
	case errors.As(err, new(*BadReplyError)):
		// A server that answers but cannot be used is not polled in bursts
		// forever: after a few rounds it is set aside and tried again after
		// the longest polling interval.
		s.badRounds++
		if s.badRounds >= badRoundsToSetAside {
			s.setAside = "replies unusable: " + reason
			s.retryAt = e.q.timebase.Local() + e.cfg.MaxPoll
			s.needBurst = false // one query tells whether it is usable again
			reason = s.setAside
		}
	}
	if reason != s.lastErr {
		e.log.Warn("clock: server failed", "server", s.name, "reason", reason)
		s.lastErr = reason
	}
}

// adapt moves the polling interval after a round.
func (e *Engine) adapt(out Outcome, now time.Duration) {
	switch {
	case out.Updated:
		e.failed = 0
		e.lastUpdate = now
		if e.quickLeft > 0 {
			break // quick rounds say nothing of the interval
		}
		e.good++
		limit := min(acquiringPoll, e.cfg.MaxPoll)
		if _, skew, ok := e.disc.Frequency(); ok && e.disc.Samples() >= 8 && skew < 1 {
			limit = e.cfg.MaxPoll
		}
		if next := min(2*e.poll, limit); e.good >= 4 && e.poll < limit && e.disc.steadyFor(next) {
			e.poll, e.good = next, 0
		}
		e.poll = min(e.poll, max(limit, e.cfg.MinPoll))
	case e.disc.untrusted != "" && !e.disc.synced:
		e.restart()
		e.lastRound = now
	default:
		e.failed++
		e.good = 0
		if e.failed%8 == 0 {
			// Unreachable for a while: back off to spare the servers.
			e.poll = min(2*e.poll, e.cfg.MaxPoll)
		}
	}
	e.disc.SetPollInterval(e.poll)
}

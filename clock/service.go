package clock

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"github.com/totpbox/totpbox/internal/wallclock"
)

// Service is the disciplined clock of the daemon: it polls the configured
// servers over UDP in real time, keeps the drift file and gives readings.
type Service struct {
	cfg  Config
	log  *slog.Logger
	tb   Timebase
	eng  *Engine
	save time.Duration // timebase value of the last drift file write

	rtc      RTC
	rtcFile  string        // keeps the RTC's last setting
	rtcSaved time.Duration // timebase value of the last RTC write
	rtcEver  bool          // the RTC was written since start
}

// Env is what a Service runs against. Its zero value is the real thing:
// the default logger, the host's raw oscillator, UDP, the host clock at New
// as the first (never trusted) guess of the time, and a 2 s query timeout.
type Env struct {
	// Logger receives the clock's log lines; nil: slog.Default().
	Logger *slog.Logger
	// Timebase replaces the host's raw oscillator (for the simulator).
	Timebase Timebase
	// Dialer replaces UDP for queries.
	Dialer Dialer
	// Epoch is the first guess of the wall time at timebase zero.
	Epoch time.Time
	// Timeout is how long a query waits for its reply.
	Timeout time.Duration
	// NTSDial replaces TCP for NTS key exchanges.
	NTSDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RTC replaces the device clock.rtc names (the simulator's FileRTC).
	RTC RTC
	// Sleep replaces the real wait between a burst's queries (for tests
	// in virtual time).
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Service for cfg. It reads the drift file; a corrupt one is
// logged, set aside and ignored.
func New(cfg Config, o Env) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timebase == nil {
		o.Timebase = NewTimebase()
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Now().Add(-o.Timebase.Local()).Round(0)
	}
	var drift Drift
	if cfg.DriftFile != "" {
		d, err := loadDriftOrSetAside(cfg.DriftFile)
		switch {
		case err == nil:
			drift = d
			o.Logger.Info("clock: drift file read", "frequency_ppm", d.Frequency, "last_good_time", d.LastGood)
		case errors.Is(err, fs.ErrNotExist):
		default:
			drift = d
			o.Logger.Warn("clock: drift file set aside", "reason", err.Error(), "kept_frequency_ppm", d.Frequency)
		}
	}
	var roots *x509.CertPool
	if cfg.NTSCAFile != "" {
		var err error
		if roots, err = loadCAs(cfg.NTSCAFile); err != nil {
			return nil, fmt.Errorf("clock.nts_ca_file: %v", err)
		}
	}
	if o.RTC == nil && cfg.RTC != "" {
		dev, err := OpenRTC(cfg.RTC)
		if err != nil {
			return nil, fmt.Errorf("clock.rtc: %v", err)
		}
		o.RTC = dev
	}
	if o.RTC != nil && cfg.DriftFile == "" {
		return nil, errors.New("clock.rtc: needs clock.drift_file, beside which the RTC's last setting is kept")
	}
	s := &Service{cfg: cfg, log: o.Logger, tb: o.Timebase, rtc: o.RTC}
	s.eng = NewEngine(cfg, EngineConfig{
		Epoch:         o.Epoch,
		Timebase:      o.Timebase,
		Dialer:        o.Dialer,
		Timeout:       o.Timeout,
		Sleep:         o.Sleep,
		Logger:        o.Logger,
		Concurrent:    true,
		NotBefore:     drift.LastGood,
		WarmFrequency: drift.Frequency,
		NTS:           NTSEnv{Roots: roots, Dial: o.NTSDial},
	})
	s.save = o.Timebase.Local()
	if s.rtc != nil {
		s.rtcFile = RTCStateFile(cfg.DriftFile)
		s.startFromRTC(drift.LastGood)
	}
	return s, nil
}

// startFromRTC begins the clock from the RTC, if it was set by this clock
// and still holds its time.
func (s *Service) startFromRTC(notBefore time.Time) {
	last, err := LoadRTCSet(s.rtcFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.log.Info("clock: RTC not used until this clock has set it")
		} else {
			s.log.Warn("clock: RTC not used", "reason", err.Error())
		}
		return
	}
	read, err := s.rtc.Read()
	if err != nil {
		s.log.Warn("clock: RTC not used", "reason", err.Error())
		return
	}
	st, err := RTCStartFrom(read, last, s.cfg.RTCPPM, notBefore)
	if err != nil {
		s.log.Warn("clock: RTC not used", "reason", err.Error())
		return
	}
	s.eng.StartFrom(st.Time, st.Bound)
	s.log.Info("clock: started from the RTC", "time", st.Time, "bound", st.Bound, "rtc_set_at", last.At)
}

// setRTC writes the disciplined time to the RTC, at most every
// rtcSetEvery and only while the clock is synced, and keeps when.
func (s *Service) setRTC() {
	if s.rtc == nil || (s.rtcEver && s.tb.Local()-s.rtcSaved < rtcSetEvery) {
		return
	}
	rd := s.eng.Reading()
	if rd.State != Synced {
		return
	}
	s.rtcSaved, s.rtcEver = s.tb.Local(), true
	at := rd.Time.Round(time.Second).UTC()
	if err := s.rtc.Set(rd.Time); err != nil {
		s.log.Warn("clock: cannot set the RTC", "reason", err.Error())
		return
	}
	if err := SaveRTCSet(s.rtcFile, RTCSet{At: at, Bound: rd.Bound.Seconds()}); err != nil {
		s.log.Warn("clock: cannot keep when the RTC was set", "reason", err.Error())
	}
}

// driftSaveEvery is how often the drift file is written while running.
const driftSaveEvery = time.Hour

// suspendCheckEvery bounds how long Run sleeps, so a suspend is noticed and
// answered with a new round soon after resume.
const suspendCheckEvery = 5 * time.Second

// Run polls until ctx is done, then writes the drift file. It returns nil
// when stopped by ctx.
func (s *Service) Run(ctx context.Context) error {
	for {
		wait, ok := s.step(ctx)
		if !ok {
			break
		}
		if wait > 0 {
			if wallclock.Sleep(ctx, wait) != nil {
				break
			}
		}
		s.eng.CheckSuspend()
	}
	s.saveDrift()
	return nil
}

// step runs a round if one is due, writes the drift file and the RTC when
// they are due, and returns how long to wait before the next step; false
// when ctx is done.
func (s *Service) step(ctx context.Context) (time.Duration, bool) {
	if s.tb.Local() >= s.eng.NextRound() {
		out := s.eng.Round(ctx)
		if ctx.Err() != nil {
			return 0, false
		}
		if !out.Updated && out.Reason != "" {
			s.log.Debug("clock: not updated", "reason", out.Reason)
		}
		if out.Updated {
			s.setRTC()
		}
	}
	if s.tb.Local()-s.save >= driftSaveEvery {
		s.saveDrift()
	}
	return min(s.eng.NextRound()-s.tb.Local(), suspendCheckEvery), true
}

// saveDrift writes the drift file if there is something worth keeping.
func (s *Service) saveDrift() {
	s.save = s.tb.Local()
	if s.cfg.DriftFile == "" {
		return
	}
	st := s.eng.Status()
	if !st.FrequencyKnown {
		return
	}
	d := Drift{Frequency: st.Frequency, Skew: st.Skew}
	if st.State.Trusted() && st.Bound >= 0 {
		d.LastGood = st.Time.Add(-time.Duration(st.Bound * float64(time.Second))).UTC()
	}
	if err := SaveDrift(s.cfg.DriftFile, d); err != nil {
		s.log.Warn("clock: cannot write drift file", "reason", err.Error())
	}
}

// Now returns the clock's reading.
func (s *Service) Now() Reading { return s.eng.Reading() }

// Status reports the clock and every server.
func (s *Service) Status() Status { return s.eng.Status() }

var _ Clock = (*Service)(nil)

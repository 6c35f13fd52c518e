package system

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/internal/wallclock"
	"github.com/totpbox/totpbox/sim/ntpsim"
)

// Config configures a simulator run. The zero value of each field has the
// meaning its comment gives.
type Config struct {
	// Listen is the page's address; empty means 127.0.0.1:8460.
	Listen string
	// ServerListen is the in-process registration server's address; empty
	// means 127.0.0.1:8461. NoServer runs the appliances standalone.
	ServerListen string
	NoServer     bool
	// Server, when set, is the URL of a registration server running
	// elsewhere (one replica, or a load balancer before several): the
	// appliances sync with it, no server runs in the simulator's process,
	// and nothing pairs them automatically: each waits with its pairing
	// code on its screen and in /sim/state, to be paired through that
	// server's console or admin API.
	Server string
	// NoAutoPair leaves pairing to a person: the appliances show their
	// codes and wait for an admin to enter them on the Appliances page.
	// Without it the simulator pairs each appliance itself, once: on the
	// run that finds it never paired. An appliance unpaired later (in the
	// console, or with Forget pairing on the page) waits with its code.
	NoAutoPair bool
	// Version is reported by the appliances to the server.
	Version string
	// DataDir holds every appliance's state; empty means ./totpsim-data.
	DataDir string
	// TPMDir, when set, holds each appliance's simulated TPM (a swtpm
	// state directory per appliance, started when swtpm is installed);
	// empty runs every appliance in software mode.
	TPMDir string
	// Appliances is how many appliances to run, 1..MaxAppliances; zero
	// means 1. Above MaxTPMAppliances, TPMDir is ignored.
	Appliances int
	// Panel is the appliances' display size name; empty means
	// ssd1306-128x64.
	Panel string
	// Hidden, RevealFor and BlankAfter are as in device.Config.
	Hidden     bool
	RevealFor  time.Duration
	BlankAfter time.Duration
	// OfferLifetime is how long an unanswered offer stays on an
	// appliance; zero means uplink.DefaultOfferLifetime.
	OfferLifetime time.Duration
	// Clock makes appliance n's clock; nil means each appliance runs the
	// real disciplined clock against the simulator's NTP servers.
	Clock func(n int) (clock.Clock, error)
	// NTPServers is how many fake NTP servers to run on 127.0.0.1 (zero
	// means 3) and NTPOffset their offset from the host clock.
	NTPServers int
	NTPOffset  time.Duration
	// NTS runs the fake NTP servers with NTS (RFC 8915): each also answers
	// NTS-KE on a TCP port with a certificate from a CA made at start
	// (written to nts-ca.pem in DataDir), and the appliances' clocks poll
	// them as nts://127.0.0.1:PORT with that CA as clock.nts_ca_file, so
	// their time is authenticated.
	NTS bool
	// RTC gives each appliance's clock a simulated battery-backed RTC (a
	// clock.FileRTC in its data directory) running RTCDriftPPM fast
	// against the NTP servers' time, so a restart without them begins from
	// it as a Pi with a DS3231 would.
	RTC         bool
	RTCDriftPPM float64
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// Ready, when set, is called with the page's URL once it listens.
	Ready func(url string)
}

// MaxAppliances is how many appliances one simulator runs at most.
const MaxAppliances = 1000

// MaxTPMAppliances is how many appliances get a simulated TPM (a swtpm
// process each, about 5 MiB and a socket); above it every appliance runs
// in software mode, with a warning.
const MaxTPMAppliances = 16

// tpmDir is appliance n's TPM state directory under dir, or "" for none.
func tpmDir(dir string, n int) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("appliance-%d", n))
}

// applianceName is appliance n's name, as the console lists it once the
// simulator paired it: "Simulated appliance 0".
func applianceName(n int) string { return fmt.Sprintf("Simulated appliance %d", n) }

// autoPairedFile, in an appliance's directory, records that the simulator
// paired it (or found it paired) once: it is not paired automatically
// again.
const autoPairedFile = "auto-paired"

// System is a running simulator.
type System struct {
	cfg        Config
	appliances []*Appliance
	consoleURL string
	adminHint  string
	ln         net.Listener
	ntp        []*ntpsim.UDPServer
	clocks     []*clock.Service
	server     *regServer
	// autoPairing counts the appliances the simulator is still waiting to
	// pair itself.
	autoPairing atomic.Int32
}

// New opens the appliances and the page's listener.
func New(cfg Config) (*System, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8460"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "totpsim-data"
	}
	if cfg.ServerListen == "" {
		cfg.ServerListen = "127.0.0.1:8461"
	}
	if cfg.Appliances == 0 {
		cfg.Appliances = 1
	}
	if cfg.Appliances < 1 || cfg.Appliances > MaxAppliances {
		return nil, fmt.Errorf("appliances: %d is outside 1..%d", cfg.Appliances, MaxAppliances)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TPMDir != "" && cfg.Appliances > MaxTPMAppliances {
		cfg.Logger.Warn(fmt.Sprintf("simulator: more than %d appliances: every appliance runs without a TPM (software mode), as with --tpm none; a swtpm process each would weigh more than the appliances", MaxTPMAppliances),
			"appliances", cfg.Appliances)
		cfg.TPMDir = ""
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.Server != "" && cfg.NoServer {
		return nil, errors.New("server: a server URL and no server at once")
	}
	s := &System{cfg: cfg}
	if cfg.Server != "" {
		if err := checkServerURL(cfg.Server); err != nil {
			return nil, err
		}
	} else if !cfg.NoServer {
		rs, err := startServer(context.Background(), filepath.Join(cfg.DataDir, "server"), cfg.ServerListen, cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.server = rs
		s.consoleURL = rs.URL() + "/"
		s.adminHint = AdminUser + " / " + rs.password
	}
	clockFor := cfg.Clock
	if clockFor == nil {
		var err error
		if clockFor, err = s.fakeNTP(); err != nil {
			return nil, err
		}
	}
	for n := 0; n < cfg.Appliances; n++ {
		clk, err := clockFor(n)
		if err != nil {
			s.close()
			return nil, err
		}
		a, err := NewAppliance(ApplianceConfig{
			Name:  applianceName(n),
			Panel: cfg.Panel, Dir: filepath.Join(cfg.DataDir, fmt.Sprintf("appliance-%d", n)),
			Clock: clk, Hidden: cfg.Hidden, RevealFor: cfg.RevealFor, BlankAfter: cfg.BlankAfter,
			Demo: true, Logger: cfg.Logger, Server: s.serverURL(), Version: cfg.Version, OfferLifetime: cfg.OfferLifetime,
			TPMDir: tpmDir(cfg.TPMDir, n),
		})
		if err != nil {
			s.close()
			return nil, err
		}
		s.appliances = append(s.appliances, a)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.close()
		return nil, &ListenError{Part: PartPage, Addr: cfg.Listen, Err: err}
	}
	s.ln = ln
	return s, nil
}

// The parts of the simulator that listen, for ListenError.
const (
	PartPage   = "page"   // the simulator page and /sim API (Config.Listen)
	PartServer = "server" // the registration server (Config.ServerListen)
)

// ListenError says that a part of the simulator could not listen on its
// address (most often: another program uses it).
type ListenError struct {
	// Part is PartPage or PartServer.
	Part string
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("%s: listen on %s: %v", e.Part, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// checkServerURL reports whether u can be an external server's URL.
func checkServerURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("server: %q is not an http:// or https:// URL", u)
	}
	return nil
}

func (s *System) serverURL() string {
	if s.cfg.Server != "" {
		return s.cfg.Server
	}
	if s.server == nil {
		return ""
	}
	return s.server.URL()
}

// SetReady sets the function Run calls with the page's URL once it
// serves.
func (s *System) SetReady(f func(url string)) { s.cfg.Ready = f }

// ConsoleURL returns the registration server's console URL, or "" when
// the simulator runs without one.
func (s *System) ConsoleURL() string { return s.consoleURL }

// AdminPassword returns the console admin's password ("" without a
// server).
func (s *System) AdminPassword() string {
	if s.server == nil {
		return ""
	}
	return s.server.password
}

// URL returns the page's URL.
func (s *System) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Appliances returns the simulated appliances.
func (s *System) Appliances() []*Appliance { return s.appliances }

// ntsCAFile, in the data directory, is the CA of the fake NTS servers.
const ntsCAFile = "nts-ca.pem"

// fakeNTP starts the fake NTP servers and returns a maker of disciplined
// clocks polling them.
func (s *System) fakeNTP() (func(n int) (clock.Clock, error), error) {
	n := s.cfg.NTPServers
	if n == 0 {
		n = 3
	}
	var addrs []string
	var caFile string
	var cert tls.Certificate
	if s.cfg.NTS {
		ca, err := ntpsim.NewCA()
		if err == nil {
			cert, err = ca.Issue("127.0.0.1")
		}
		if err == nil {
			caFile = filepath.Join(s.cfg.DataDir, ntsCAFile)
			err = os.WriteFile(caFile, ca.PEM(), 0o644)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("fake NTS servers' CA: %w", err)
		}
	}
	for range n {
		var srv *ntpsim.UDPServer
		var err error
		if s.cfg.NTS {
			srv, err = ntpsim.ListenNTS("127.0.0.1:0", s.cfg.NTPOffset, cert)
		} else {
			srv, err = ntpsim.ListenUDP("127.0.0.1:0", s.cfg.NTPOffset)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("fake NTP server: %w", err)
		}
		s.ntp = append(s.ntp, srv)
		if s.cfg.NTS {
			addrs = append(addrs, srv.NTSServer())
		} else {
			addrs = append(addrs, srv.Addr())
		}
	}
	return func(i int) (clock.Clock, error) {
		dir := filepath.Join(s.cfg.DataDir, fmt.Sprintf("appliance-%d", i))
		cfg := clock.Config{Servers: addrs, NTSCAFile: caFile, DriftFile: filepath.Join(dir, "drift.json")}
		env := clock.Env{Logger: s.cfg.Logger.With("appliance", applianceName(i))}
		if s.cfg.RTC {
			// The allowance covers the simulated drift, as an operator
			// would pick it from the part's datasheet.
			cfg.RTCPPM = max(clock.DefaultRTCPPM, math.Abs(s.cfg.RTCDriftPPM))
			offset := s.cfg.NTPOffset
			env.RTC = &clock.FileRTC{
				Path:     filepath.Join(dir, "rtc.sim"),
				DriftPPM: s.cfg.RTCDriftPPM,
				Now:      func() time.Time { return time.Now().Add(offset) },
			}
		}
		c, err := clock.New(cfg, env)
		if err != nil {
			return nil, err
		}
		s.clocks = append(s.clocks, c)
		return c, nil
	}, nil
}

func (s *System) close() {
	for _, srv := range s.ntp {
		srv.Close()
	}
	for _, a := range s.appliances {
		a.close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.server != nil {
		s.server.asm.Close()
	}
}

// Run serves the page and runs every appliance until ctx is done.
func (s *System) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make([]error, len(s.appliances)+1)
	for i, a := range s.appliances {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.Run(ctx) }()
	}
	for _, c := range s.clocks {
		wg.Go(func() { c.Run(ctx) })
	}
	var serr error
	if s.server != nil {
		wg.Go(func() { serr = s.server.run(ctx) })
		for i, a := range s.appliances {
			if !s.cfg.NoAutoPair {
				s.autoPairing.Add(1)
				wg.Go(func() { defer s.autoPairing.Add(-1); s.autoPair(ctx, i, a) })
			}
		}
	}
	defer func() {
		for _, srv := range s.ntp {
			srv.Close()
		}
	}()
	go func() {
		<-ctx.Done()
		wallclock.Within(context.Background(), 5*time.Second, srv.Shutdown)
	}()
	if s.cfg.Ready != nil {
		s.cfg.Ready(s.URL())
	}
	if err := srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		errs[len(s.appliances)] = err
	}
	wg.Wait()
	return errors.Join(append(errs, serr)...)
}

// autoPair pairs appliance i with the in-process server as an admin would:
// it reads the code the appliance shows and enters it with the name the
// page shows. It does so once per appliance: an appliance found paired, or
// one paired on an earlier run, is left alone, so one unpaired later in
// the console (or with Forget pairing) waits with its code for a person.
func (s *System) autoPair(ctx context.Context, i int, a *Appliance) {
	marker := filepath.Join(a.dir, autoPairedFile)
	if _, err := os.Stat(marker); err == nil {
		return
	}
	done := func() {
		if err := os.WriteFile(marker, []byte("paired by the simulator; remove to pair automatically again\n"), 0o600); err != nil {
			s.cfg.Logger.Warn("simulator: recording the automatic pairing", "appliance", a.Name, "err", err)
		}
	}
	if a.client.Status().Paired {
		done()
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	name := a.Name
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if a.client.Status().Paired {
			done() // paired by a person meanwhile
			return
		}
		_, code, waiting := a.client.PairingCode()
		if !waiting || code == "" {
			continue
		}
		if _, err := s.server.srv.Appliances().Pair(ctx, code, name); err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Debug("simulator: pairing", "appliance", a.Name, "err", err)
			}
			if errors.Is(err, appliance.ErrNameTaken) {
				name = fmt.Sprintf("%s (%s)", a.Name, a.client.KeyID()[:8])
			}
			continue
		}
		s.cfg.Logger.Info("simulator: appliance paired", "appliance", a.Name, "name", name)
		done()
		return
	}
}

// ForgetPairing makes the in-process server forget appliance i, as
// Forget on the console's appliance page does: at its next sync (at once,
// the server wakes it) the appliance is refused as not paired, keeps its
// accounts and shows a pairing code to enter on the console. The
// simulator does not pair it again by itself.
func (s *System) ForgetPairing(ctx context.Context, i int) error {
	if s.server == nil {
		return errors.New("the simulator runs without a registration server: nothing to forget")
	}
	if i < 0 || i >= len(s.appliances) {
		return fmt.Errorf("no appliance %d (have %d)", i, len(s.appliances))
	}
	a := s.appliances[i]
	st := a.client.Status()
	if !st.Paired {
		return fmt.Errorf("%s is not paired", a.Name)
	}
	if err := s.server.srv.Appliances().Forget(ctx, st.ApplianceID); err != nil && !errors.Is(err, appliance.ErrNoAppliance) {
		return err
	}
	s.cfg.Logger.Info("simulator: pairing forgotten", "appliance", a.Name)
	return nil
}

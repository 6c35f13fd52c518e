package clock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/osc"
)

// simTimebase is an oscillator following the network's virtual time.
type simTimebase struct {
	net *ntpsim.Network
	osc *osc.Oscillator
}

func (t simTimebase) Local() time.Duration {
	t.osc.AdvanceTo(t.net.Elapsed())
	return t.osc.Local()
}
func (t simTimebase) Suspended() time.Duration { return t.osc.Suspended() }

var start = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

func newSim(t *testing.T, servers []ntpsim.Server, extra ...string) (*clock.Engine, *ntpsim.Network, *bytes.Buffer) {
	t.Helper()
	n := ntpsim.NewNetwork(start, 1)
	cfg := clock.DefaultConfig()
	cfg.Servers = nil
	for _, s := range servers {
		n.Add(s)
		cfg.Servers = append(cfg.Servers, s.Address)
	}
	cfg.Servers = append(cfg.Servers, extra...)
	var logs bytes.Buffer
	e := clock.NewEngine(cfg, clock.EngineConfig{
		Epoch:    start,
		Timebase: simTimebase{n, osc.New(osc.Config{PPM: 30})},
		Dialer:   n.Dial,
		Sleep:    n.Sleep,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	return e, n, &logs
}

// runFor runs rounds as they fall due for d of virtual time.
// The oscillator's 30 ppm is far below the millisecond slack added.
func runFor(e *clock.Engine, n *ntpsim.Network, d time.Duration) {
	end := n.Elapsed() + d
	for n.Elapsed() < end {
		if next, local := e.NextRound(), e.Local(); local < next {
			n.Advance(min(next-local+time.Millisecond, end-n.Elapsed()))
			continue
		}
		e.Round(context.Background())
	}
}

func lan(addr string) ntpsim.Server {
	return ntpsim.Server{Address: addr, BaseDelay: 100 * time.Microsecond, Jitter: 100 * time.Microsecond}
}

func TestEngineKissOfDeath(t *testing.T) {
	rate := lan("rate.example:123")
	rate.Kiss, rate.KissInterval = "RATE", time.Minute
	deny := lan("deny.example:123")
	deny.Kiss = "DENY"
	e, n, logs := newSim(t, []ntpsim.Server{lan("a.example:123"), lan("b.example:123"), rate, deny})
	runFor(e, n, time.Hour)

	st := e.Status()
	if st.State != clock.Synced {
		t.Fatalf("state %v %q, want SYNCED", st.State, st.Reason)
	}
	byName := map[string]clock.ServerStatus{}
	for _, s := range st.Servers {
		byName[s.Address] = s
	}
	if d := byName["deny.example:123"]; !d.SetAside || !strings.Contains(d.Error, "DENY") {
		t.Errorf("deny server: %+v, want set aside for DENY", d)
	}
	if q := n.Queries("deny.example:123"); q != 1 {
		t.Errorf("deny server got %d queries, want 1", q)
	}
	// The rate-limited server is polled no faster than it allows: about
	// once a minute plus the bucket, not every 16 s.
	if q := n.Queries("rate.example:123"); q > 80 {
		t.Errorf("rate-limited server got %d queries in an hour, want it slowed down", q)
	}
	if c := strings.Count(logs.String(), "DENY"); c != 1 {
		t.Errorf("DENY logged %d times, want once:\n%s", c, logs.String())
	}
}

func TestEngineUnresolvableServer(t *testing.T) {
	e, n, logs := newSim(t, []ntpsim.Server{lan("a.example:123"), lan("b.example:123")}, "nowhere.invalid")
	runFor(e, n, 10*time.Minute)
	st := e.Status()
	if st.State != clock.Synced {
		t.Fatalf("state %v %q, want SYNCED with the two good servers", st.State, st.Reason)
	}
	bad := st.Servers[2]
	if !bad.SetAside || !strings.Contains(bad.Error, "cannot resolve") {
		t.Errorf("unresolvable server: %+v", bad)
	}
	if c := strings.Count(logs.String(), "nowhere.invalid"); c != 1 {
		t.Errorf("unresolvable server logged %d times, want once:\n%s", c, logs.String())
	}
}

func TestEngineFalsetickerStatusJSON(t *testing.T) {
	ft := lan("liar.example:123")
	ft.Error = time.Hour
	e, n, _ := newSim(t, []ntpsim.Server{lan("a.example:123"), lan("b.example:123"), lan("c.example:123"), ft})
	runFor(e, n, 10*time.Minute)
	b, err := json.Marshal(e.Status())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		State   string `json:"state"`
		Servers []struct {
			Address     string  `json:"address"`
			Offset      float64 `json:"offset_s"`
			Reach       int     `json:"reach"`
			Falseticker bool    `json:"falseticker"`
			Selected    bool    `json:"selected"`
		} `json:"servers"`
		Frequency float64 `json:"frequency_ppm"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.State != "SYNCED" {
		t.Errorf("state %q, want SYNCED: %s", st.State, b)
	}
	liar := st.Servers[3]
	if !liar.Falseticker || liar.Selected || liar.Offset < 3599 || liar.Offset > 3601 || liar.Reach == 0 {
		t.Errorf("liar: %+v, want falseticker 1 h ahead", liar)
	}
	if !st.Servers[0].Selected {
		t.Errorf("a: %+v, want selected", st.Servers[0])
	}
	if st.Frequency < 29 || st.Frequency > 31 {
		t.Errorf("frequency %.3f ppm, want about 30", st.Frequency)
	}
}

func TestServiceAgainstUDPServers(t *testing.T) {
	var addrs []string
	for range 3 {
		s, err := ntpsim.ListenUDP("127.0.0.1:0", 0)
		if err != nil {
			t.Skipf("no UDP on 127.0.0.1: %v", err)
		}
		defer s.Close()
		addrs = append(addrs, s.Addr())
	}
	dir := t.TempDir()
	cfg := clock.Config{Servers: addrs, MinPoll: time.Second, MaxPoll: 4 * time.Second, DriftFile: filepath.Join(dir, "drift")}
	// Start two minutes off, as a Pi without RTC would.
	svc, err := clock.New(cfg, clock.Env{Epoch: time.Now().Add(-2 * time.Minute), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if r := svc.Now(); r.State != clock.Unsynced {
		t.Fatalf("before Run: %v, want UNSYNCED", r.State)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := svc.Status()
		if st.State == clock.Synced && st.FrequencyKnown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not SYNCED with a frequency after 20 s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := svc.Now()
	if d := r.Time.Sub(time.Now()).Abs(); d > 50*time.Millisecond || d > r.Bound+10*time.Millisecond {
		t.Errorf("reading %v off the host clock (bound %v)", d, r.Bound)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	d, err := clock.LoadDrift(cfg.DriftFile)
	if err != nil {
		t.Fatalf("drift file after shutdown: %v", err)
	}
	if d.LastGood.IsZero() || d.LastGood.After(time.Now()) {
		t.Errorf("last good time %v, want a past time", d.LastGood)
	}
}

func TestServiceCorruptDriftFileSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drift")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, err := clock.New(clock.Config{Servers: []string{"127.0.0.1:1"}, DriftFile: path}, clock.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New with a corrupt drift file: %v", err)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("corrupt drift file not set aside: %v", err)
	}
	if !strings.Contains(logs.String(), "drift file set aside") {
		t.Errorf("corrupt drift file not logged:\n%s", logs.String())
	}
}

func TestDriftRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drift")
	want := clock.Drift{Frequency: -12.5, Skew: 0.02, LastGood: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	if err := clock.SaveDrift(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := clock.LoadDrift(path)
	if err != nil || got != want {
		t.Fatalf("LoadDrift = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{`{"frequency_ppm": 900}`, `{"skew_ppm": -1}`, `{"last_good_time": "1970-01-01T00:00:00Z"}`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := clock.LoadDrift(path); err == nil {
			t.Errorf("LoadDrift(%s) = nil error", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := clock.DefaultConfig()
	tests := []struct {
		name string
		edit func(*clock.Config)
		want string
	}{
		{"default", func(*clock.Config) {}, ""},
		{"host:port", func(c *clock.Config) { c.Servers = []string{"127.0.0.1:1123", "[::1]:123", "ntp.example"} }, ""},
		{"no servers", func(c *clock.Config) { c.Servers = nil }, "clock.servers: no servers"},
		{"empty name", func(c *clock.Config) { c.Servers = []string{""} }, "empty server name"},
		{"space", func(c *clock.Config) { c.Servers = []string{"ntp .example"} }, "space"},
		{"bad port", func(c *clock.Config) { c.Servers = []string{"ntp.example:99999"} }, "port"},
		{"duplicate", func(c *clock.Config) { c.Servers = []string{"a", "a"} }, "listed twice"},
		{"negative ppm", func(c *clock.Config) { c.MaxClockError = -1 }, "clock.max_clock_error_ppm"},
		{"tiny holdover", func(c *clock.Config) { c.HoldoverLimit = time.Millisecond }, "clock.holdover_limit"},
		{"poll order", func(c *clock.Config) { c.MinPoll, c.MaxPoll = time.Minute, time.Second*30 }, "clock.max_poll"},
		{"min poll", func(c *clock.Config) { c.MinPoll = time.Millisecond }, "clock.min_poll"},
		{"nts", func(c *clock.Config) {
			c.Servers = []string{"nts://time.example", "nts://[::1]:4460", "nts://10.0.0.1:4461"}
		}, ""},
		{"nts and plain", func(c *clock.Config) { c.Servers = []string{"nts://time.example", "ntp.example"} }, ""},
		{"nts bad port", func(c *clock.Config) { c.Servers = []string{"nts://time.example:0"} }, `clock.servers: "nts://time.example:0": port "0" is not 1..65535`},
		{"nts no host", func(c *clock.Config) { c.Servers = []string{"nts://"} }, "empty host"},
		{"nts path", func(c *clock.Config) { c.Servers = []string{"nts://time.example/x"} }, "slash"},
		{"require without nts", func(c *clock.Config) { c.RequireAuthenticated = new(true) }, "clock.require_authenticated: true, but no server is nts://"},
		{"missing CA file", func(c *clock.Config) { c.NTSCAFile = "/nonexistent/ca.pem" }, "clock.nts_ca_file: open /nonexistent/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Validate() = %q, want one line", err)
			}
		})
	}
}

// TestConfigValidateReportsEveryProblem: several mistakes are reported at
// once, one line each, the ppm and poll order with the rest.
func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := clock.DefaultConfig()
	c.Servers = []string{"a", "b c", "a"}
	c.MaxClockError = 900
	c.HoldoverLimit = -time.Second
	c.MinPoll, c.MaxPoll = time.Hour, time.Minute
	err := c.Validate()
	want := []string{"clock.servers: \"b c\"", "clock.servers: \"a\" listed twice", "clock.max_clock_error_ppm", "clock.holdover_limit", "clock.max_poll: 1m0s is under clock.min_poll"}
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Validate() = %d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
}

// TestEngineUnusableRepliesSetAside: a server that answers with replies
// failing Validate (here stratum 16, unsynchronised) never moves the time,
// is set aside after a few rounds instead of being burst at forever, and
// is logged once per reason.
func TestEngineUnusableRepliesSetAside(t *testing.T) {
	bad := lan("unsynced.example:123")
	bad.Stratum = 16
	e, n, logs := newSim(t, []ntpsim.Server{lan("a.example:123"), lan("b.example:123"), lan("c.example:123"), bad})
	runFor(e, n, 2*time.Hour)
	st := e.Status()
	if st.State != clock.Synced {
		t.Fatalf("state %v %q, want SYNCED with the three good servers", st.State, st.Reason)
	}
	s := st.Servers[3]
	if !s.SetAside || !strings.Contains(s.Error, "replies unusable") || s.Selected {
		t.Errorf("unusable server: %+v, want set aside, not selected", s)
	}
	// Three rounds of bursts of 4 before it is set aside; then one query
	// per max_poll (1024 s) at most: far fewer than bursting every round.
	if q := n.Queries("unsynced.example:123"); q > 30 {
		t.Errorf("unusable server got %d queries in 2 h, want it set aside", q)
	}
	if c := strings.Count(logs.String(), "unsynced.example"); c > 3 {
		t.Errorf("unusable server logged %d times, want once per reason:\n%s", c, logs.String())
	}
}

// TestSaveDriftWritesWhatLoadDriftReads is the writer's half of the drift
// file's contract: whatever the discipline measured, a slow or busy machine
// included (a skew of 755 ppm was written once and then refused), the file
// written opens.
func TestSaveDriftWritesWhatLoadDriftReads(t *testing.T) {
	last := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   clock.Drift
		want clock.Drift
	}{
		{"plausible", clock.Drift{Frequency: 12.5, Skew: 3, LastGood: last}, clock.Drift{Frequency: 12.5, Skew: 3, LastGood: last}},
		{"skew above 500 ppm", clock.Drift{Frequency: 12.5, Skew: 755, LastGood: last}, clock.Drift{Frequency: 12.5, Skew: 500, LastGood: last}},
		{"skew not a number", clock.Drift{Frequency: 1, Skew: math.NaN()}, clock.Drift{Frequency: 1, Skew: 500}},
		{"negative skew", clock.Drift{Frequency: 1, Skew: -2}, clock.Drift{Frequency: 1, Skew: 500}},
		{"frequency beyond 500 ppm", clock.Drift{Frequency: 5471, Skew: 2, LastGood: last}, clock.Drift{Skew: 500, LastGood: last}},
		{"frequency infinite", clock.Drift{Frequency: math.Inf(1), Skew: 2}, clock.Drift{Skew: 500}},
		{"last good time implausible", clock.Drift{Frequency: 1, Skew: 2, LastGood: time.Unix(0, 0).UTC()}, clock.Drift{Frequency: 1, Skew: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "drift")
			if err := clock.SaveDrift(path, tt.in); err != nil {
				t.Fatal(err)
			}
			got, err := clock.LoadDrift(path)
			if err != nil {
				t.Fatalf("LoadDrift after SaveDrift(%+v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("LoadDrift = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestServiceImplausibleDriftKeepsFrequency: a drift file whose skew is
// implausible is set aside with a warning, but the learned frequency and the
// last good time in it are still used.
func TestServiceImplausibleDriftKeepsFrequency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drift")
	if err := os.WriteFile(path, []byte(`{"frequency_ppm": 12.5, "skew_ppm": 755, "last_good_time": "2026-05-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, err := clock.New(clock.Config{Servers: []string{"127.0.0.1:1"}, DriftFile: path}, clock.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("New with an implausible drift file: %v", err)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("implausible drift file not set aside: %v", err)
	}
	for _, want := range []string{"level=WARN", "drift file set aside", "skew 755 ppm is outside 0..500", "kept_frequency_ppm=12.5"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestEngineAcquiringCost: on a path with a millisecond of jitter the
// frequency after the quick rounds is too rough for 16 s polls, and rounds
// come early until it is not; a LAN never needs them. The server pays for
// it once, at most acquiringRounds (24) queries more in the first minutes
// (and the early retries of rounds that met a delay spike).
func TestEngineAcquiringCost(t *testing.T) {
	jittery := ntpsim.Server{Address: "ntp1.lan:123", BaseDelay: 3 * time.Millisecond, Spread: time.Millisecond,
		SpikeRate: 0.1, SpikeMean: 15 * time.Millisecond}
	queries := func(s ntpsim.Server, d time.Duration) int {
		e, n, _ := newSim(t, []ntpsim.Server{s})
		runFor(e, n, d)
		return n.Queries(s.Address)
	}
	onLAN := queries(lan("ntp1.lan:123"), 10*time.Minute)
	onJitter := queries(jittery, 10*time.Minute)
	if extra := onJitter - onLAN; extra < 8 || extra > 24+8 {
		t.Errorf("jittery path: %d queries in the first 10 min, %d more than on a LAN; want 8 to 32 more", onJitter, extra)
	}
	t.Logf("queries in the first 10 min: LAN %d, jittery path %d", onLAN, onJitter)
}

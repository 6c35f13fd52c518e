package clock

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/sim/ntpsim"
)

// stillTimebase is an oscillator that does not move: the clock is read at
// the instant it starts.
type stillTimebase struct{}

func (stillTimebase) Local() time.Duration     { return 0 }
func (stillTimebase) Suspended() time.Duration { return 0 }

// netTimebase is a perfect oscillator following a simulated network's
// virtual time.
type netTimebase struct{ n *ntpsim.Network }

func (t netTimebase) Local() time.Duration     { return t.n.Elapsed() }
func (t netTimebase) Suspended() time.Duration { return 0 }

var rtcNow = time.Date(2026, 6, 1, 9, 30, 0, 0, time.UTC)

// TestRTCStartAfterPowerCut starts a clock with no network after a power
// cut: the RTC was set an hour ago, so it begins from the RTC with bound
// = the bound when it was set + ppm × 1 h + 1 s, and shows codes only if
// that is within the holdover limit.
func TestRTCStartAfterPowerCut(t *testing.T) {
	const setBound = 0.002 // s, the clock's bound when it set the RTC
	hourAgo := rtcNow.Add(-time.Hour)
	cases := []struct {
		name      string
		ppm       float64
		limit     time.Duration
		setFile   bool
		rtcSet    bool
		wantState State
		wantBound time.Duration
		wantLog   string
	}{
		{"20 ppm within 5 s", 20, 5 * time.Second, true, true, Holdover,
			2*time.Millisecond + 72*time.Millisecond + time.Second, "started from the RTC"},
		{"500 ppm over 2 s", 500, 2 * time.Second, true, true, Untrusted,
			2*time.Millisecond + 1800*time.Millisecond + time.Second, "started from the RTC"},
		{"never set by this clock", 20, 5 * time.Second, false, true, Unsynced, unbounded, "not used until this clock has set it"},
		{"RTC lost its time", 20, 5 * time.Second, true, false, Unsynced, unbounded, "it lost its time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			now := rtcNow
			rtc := &FileRTC{Path: filepath.Join(dir, "rtc.sim"), Now: func() time.Time { return now }}
			if c.rtcSet {
				now = hourAgo
				if err := rtc.Set(hourAgo); err != nil {
					t.Fatal(err)
				}
				now = rtcNow
			}
			drift := filepath.Join(dir, "drift.json")
			if c.setFile {
				if err := SaveRTCSet(RTCStateFile(drift), RTCSet{At: hourAgo, Bound: setBound}); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			svc, err := New(Config{
				Servers: []string{"127.0.0.1:1"}, DriftFile: drift, RTCPPM: c.ppm, HoldoverLimit: c.limit,
			}, Env{
				Timebase: stillTimebase{},
				Epoch:    rtcNow.Add(-2 * time.Minute), // the Pi's guess after a power cut
				RTC:      rtc,
				Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := svc.Now()
			if r.State != c.wantState || r.Bound != c.wantBound {
				t.Errorf("reading %v bound %v, want %v bound %v", r.State, r.Bound, c.wantState, c.wantBound)
			}
			if r.State.Trusted() != (c.wantState == Holdover) {
				t.Errorf("trusted %v in %v", r.State.Trusted(), r.State)
			}
			if c.wantBound != unbounded {
				if d := r.Time.Sub(rtcNow).Abs(); d > r.Bound {
					t.Errorf("reading %v is %v off UTC, outside its bound %v", r.Time, d, r.Bound)
				}
			}
			if !strings.Contains(logs.String(), c.wantLog) {
				t.Errorf("log lacks %q:\n%s", c.wantLog, logs.String())
			}
		})
	}
}

// TestRTCWrittenAfterSyncedUpdates runs the clock in virtual time: the RTC
// is not written until the clock is SYNCED, then at once, then at most
// every 11 minutes, and not while the clock is in holdover.
func TestRTCWrittenAfterSyncedUpdates(t *testing.T) {
	n := ntpsim.NewNetwork(rtcNow, 1)
	n.Add(ntpsim.Server{Address: "10.0.0.1:123", BaseDelay: 100 * time.Microsecond, Jitter: 100 * time.Microsecond})
	dir := t.TempDir()
	drift := filepath.Join(dir, "drift.json")
	rtc := &FileRTC{Path: filepath.Join(dir, "rtc.sim"), Now: n.Now}
	svc, err := New(Config{Servers: []string{"10.0.0.1:123"}, DriftFile: drift, MinPoll: 16 * time.Second, MaxPoll: 64 * time.Second}, Env{
		Timebase: netTimebase{n},
		Dialer:   n.Dial,
		Sleep:    n.Sleep,
		Epoch:    rtcNow.Add(-2 * time.Minute),
		RTC:      rtc,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// run steps the service for d of virtual time and reports whether the
	// clock was SYNCED whenever the RTC's setting changed.
	lastSet := func() RTCSet {
		s, err := LoadRTCSet(RTCStateFile(drift))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return s
	}
	var writes []time.Duration
	run := func(d time.Duration) {
		end := n.Elapsed() + d
		for n.Elapsed() < end {
			before := lastSet()
			wait, _ := svc.step(ctx)
			if after := lastSet(); after != before {
				if st := svc.Now().State; st != Synced {
					t.Errorf("RTC written at %v while %v", n.Elapsed(), st)
				}
				writes = append(writes, n.Elapsed())
			}
			n.Advance(max(min(wait, end-n.Elapsed()), time.Millisecond))
		}
	}
	if _, err := os.Stat(rtc.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RTC written before any update: %v", err)
	}
	run(30 * time.Minute)
	if len(writes) < 2 {
		t.Fatalf("RTC written %d times in 30 min of SYNCED updates, want at least 2", len(writes))
	}
	for i := 1; i < len(writes); i++ {
		if gap := writes[i] - writes[i-1]; gap < rtcSetEvery {
			t.Errorf("RTC written %v after the last write, want at least %v", gap, rtcSetEvery)
		}
	}
	read, err := rtc.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d := n.Now().Sub(read); d < -time.Second || d > time.Second {
		t.Errorf("RTC reads %v, UTC is %v", read, n.Now())
	}
	if s := lastSet(); s.Bound <= 0 || s.Bound > 1 {
		t.Errorf("kept bound %v s, want the synced clock's (0..1 s)", s.Bound)
	}
	// The network goes: no update, no write, however long.
	n.SetDown(true)
	before := len(writes)
	run(30 * time.Minute)
	if len(writes) != before {
		t.Errorf("RTC written %d times without updates", len(writes)-before)
	}
}

// TestRTCBadDevice: a bad clock.rtc is one line naming the key.
func TestRTCBadDevice(t *testing.T) {
	dir := t.TempDir()
	notRTC := filepath.Join(dir, "not-an-rtc")
	if err := os.WriteFile(notRTC, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), notRTC} {
		cfg := Config{Servers: []string{"127.0.0.1:1"}, DriftFile: filepath.Join(dir, "drift.json"), RTC: path}
		err := cfg.Validate()
		if err == nil {
			_, err = New(cfg, Env{Logger: slog.New(slog.DiscardHandler)})
		}
		if err == nil || !strings.HasPrefix(err.Error(), "clock.rtc: ") || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one line naming clock.rtc and the path", path, err)
		}
	}
	cfg := Config{Servers: []string{"127.0.0.1:1"}, RTCPPM: -1}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "clock.rtc_ppm: -1 is outside 0..500") {
		t.Errorf("negative rtc_ppm: %v", err)
	}
}

// TestFileRTCDrifts: the simulator's RTC runs off by its configured ppm.
func TestFileRTCDrifts(t *testing.T) {
	for _, c := range []struct {
		ppm  float64
		want time.Duration // reading minus UTC after 10^5 s
	}{{0, 0}, {20, 2 * time.Second}, {-50, -5 * time.Second}} {
		now := rtcNow
		rtc := &FileRTC{Path: filepath.Join(t.TempDir(), "rtc"), DriftPPM: c.ppm, Now: func() time.Time { return now }}
		if err := rtc.Set(now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100000 * time.Second)
		got, err := rtc.Read()
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Sub(now); d != c.want {
			t.Errorf("%g ppm: RTC %v off after 10^5 s, want %v", c.ppm, d, c.want)
		}
	}
}

// TestCheckLeavesTheRTCAlone: `totpd clock check` with clock.rtc set runs
// (it neither opens nor writes the RTC, as it writes no state).
func TestCheckLeavesTheRTCAlone(t *testing.T) {
	dir := t.TempDir()
	notRTC := filepath.Join(dir, "rtc")
	if err := os.WriteFile(notRTC, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rtc := &FileRTC{Path: filepath.Join(dir, "rtc.sim")}
	cfg := Config{Servers: []string{"127.0.0.1:1"}, RTC: notRTC}
	if _, err := Check(context.Background(), cfg, Env{Logger: slog.New(slog.DiscardHandler), RTC: rtc}, time.Millisecond); err != nil {
		t.Fatalf("clock check with clock.rtc set: %v", err)
	}
	if _, err := os.Stat(rtc.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("clock check touched the RTC: %v", err)
	}
}

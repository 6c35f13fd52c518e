package system

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
)

// TestSimulatedRTCStartsTheClock: with RTC set, an appliance's clock made
// after a "power cut" begins from its file-backed RTC (set an hour ago by
// an earlier run), which has run RTCDriftPPM fast since: the reading is
// the NTP servers' time (three hours off the host's) within a bound of
// max(20, drift) ppm × 1 h + 1 s, before any NTP reply.
func TestSimulatedRTCStartsTheClock(t *testing.T) {
	const offset = 3 * time.Hour
	dir := t.TempDir()
	appDir := filepath.Join(dir, "appliance-0")
	if err := os.MkdirAll(appDir, 0o700); err != nil {
		t.Fatal(err)
	}
	setAt := time.Now().Add(offset - time.Hour)
	earlier := &clock.FileRTC{Path: filepath.Join(appDir, "rtc.sim"), Now: func() time.Time { return setAt }}
	if err := earlier.Set(setAt); err != nil {
		t.Fatal(err)
	}
	if err := clock.SaveRTCSet(clock.RTCStateFile(filepath.Join(appDir, "drift.json")), clock.RTCSet{At: setAt.Round(time.Second).UTC(), Bound: 0.001}); err != nil {
		t.Fatal(err)
	}
	s := &System{cfg: Config{DataDir: dir, NTPServers: 1, NTPOffset: offset, RTC: true, RTCDriftPPM: 100, Logger: slog.New(slog.DiscardHandler)}}
	t.Cleanup(s.close)
	clockFor, err := s.fakeNTP()
	if err != nil {
		t.Skipf("no UDP on 127.0.0.1: %v", err)
	}
	c, err := clockFor(0)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Now()
	// 1 ms when set + 100 ppm × ~1 h (0.36 s) + 1 s.
	if r.State != clock.Holdover || r.Bound < 1300*time.Millisecond || r.Bound > 1400*time.Millisecond {
		t.Fatalf("reading %v bound %v, want HOLDOVER from the RTC with bound ≈1.36 s", r.State, r.Bound)
	}
	if d := r.Time.Sub(time.Now().Add(offset)).Abs(); d > r.Bound {
		t.Errorf("reading %v off the NTP servers' time, outside its bound %v", d, r.Bound)
	}
}

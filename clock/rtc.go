package clock

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/totpbox/totpbox/internal/fsx"
)

// RTC is a battery-backed real-time clock: it keeps the time, to the
// second, while the appliance has no power. The daemon's is the kernel's
// /dev/rtcN (DeviceRTC); the simulator's is a file (FileRTC).
type RTC interface {
	// Read returns the RTC's time, whole seconds, UTC.
	Read() (time.Time, error)
	// Set sets the RTC to t, rounded to the nearest second.
	Set(t time.Time) error
}

// DefaultRTCPPM is the frequency error in ppm allowed for an RTC when
// clock.rtc_ppm is not set: what a plain 32 kHz crystal (DS1307, PCF8523)
// keeps over a kiosk's temperatures. A temperature-compensated DS3231 keeps
// ±2 ppm from 0 to 40 °C and may be given 3.
const DefaultRTCPPM = 20.0

// rtcResolution is the bound of a reading's rounding: the RTC is set to
// the nearest second (±0.5 s) and read truncated to the second (0..1 s
// behind), so UTC lies within 1 s of its reading plus half a second.
const rtcResolution = time.Second

// rtcSetEvery is the least time between two writes of the RTC, as the
// kernel's 11-minute mode.
const rtcSetEvery = 11 * time.Minute

// RTCSet is what the clock keeps of the RTC's last setting, in a small
// file beside the drift file (rtc.json), so that at start it knows how
// long the RTC has been running free.
type RTCSet struct {
	// At is the time the RTC was set to, UTC.
	At time.Time `json:"set_at"`
	// Bound is the clock's error bound when it set the RTC, in seconds.
	Bound float64 `json:"bound_s"`
}

// RTCStateFile returns the file that keeps the RTC's last setting for a
// drift file: rtc.json in the same directory.
func RTCStateFile(driftFile string) string {
	return filepath.Join(filepath.Dir(driftFile), "rtc.json")
}

// LoadRTCSet reads the RTC's last setting.
func LoadRTCSet(path string) (RTCSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return RTCSet{}, err
	}
	var s RTCSet
	if err := json.Unmarshal(b, &s); err != nil {
		return RTCSet{}, fmt.Errorf("%s: %v", path, err)
	}
	switch {
	case s.At.Before(earliestPlausible) || s.At.After(latestPlausible):
		return RTCSet{}, fmt.Errorf("%s: set_at %s is implausible", path, s.At.Format(time.RFC3339))
	case math.IsNaN(s.Bound) || s.Bound < 0 || s.Bound > syncedBound.Seconds():
		return RTCSet{}, fmt.Errorf("%s: bound_s %g is outside 0..1", path, s.Bound)
	}
	return s, nil
}

// SaveRTCSet writes the RTC's last setting atomically.
func SaveRTCSet(path string, s RTCSet) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

// writeAtomic writes b to path (0644) through a fsynced temporary file
// renamed over it.
func writeAtomic(path string, b []byte) error {
	return fsx.WriteAtomic(path, b, fsx.Options{Perm: 0o644})
}

// RTCStart is where a clock without any NTP reply begins from the RTC.
type RTCStart struct {
	// Time is the best estimate of UTC at the RTC reading.
	Time time.Time
	// Bound is its error bound: the bound when the RTC was set, the RTC's
	// ppm allowance times the time since, and its 1 s resolution.
	Bound time.Duration
}

// RTCStartFrom works out the start from an RTC reading, the RTC's last
// setting and its ppm allowance. It refuses a reading before the last
// setting or before notBefore (the drift file's last good time): an RTC
// that lost its battery restarts in the past.
func RTCStartFrom(read time.Time, last RTCSet, ppm float64, notBefore time.Time) (RTCStart, error) {
	switch {
	case read.Before(last.At.Add(-rtcResolution)):
		return RTCStart{}, fmt.Errorf("RTC reads %s, before it was last set (%s): it lost its time", read.Format(time.RFC3339), last.At.Format(time.RFC3339))
	case !notBefore.IsZero() && read.Add(rtcResolution).Before(notBefore):
		return RTCStart{}, fmt.Errorf("RTC reads %s, before the last good time %s: it lost its time", read.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	age := max(read.Sub(last.At), 0)
	bound := seconds(last.Bound) + seconds(ppm*1e-6*age.Seconds()) + rtcResolution
	return RTCStart{Time: read.Add(rtcResolution / 2), Bound: bound}, nil
}

// FileRTC is a simulated RTC kept in a file: the time it was set to and
// the host time it was set at. It runs DriftPPM fast (negative: slow)
// against Now, so the simulator's appliances find it off after a power
// cut as a real one would be.
type FileRTC struct {
	// Path is the file; a missing one is an RTC never set, which reads
	// 2000-01-01 as a DS3231 without its battery does.
	Path string
	// DriftPPM is how fast the RTC runs, in ppm.
	DriftPPM float64
	// Now is the true time; nil means time.Now.
	Now func() time.Time
}

// fileRTCState is FileRTC's file.
type fileRTCState struct {
	SetTo time.Time `json:"set_to"`
	SetAt time.Time `json:"set_at"`
}

// rtcLostTime is what an RTC reads after losing its battery.
var rtcLostTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (r *FileRTC) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Read returns the simulated RTC's time, truncated to the second.
func (r *FileRTC) Read() (time.Time, error) {
	b, err := os.ReadFile(r.Path)
	if errors.Is(err, os.ErrNotExist) {
		return rtcLostTime, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("rtc: %v", err)
	}
	var st fileRTCState
	if err := json.Unmarshal(b, &st); err != nil {
		return time.Time{}, fmt.Errorf("rtc: %s: %v", r.Path, err)
	}
	run := r.now().Sub(st.SetAt)
	run += seconds(run.Seconds() * r.DriftPPM * 1e-6)
	return st.SetTo.Add(run).Truncate(time.Second).UTC(), nil
}

// Set sets the simulated RTC to t rounded to the second.
func (r *FileRTC) Set(t time.Time) error {
	b, err := json.Marshal(fileRTCState{SetTo: t.Round(time.Second).UTC(), SetAt: r.now().UTC()})
	if err != nil {
		return err
	}
	if err := writeAtomic(r.Path, b); err != nil {
		return fmt.Errorf("rtc: %v", err)
	}
	return nil
}

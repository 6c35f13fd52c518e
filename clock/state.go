// Package clock keeps the appliance's own disciplined time.
//
// The appliance has no RTC and a crystal that drifts tens of ppm, so it does
// not trust the host clock. It reads a raw oscillator (the timebase), samples
// NTP servers against it, picks the servers that agree, estimates the
// oscillator's frequency by regression and serves a reading: UTC time, an
// error bound the true time lies within, and a trust state. Codes are shown
// only while the reading is trusted.
//
// The discipline core ([Discipline]) is pure: it is fed samples and asked for
// a reading at a timebase value, so it runs in virtual time in tests and in
// the simulator's clock bench. [Service] wraps it with real sampling.
package clock

import "time"

// State is the trust state of a reading.
type State int

const (
	// Unsynced means no agreeing majority of servers has been heard since
	// start: the clock knows nothing.
	Unsynced State = iota
	// Synced means the clock was updated recently and its bound is at most
	// one second.
	Synced
	// Holdover means updates stopped but the bound is still within the
	// configured holdover limit: codes are shown, flagged.
	Holdover
	// Untrusted means the clock cannot vouch for its time: the bound is over
	// the limit, servers disagree, a measurement contradicted the prediction,
	// or the machine was suspended.
	Untrusted
)

var stateNames = [...]string{"UNSYNCED", "SYNCED", "HOLDOVER", "UNTRUSTED"}

// String returns the state's name in capitals, as shown in status output.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNKNOWN"
	}
	return stateNames[s]
}

// Trusted reports whether codes may be shown in this state: Synced and
// Holdover only.
func (s State) Trusted() bool { return s == Synced || s == Holdover }

// MarshalText encodes the state as its name, so JSON status carries
// "SYNCED" rather than a number.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return &stateError{string(b)}
}

type stateError struct{ name string }

func (e *stateError) Error() string { return "clock: unknown state " + e.name }

// Reading is what the clock says at one instant.
type Reading struct {
	// Time is the best estimate of UTC.
	Time time.Time
	// Bound is the maximum error of Time: UTC lies within Time ± Bound.
	// It is meaningful only while State is trusted.
	Bound time.Duration
	// State says whether the reading may be used for codes.
	State State
	// Reason says why when the state is not trusted (and, in Holdover, why
	// updates stopped); empty when Synced.
	Reason string
	// Frequency is the estimated frequency error of the timebase in ppm
	// (positive: the oscillator runs fast and gains on UTC).
	Frequency float64
	// Authenticated reports whether the last update came only from
	// NTS-authenticated servers; false while the clock knows nothing.
	Authenticated bool
}

// Clock gives readings. The appliance loop consumes it.
type Clock interface {
	Now() Reading
}

// System is a Clock backed by the host clock, always Synced with bound 0.
// It is for tests and hosts whose system clock is already disciplined.
type System struct{}

// Now returns the host clock's time as a Synced reading with bound 0.
func (System) Now() Reading {
	return Reading{Time: time.Now(), State: Synced}
}

var _ Clock = System{}

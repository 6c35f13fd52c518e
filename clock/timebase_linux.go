//go:build linux

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// rawTimebase reads CLOCK_MONOTONIC_RAW, the oscillator as it is, and
// detects suspend by CLOCK_BOOTTIME running ahead of CLOCK_MONOTONIC.
type rawTimebase struct {
	start     time.Duration
	suspended time.Duration // boottime - monotonic at start
}

// NewTimebase returns the host's raw oscillator: CLOCK_MONOTONIC_RAW on
// Linux, never stepped or slewed, with suspend detection.
func NewTimebase() Timebase {
	t := &rawTimebase{}
	t.start = readClock(unix.CLOCK_MONOTONIC_RAW)
	t.suspended = readClock(unix.CLOCK_BOOTTIME) - readClock(unix.CLOCK_MONOTONIC)
	return t
}

func readClock(id int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		// These clocks exist on every kernel Go supports.
		panic("clock: clock_gettime: " + err.Error())
	}
	return time.Duration(ts.Nano())
}

func (t *rawTimebase) Local() time.Duration {
	return readClock(unix.CLOCK_MONOTONIC_RAW) - t.start
}

func (t *rawTimebase) Suspended() time.Duration {
	return readClock(unix.CLOCK_BOOTTIME) - readClock(unix.CLOCK_MONOTONIC) - t.suspended
}

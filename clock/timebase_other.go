//go:build !linux

package clock

import "time"

// monoTimebase is Go's monotonic clock; suspend is not detected.
type monoTimebase struct{ start time.Time }

// NewTimebase returns the host's monotonic clock. Off Linux there is no raw
// oscillator clock and suspend is not detected.
func NewTimebase() Timebase { return monoTimebase{start: time.Now()} }

func (t monoTimebase) Local() time.Duration     { return time.Since(t.start) }
func (t monoTimebase) Suspended() time.Duration { return 0 }

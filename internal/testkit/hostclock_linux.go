//go:build linux

package testkit

import "golang.org/x/sys/unix"

// hostReadSlack is the longest the three reads of one sample may take; a
// sample whose reads were parted by the scheduler is dropped.
const hostReadSlack = 50_000 // ns

// readHostSample reads CLOCK_REALTIME either side of CLOCK_MONOTONIC_RAW.
func readHostSample() (hostSample, bool) {
	var a, r, b unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &a) != nil ||
		unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &r) != nil ||
		unix.ClockGettime(unix.CLOCK_REALTIME, &b) != nil {
		return hostSample{}, false
	}
	if b.Nano()-a.Nano() > hostReadSlack || b.Nano() < a.Nano() {
		return hostSample{}, false
	}
	real := a.Nano() + (b.Nano()-a.Nano())/2
	return hostSample{raw: r.Nano(), diff: real - r.Nano()}, true
}

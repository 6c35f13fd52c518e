//go:build !linux

package testkit

// readHostSample has no raw oscillator to read apart from the host's
// clock here.
func readHostSample() (hostSample, bool) { return hostSample{}, false }

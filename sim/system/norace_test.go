//go:build !race

package system

// raceEnabled reports whether the race detector is on.
const raceEnabled = false

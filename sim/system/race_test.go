//go:build race

package system

// raceEnabled reports whether the race detector is on: long virtual-time
// runs are cut short under it, which slows every access twentyfold.
const raceEnabled = true

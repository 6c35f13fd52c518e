package daemon

import (
	"os"
	"runtime/debug"
)

// IdleGCPercent is the garbage collector's target (GOGC) of an appliance
// process: the heap may grow by a quarter over what is live before a
// collection, where Go's default lets it grow by as much again, from a
// floor of 4 MiB. An idle appliance allocates a few kilobytes a second (a
// frame a second, the NTP polls), so with the default its heap crept up to
// that floor over the first three minutes, the first collection came only
// then (mapping the collector's own code and buffers), and its resident
// memory grew for five minutes. At 25 the floor is 1 MiB: the first
// collections run in the first seconds and the heap stays near its live
// size. Each costs well under a millisecond of CPU on an idle heap.
const IdleGCPercent = 25

// TuneGC sets the garbage collector of a process that runs appliances
// alone (totpd, or the simulator without a registration server) to
// IdleGCPercent, unless GOGC in its environment sets it already. It
// returns the percentage in force.
func TuneGC() int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(IdleGCPercent)
	return IdleGCPercent
}

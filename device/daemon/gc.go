package daemon

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// IdleGCPercent is the garbage collector's target (GOGC) of an appliance
// process: the heap may grow by a quarter over what is live before a
// collection, where Go's default lets it grow by as much again, from a
// floor of 4 MiB. An idle appliance allocates a few kilobytes a second (a
// frame a second, the NTP polls), so with the default its heap crept up to
// that floor over the first three minutes, the first collection came only
// then (mapping the collector's own code and buffers), and its resident
// memory grew for five minutes. At 25 the floor is 1 MiB and the first
// collections run in the first seconds; after them the pacer's runway
// sets the pace (see IdleGCInterval).
const IdleGCPercent = 25

// IdleGCInterval is how long an appliance process goes without a
// collection: CollectIdle runs one when the runtime ran none for that
// long. Whatever GOGC says, Go's pacer lets the heap take in at least
// 1 MiB of new objects between collections (the sweeper's runway), and an
// idle appliance (0.7 MiB live, about 5 KiB allocated a second) takes about
// two minutes for that: each cycle its heap spread over pages it had
// not used, and its resident memory grew for the first four minutes,
// then rose and fell by a few hundred KiB as the scavenger returned the
// pages each collection freed. Collected every 30 s, the heap grows by
// under 200 KiB between collections, reaches the pages it keeps using
// within the first minute and stays on them. A collection of the idle
// heap takes 2–3 ms of CPU on a shared x86 core (GODEBUG=gctrace=1), two
// a minute at most: under 0.01 % of a core.
const IdleGCInterval = 30 * time.Second

// TuneGC sets the garbage collector of a process that runs appliances
// alone (totpd, or the simulator without a registration server) to
// IdleGCPercent and starts CollectIdle until ctx is done, unless GOGC in
// its environment sets the collector already. It returns the percentage
// in force.
func TuneGC(ctx context.Context) int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(IdleGCPercent)
	go CollectIdle(ctx)
	return IdleGCPercent
}

// CollectIdle runs a garbage collection at the end of every
// IdleGCInterval in which the runtime ran none, until ctx is done: a
// busy process, collecting on its own, gets no more collections.
func CollectIdle(ctx context.Context) {
	collectIdle(ctx, IdleGCInterval, gcCycles, runtime.GC)
}

// collectIdle calls collect every interval in which cycles did not move.
func collectIdle(ctx context.Context, interval time.Duration, cycles func() uint64, collect func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := cycles()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cycles() == last {
			collect()
		}
		last = cycles()
	}
}

// gcCycles returns how many garbage collections the process has run.
func gcCycles() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

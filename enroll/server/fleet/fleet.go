// Package fleet carries notices between the server replicas that share
// one store, so a change written through one replica takes effect on all
// of them at once: it wakes the long-polls they hold and drops what they
// cache.
//
// A Bus has handlers by kind ("app", "user", ...). Publish calls this
// process's handler at once and sends the notice to the other replicas
// through the store's LISTEN/NOTIFY (store.Notices); Run listens for
// theirs and calls the same handlers. With a store that is not shared
// (SQLite) a Bus is in-process only and always live.
//
// Notices are hints, never state: a handler re-reads the store. When the
// listening connection drops, notices are lost, so the Bus reports it is
// not Live (held long-polls then poll the store) and, once listening
// again, calls every Resync hook so nothing missed stays stale. A notice
// this replica cannot send waits and is sent again, in order; when more
// wait than the queue holds, the others are told to resync once sending
// works again, as they cannot be told what was dropped.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Backoff bounds between attempts to listen again after a failure.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// queueSize bounds the notices waiting to be sent; beyond it they are
// dropped (and counted), and the other replicas are told to resync.
const queueSize = 4096

// kindResync is the notice that makes every other replica run its
// Resync hooks: notices of this one were dropped.
const kindResync = "resync"

// Bus carries notices between replicas. The zero value is not usable:
// create one with New. It is safe for concurrent use.
type Bus struct {
	remote store.Notices // nil: in-process only
	log    *slog.Logger
	origin string // this process's id, to skip its own notices

	mu       sync.RWMutex
	handlers map[string]func(arg string)
	resyncs  []func()

	live     atomic.Bool
	out      chan string
	overflow atomic.Bool // notices were dropped: the others must resync
	dropped  atomic.Int64
	sent     atomic.Int64
	heard    atomic.Int64
}

// New returns a Bus over st: across replicas when st implements
// store.Notices, else in-process only. A nil logger means slog.Default().
func New(st any, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:])
	bus := &Bus{log: log, origin: hex.EncodeToString(b[:]), handlers: make(map[string]func(string))}
	if n, ok := st.(store.Notices); ok {
		bus.remote = n
		bus.out = make(chan string, queueSize)
	} else {
		bus.live.Store(true)
	}
	return bus
}

// Shared reports whether notices reach other replicas (the store is
// shared).
func (b *Bus) Shared() bool { return b.remote != nil }

// Live reports whether no notice from another replica can be missed now:
// always for an in-process Bus, while Run listens for a shared one.
func (b *Bus) Live() bool { return b.live.Load() }

// Handle sets the handler of kind; notices of kinds without a handler are
// ignored. Kinds are single words.
func (b *Bus) Handle(kind string, fn func(arg string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers[kind] = fn
}

// OnResync adds a hook Run calls each time it starts listening again after
// a failure: notices sent meanwhile were lost, so the hook wakes everything
// and drops every cache.
func (b *Bus) OnResync(fn func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resyncs = append(b.resyncs, fn)
}

// Publish calls kind's handler with arg in this process and queues the
// notice for the other replicas. It never blocks on the store.
func (b *Bus) Publish(kind, arg string) {
	b.dispatch(kind, arg)
	if b.remote == nil {
		return
	}
	select {
	case b.out <- b.origin + " " + kind + " " + arg:
	default:
		b.dropped.Add(1)
		b.overflow.Store(true)
	}
}

func (b *Bus) dispatch(kind, arg string) {
	b.mu.RLock()
	fn := b.handlers[kind]
	b.mu.RUnlock()
	if fn != nil {
		fn(arg)
	}
}

// receive handles one payload heard from the store.
func (b *Bus) receive(payload string) {
	origin, rest, ok := strings.Cut(payload, " ")
	if !ok || origin == b.origin {
		return
	}
	kind, arg, _ := strings.Cut(rest, " ")
	b.heard.Add(1)
	if kind == kindResync {
		b.log.Info("another replica dropped notices; dropping caches and waking held long-polls")
		b.resync()
		return
	}
	b.dispatch(kind, arg)
}

func (b *Bus) resync() {
	b.mu.RLock()
	hooks := append([]func(){}, b.resyncs...)
	b.mu.RUnlock()
	for _, fn := range hooks {
		fn()
	}
}

// Stats are a Bus's counters since New.
type Stats struct {
	Sent, Heard, Dropped int64
}

// Stats returns the Bus's counters.
func (b *Bus) Stats() Stats {
	return Stats{Sent: b.sent.Load(), Heard: b.heard.Load(), Dropped: b.dropped.Load()}
}

// Run sends this replica's notices and listens for the others' until ctx
// is done, listening again after each failure. It returns at once for an
// in-process Bus.
func (b *Bus) Run(ctx context.Context) {
	if b.remote == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { b.send(ctx) })
	defer wg.Wait()
	backoff := minBackoff
	first := true
	for ctx.Err() == nil {
		start := time.Now()
		err := b.remote.Listen(ctx, func() {
			b.live.Store(true)
			if !first {
				b.log.Info("listening for other replicas' notices again")
				b.resync()
			}
			first = false
		}, b.receive)
		wasLive := b.live.Swap(false)
		if ctx.Err() != nil {
			return
		}
		if wasLive {
			b.log.Warn("stopped hearing other replicas' notices; held long-polls poll the store", "err", err)
		}
		if time.Since(start) > time.Minute {
			backoff = minBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// send sends queued notices, in order, until ctx is done. A notice that
// cannot be sent is tried again with backoff, holding back those behind
// it; once one is sent after the queue overflowed, a resync notice
// follows.
func (b *Bus) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-b.out:
			if !b.deliver(ctx, p) {
				return
			}
			if b.overflow.Swap(false) && !b.deliver(ctx, b.origin+" "+kindResync) {
				return
			}
		}
	}
}

// deliver sends p, trying again until it is sent; false when ctx ends
// first.
func (b *Bus) deliver(ctx context.Context, p string) bool {
	backoff := minBackoff
	for failed := false; ; failed = true {
		err := wallclock.Within(ctx, 5*time.Second, func(ctx context.Context) error { return b.remote.Notify(ctx, p) })
		if err == nil {
			b.sent.Add(1)
			if failed {
				b.log.Info("sending notices to other replicas again")
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !failed {
			b.log.Warn("notice not sent to other replicas; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Send sends one notice of kind to the servers sharing st, from a process
// that runs no Bus (totpserver's subcommands). It does nothing when st
// is not shared.
func Send(ctx context.Context, st any, kind, arg string) error {
	n, ok := st.(store.Notices)
	if !ok {
		return nil
	}
	return n.Notify(ctx, "cli "+kind+" "+arg)
}

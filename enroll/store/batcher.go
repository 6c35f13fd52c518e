package store

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// UseBatcher gathers the RecordUse calls of concurrent verifies into
// Store.RecordUses transactions (group commit). A call made while no batch
// is being written is written by the calling goroutine, after letting the
// other runnable goroutines run once (no timer: an idle server adds no
// wait); calls arriving while batches are in flight queue, and the next
// batch takes them all (up to a maximum). Each call still gets the
// result of its own conditional update, so a code is accepted at most
// once however many calls carry it, batched or not.
//
// UseBatcher is safe for concurrent use. The zero value is not usable; see
// NewUseBatcher.
type UseBatcher struct {
	st       UseRecorder
	max      int
	inFlight int

	mu      sync.Mutex
	queue   []*useCall
	running int // batches being written, at most inFlight
}

type useCall struct {
	u     UseStep
	ctx   context.Context
	taken bool
	err   error
	done  chan struct{}
}

// UseRecorder records accepted codes in groups: what a UseBatcher
// writes to. Every Store is one.
type UseRecorder interface {
	// RecordUses is Store.RecordUses.
	RecordUses(ctx context.Context, us []UseStep) (errs []error)
}

// UseBatchTimeout bounds the time a batch of uses may take. A batch does
// not stop when one caller gives up: others wait for the same transaction.
const UseBatchTimeout = 30 * time.Second

// NewUseBatcher returns a batcher writing to st. SQLite has one writer, so
// its batches are written one at a time (up to 256 uses each); PostgreSQL
// takes several batches at once (8, of up to 64 uses each), so its
// connections keep working while one batch commits.
func NewUseBatcher(st UseRecorder) *UseBatcher {
	b := &UseBatcher{st: st, max: 64, inFlight: 8}
	if s, ok := st.(*sqlStore); ok {
		if _, ok := s.d.(sqliteDialect); ok {
			b.max, b.inFlight = 256, 1
		}
	}
	return b
}

// RecordUse is Store.RecordUse through the batcher. When ctx ends before
// the use is taken into a batch, it is dropped and RecordUse returns the
// context's error; once taken, RecordUse waits for the batch's result.
func (b *UseBatcher) RecordUse(ctx context.Context, u UseStep) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", recordUseOp, err)
	}
	c := &useCall{u: u, ctx: ctx, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := b.running < b.inFlight
	if lead {
		b.running++
	}
	b.mu.Unlock()
	if lead {
		b.lead(c)
		return c.err
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !c.taken {
		if i := slices.Index(b.queue, c); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
		}
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", recordUseOp, ctx.Err())
	}
	b.mu.Unlock()
	<-c.done
	return c.err
}

// lead writes batches until c has its result, then hands its slot to a
// new goroutine when calls are still queued, or frees it.
func (b *UseBatcher) lead(c *useCall) {
	// Let the handlers already running reach the queue before the batch
	// is taken: with every core busy, batches grow from about 1 to 3–7
	// uses. When nothing else is runnable this returns at once, so a
	// lone call waits for nothing.
	runtime.Gosched()
	for {
		if !b.writeOne() {
			// The queue was empty and the slot is freed: c is in a
			// batch another goroutine is writing.
			<-c.done
			return
		}
		select {
		case <-c.done:
			b.mu.Lock()
			if len(b.queue) == 0 {
				b.running--
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			go b.drain()
			return
		default:
		}
	}
}

// drain writes batches until the queue is empty.
func (b *UseBatcher) drain() {
	for b.writeOne() {
	}
}

// writeOne takes up to max queued calls and writes them as one batch. It
// reports false, having freed the caller's slot, when the queue is empty.
func (b *UseBatcher) writeOne() bool {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running--
		b.mu.Unlock()
		return false
	}
	n := min(len(b.queue), b.max)
	batch := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	for _, c := range batch {
		c.taken = true
	}
	b.mu.Unlock()

	us := make([]UseStep, len(batch))
	for i, c := range batch {
		us[i] = c.u
	}
	// The batch belongs to all its callers: none of them cancels it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), UseBatchTimeout)
	errs := b.st.RecordUses(ctx, us)
	cancel()
	for i, c := range batch {
		c.err = errs[i]
		close(c.done)
	}
	return true
}

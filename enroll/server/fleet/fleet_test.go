package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/testkit"
)

// fakeNotices is a shared store's notices in memory: every Notify reaches
// every running Listen; cut ends the running listens with an error. Like
// PostgreSQL's NOTIFY, a Notify never waits for a listener that has
// stopped.
type fakeNotices struct {
	failSends atomic.Bool // Notify fails, as from a replica cut off the database
	mu        sync.Mutex
	listeners map[int]*fakeListener
	next      int
}

type fakeListener struct {
	ch        chan string
	cut, done chan struct{}
}

func newFake() *fakeNotices {
	return &fakeNotices{listeners: map[int]*fakeListener{}}
}

func (f *fakeNotices) Notify(ctx context.Context, p string) error {
	if f.failSends.Load() {
		return errors.New("connection refused")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.listeners {
		select {
		case l.ch <- p:
		case <-l.done: // stopped: it is told no more
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeNotices) Listen(ctx context.Context, listening func(), fn func(string)) error {
	l := &fakeListener{ch: make(chan string, 100), cut: make(chan struct{}), done: make(chan struct{})}
	f.mu.Lock()
	id := f.next
	f.next++
	f.listeners[id] = l
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.listeners, id)
		f.mu.Unlock()
	}()
	defer close(l.done) // first, so a Notify waiting on l under mu lets go
	listening()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.cut:
			return errors.New("connection lost")
		case p := <-l.ch:
			fn(p)
		}
	}
}

func (f *fakeNotices) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.listeners {
		select {
		case <-l.cut:
		default:
			close(l.cut)
		}
	}
}

type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.got = append(r.got, s); r.mu.Unlock() }
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		if g == s {
			return true
		}
	}
	return false
}
func (r *recorder) len() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func TestBusAcrossReplicas(t *testing.T) {
	f := newFake()
	a, b := New(f, testkit.Quiet()), New(f, testkit.Quiet())
	var onA, onB, resyncB recorder
	a.Handle("app", onA.add)
	b.Handle("app", onB.add)
	b.OnResync(func() { resyncB.add("resync") })
	if a.Live() {
		t.Fatal("a shared Bus is live before Run listens")
	}
	testkit.Run(t, func(ctx context.Context) error { a.Run(ctx); return nil })
	testkit.Run(t, func(ctx context.Context) error { b.Run(ctx); return nil })
	testkit.WaitFor(t, 10*time.Second, "both live", func() bool { return a.Live() && b.Live() })

	a.Publish("app", "x1")
	if !onA.has("x1") {
		t.Error("Publish did not call this process's handler at once")
	}
	testkit.WaitFor(t, 10*time.Second, "x1 on B", func() bool { return onB.has("x1") })
	if n := onA.len(); n != 1 {
		t.Errorf("A's handler ran %d times for its own notice, want 1 (its own echo is skipped)", n)
	}
	if resyncB.len() != 0 {
		t.Error("resync on the first listen")
	}

	// The connection drops: B is not live until it listens again, then
	// resyncs because notices may have been lost meanwhile.
	f.cut()
	testkit.WaitFor(t, 10*time.Second, "B resynced", func() bool { return resyncB.len() == 1 && b.Live() })
	a.Publish("app", "x2")
	testkit.WaitFor(t, 10*time.Second, "x2 on B", func() bool { return onB.has("x2") })
	if s := b.Stats(); s.Heard != 2 {
		t.Errorf("B heard %d notices, want 2", s.Heard)
	}
}

func TestBusInProcess(t *testing.T) {
	b := New(struct{}{}, nil)
	if b.Shared() || !b.Live() {
		t.Fatalf("in-process Bus: Shared %v Live %v, want false true", b.Shared(), b.Live())
	}
	var r recorder
	b.Handle("user", r.add)
	b.Publish("user", "alice")
	b.Publish("other", "ignored")
	if !r.has("alice") || r.len() != 1 {
		t.Fatalf("handler got %v", r.got)
	}
	b.Run(context.Background()) // returns at once
}

// TestBusRetriesUnsentNotices: while a replica cannot send (its own
// connections fail, the others still listen), its notices wait and are
// sent in order once it can; past the queue, the others are told to
// resync, since what was dropped cannot be named.
func TestBusRetriesUnsentNotices(t *testing.T) {
	f := newFake()
	a, b := New(f, testkit.Quiet()), New(f, testkit.Quiet())
	var onB, resyncB recorder
	b.Handle("app", onB.add)
	b.OnResync(func() { resyncB.add("resync") })
	testkit.Run(t, func(ctx context.Context) error { a.Run(ctx); return nil })
	testkit.Run(t, func(ctx context.Context) error { b.Run(ctx); return nil })
	testkit.WaitFor(t, 10*time.Second, "both live", func() bool { return a.Live() && b.Live() })

	f.failSends.Store(true)
	a.Publish("app", "x1")
	a.Publish("app", "x2")
	time.Sleep(300 * time.Millisecond) // a few failed sends
	if onB.len() != 0 {
		t.Fatalf("B heard %v while A could not send", onB.got)
	}
	f.failSends.Store(false)
	testkit.WaitFor(t, 10*time.Second, "x1 and x2 on B", func() bool { return onB.len() == 2 })
	if onB.got[0] != "x1" || onB.got[1] != "x2" || resyncB.len() != 0 {
		t.Errorf("B heard %v and resynced %d times, want x1, x2 in order and no resync", onB.got, resyncB.len())
	}

	f.failSends.Store(true)
	for i := range queueSize + 20 { // one more waits in the sender
		a.Publish("app", fmt.Sprint("y", i))
	}
	if s := a.Stats(); s.Dropped < 10 {
		t.Errorf("A dropped %d notices past a full queue, want at least 10", s.Dropped)
	}
	f.failSends.Store(false)
	testkit.WaitFor(t, 20*time.Second, "B resynced after A's queue overflowed", func() bool { return resyncB.len() == 1 })
}

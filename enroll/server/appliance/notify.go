package appliance

import (
	"context"
	"sync"
	"time"
)

// notifier wakes long-polls of one topic (an appliance id, or "key:" and a
// key id for pairing) when something changes for it.
type notifier struct {
	mu     sync.Mutex
	topics map[string]*topic
}

type topic struct {
	ch   chan struct{}
	refs int
}

// watch returns a channel closed at the next notify of key, and a release
// function to call when done waiting. Watch before reading the store, so
// a change written in between is not missed.
func (n *notifier) watch(key string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.topics == nil {
		n.topics = make(map[string]*topic)
	}
	t := n.topics[key]
	if t == nil {
		t = &topic{ch: make(chan struct{})}
		n.topics[key] = t
	}
	t.refs++
	return t.ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		t.refs--
		if t.refs == 0 && n.topics[key] == t {
			delete(n.topics, key)
		}
	}
}

// notify wakes every watcher of key.
func (n *notifier) notify(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.topics[key]; t != nil {
		close(t.ch)
		delete(n.topics, key)
	}
}

// notifyAll wakes every watcher, of every key.
func (n *notifier) notifyAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for key, t := range n.topics {
		close(t.ch)
		delete(n.topics, key)
	}
}

// wake wakes the long-polls of topic held by every replica: at once in
// this process, through the fleet bus in the others.
func (a *API) wake(topic string) { a.bus.Publish(noticeKind, topic) }

// noticeKind is the fleet bus kind of the appliance API's wakes.
const noticeKind = "app"

// pollFallback wakes every held long-poll every PollInterval while the
// fleet bus is not live (the store is shared and the listener is down), so
// each re-reads the store and changes other replicas wrote still arrive.
// While the bus is live it costs nothing: no held request reads the store
// until something changes for it.
func (a *API) pollFallback(ctx context.Context) {
	if a.cfg.PollInterval <= 0 {
		return
	}
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !a.bus.Live() {
				a.notify.notifyAll()
			}
		}
	}
}

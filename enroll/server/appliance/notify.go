package appliance

import "sync"

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

package radius

import (
	"net/netip"
	"sync"
	"time"

	"layeh.com/radius"
)

// replyCache remembers the replies to recent requests, so that a
// retransmission (same source address and port, identifier and Request
// Authenticator) gets the same answer without being handled again.
type replyCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]*cachedReply
	order   []*cachedReply // oldest first
}

// cachedReply is the reply to one request; done is closed once reply is
// set, or once the request failed (reply stays nil).
type cachedReply struct {
	key   string
	at    time.Time
	done  chan struct{}
	reply []byte
}

func newReplyCache(ttl time.Duration) *replyCache {
	return &replyCache{ttl: ttl, entries: make(map[string]*cachedReply)}
}

// replyKey identifies a request for the reply cache.
func replyKey(src netip.AddrPort, p *radius.Packet) string {
	b := make([]byte, 0, 64)
	b = src.AppendTo(b)
	b = append(b, '/', p.Identifier, '/')
	b = append(b, p.Authenticator[:]...)
	return string(b)
}

// begin returns the entry for key and whether it is new: the caller of a
// new entry handles the request and calls finish or abandon; others wait
// for its done.
func (c *replyCache) begin(key string, now time.Time) (*cachedReply, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.entries[key]; ok {
		return e, false
	}
	e := &cachedReply{key: key, at: now, done: make(chan struct{})}
	c.entries[key] = e
	c.order = append(c.order, e)
	return e, true
}

// finish stores the reply of e's request.
func (c *replyCache) finish(e *cachedReply, reply []byte) {
	c.mu.Lock()
	e.reply = reply
	c.mu.Unlock()
	close(e.done)
}

// abandon forgets e, whose request got no answer, so that a
// retransmission is handled afresh.
func (c *replyCache) abandon(key string, e *cachedReply) {
	c.mu.Lock()
	if c.entries[key] == e {
		delete(c.entries, key)
	}
	c.mu.Unlock()
	close(e.done)
}

// expire forgets entries older than the TTL; c.mu is held.
func (c *replyCache) expire(now time.Time) {
	i := 0
	for ; i < len(c.order) && now.Sub(c.order[i].at) >= c.ttl; i++ {
		if e := c.order[i]; c.entries[e.key] == e {
			delete(c.entries, e.key)
		}
		c.order[i] = nil
	}
	c.order = c.order[i:]
}

// challenges are the Access-Challenges waiting for their code, by State.
type challenges struct {
	ttl time.Duration

	mu      sync.Mutex
	pending map[string]challenge
	order   []string // States, oldest first
}

// challenge is a password accepted for user through client, waiting for
// the code until expires.
type challenge struct {
	client, user string
	expires      time.Time
}

func newChallenges(ttl time.Duration) *challenges {
	return &challenges{ttl: ttl, pending: make(map[string]challenge)}
}

// add starts a challenge for user through client and returns its State.
func (c *challenges) add(client, user string, now time.Time) []byte {
	state := newState()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	c.pending[string(state)] = challenge{client: client, user: user, expires: now.Add(c.ttl)}
	c.order = append(c.order, string(state))
	return state
}

// take ends the challenge of state and reports whether it was pending, in
// time, for user through client. A State answers once.
func (c *challenges) take(state []byte, client, user string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.pending[string(state)]
	delete(c.pending, string(state))
	return ok && ch.client == client && ch.user == user && now.Before(ch.expires)
}

// expire forgets challenges whose time is up; c.mu is held.
func (c *challenges) expire(now time.Time) {
	i := 0
	for ; i < len(c.order); i++ {
		ch, ok := c.pending[c.order[i]]
		if ok && now.Before(ch.expires) {
			break
		}
		delete(c.pending, c.order[i])
	}
	c.order = c.order[i:]
}

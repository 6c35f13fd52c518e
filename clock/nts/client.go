package nts

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scheme prefixes a server that speaks NTS: nts://host[:port], the port
// being NTS-KE's (4460 when omitted).
const Scheme = "nts://"

// ParseServer splits nts://host[:port] into the KE host and port. ok is
// false for a name without the scheme.
func ParseServer(s string) (host string, port int, ok bool, err error) {
	rest, found := strings.CutPrefix(s, Scheme)
	if !found {
		return "", 0, false, nil
	}
	host, port = rest, DefaultKEPort
	if h, p, e := net.SplitHostPort(rest); e == nil {
		n, e := strconv.Atoi(p)
		if e != nil || n < 1 || n > 65535 {
			return "", 0, true, errors.New("port " + strconv.Quote(p) + " is not 1..65535")
		}
		host, port = h, n
	} else if strings.Count(rest, ":") == 1 || strings.HasPrefix(rest, "[") {
		return "", 0, true, errors.New("malformed host:port: " + e.Error())
	}
	if host == "" {
		return "", 0, true, errors.New("empty host")
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return "", 0, true, errors.New("host contains a space or slash")
	}
	return host, port, true, nil
}

// wantCookies is how many cookies the client keeps: a reply brings back
// one per cookie and placeholder sent, so each query asks for as many as
// bring the jar back to this.
const wantCookies = 8

// KE backoff: the first retry after a failed exchange (or a NAK, or
// replies failing authentication) comes after keBackoffMin, doubling to
// keBackoffMax while it keeps failing.
const (
	keBackoffMin = 8 * time.Second
	keBackoffMax = 1024 * time.Second
)

// authFailuresToRekey is how many replies in a row may fail
// authentication before the client runs a new key exchange (the keys may
// be stale, or the cookies rejected).
const authFailuresToRekey = 4

// ClientConfig is how a Client reaches its server.
type ClientConfig struct {
	// Host and Port are the NTS-KE server.
	Host string
	Port int
	// TLS supplies RootCAs (nil: the system's) and Time for verifying the
	// KE server's certificate; the rest is set by the client.
	TLS *tls.Config
	// Dial opens the KE connection; nil means TCP.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds one key exchange; zero means 5 s.
	Timeout time.Duration
}

// Client is the NTS state of one server: the session's keys, the cookie
// jar, when the next key exchange may run, and counters. Now is a
// monotonic reading from the caller (the clock's timebase), so the client
// runs in virtual time as well. It is safe for concurrent use.
type Client struct {
	cfg ClientConfig

	mu           sync.Mutex
	sess         *Session
	cookies      [][]byte
	needKE       bool
	nextKE       time.Duration // no exchange before this
	haveKE       bool
	lastKE       time.Duration // when the last exchange succeeded
	backoff      time.Duration
	authFailRun  int
	rekeyReason  string // why the session was dropped
	stats        Stats
	lastAuthedOK bool
}

// Stats are a client's counters.
type Stats struct {
	// Authenticated reports whether the last reply passed authentication.
	Authenticated bool
	// Cookies is how many unused cookies the client holds.
	Cookies int
	// KEs and KEFailures count key exchanges that succeeded and failed.
	KEs, KEFailures int
	// AuthFailures counts replies refused: not authenticated, forged,
	// changed, or answering another request. NAKs counts NTS-NAKs.
	AuthFailures, NAKs int
	// SinceKE is the time since the last successful exchange; HaveKE is
	// false when there was none.
	SinceKE time.Duration
	HaveKE  bool
	// LastKEError is why the last exchange failed; empty after a success.
	LastKEError string
}

// NewClient returns a client for the KE server in cfg.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Client{cfg: cfg, needKE: true}
}

// WaitError says a key exchange is not tried yet: the last one failed and
// the backoff has not passed.
type WaitError struct {
	Left   time.Duration
	Reason string
}

func (e *WaitError) Error() string {
	return "NTS: " + e.Reason + "; new key exchange in " + e.Left.Round(time.Second).String()
}

// Prepare returns where to send the next NTP query and the Query that
// protects it, running a key exchange first when there are no cookies or
// keys yet (or they were refused), unless the backoff forbids it now.
func (c *Client) Prepare(ctx context.Context, now time.Duration) (string, *Query, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.needKE || len(c.cookies) == 0 || c.sess == nil {
		if c.haveKE || c.stats.KEFailures > 0 || c.stats.NAKs > 0 || c.stats.AuthFailures > 0 {
			if now < c.nextKE {
				return "", nil, &WaitError{Left: c.nextKE - now, Reason: c.waitReason()}
			}
		}
		if err := c.exchange(ctx, now); err != nil {
			return "", nil, err
		}
	}
	cookie := c.cookies[len(c.cookies)-1]
	c.cookies = c.cookies[:len(c.cookies)-1]
	q, err := NewQuery(c.sess.C2S, c.sess.S2C, cookie, max(0, wantCookies-1-len(c.cookies)))
	if err != nil {
		return "", nil, err
	}
	return c.sess.NTPAddress(), q, nil
}

func (c *Client) waitReason() string {
	if c.stats.LastKEError != "" {
		return c.stats.LastKEError
	}
	return c.rekeyReason
}

// exchange runs a key exchange; the caller holds mu.
func (c *Client) exchange(ctx context.Context, now time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := Exchange(ctx, c.cfg.Dial, c.cfg.Host, c.cfg.Port, c.cfg.TLS)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			return err // stopping: not the server's fault
		}
		c.stats.KEFailures++
		c.stats.LastKEError = err.Error()
		c.setBackoff(now)
		return err
	}
	c.sess, c.cookies, c.needKE = s, s.Cookies, false
	c.haveKE, c.lastKE = true, now
	c.stats.KEs++
	c.stats.LastKEError = ""
	c.authFailRun = 0
	return nil
}

// setBackoff schedules the next exchange, doubling the wait.
func (c *Client) setBackoff(now time.Duration) {
	c.backoff = min(max(2*c.backoff, keBackoffMin), keBackoffMax)
	c.nextKE = now + c.backoff
}

// Done records the outcome of a query from Prepare: err is what the NTP
// query returned (nil when the reply was used).
func (c *Client) Done(q *Query, now time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.Authenticated {
		c.cookies = append(c.cookies, q.NewCookies...)
		if len(c.cookies) > wantCookies {
			c.cookies = c.cookies[len(c.cookies)-wantCookies:]
		}
		c.lastAuthedOK, c.authFailRun, c.backoff = true, 0, 0
		return
	}
	var nak *NAKError
	var auth *AuthError
	switch {
	case errors.As(err, &nak):
		c.stats.NAKs++
		c.lastAuthedOK = false
		c.needKE = true
		c.rekeyReason = "the server refused the cookie (NTS-NAK)"
		c.setBackoff(now)
	case errors.As(err, &auth):
		c.stats.AuthFailures++
		c.lastAuthedOK = false
		c.authFailRun++
		if c.authFailRun >= authFailuresToRekey {
			c.authFailRun = 0
			c.needKE = true
			c.rekeyReason = "replies failed authentication " + strconv.Itoa(authFailuresToRekey) + " times in a row (" + auth.Reason + ")"
			c.setBackoff(now)
		}
	}
}

// Stats returns the client's counters at now.
func (c *Client) Stats(now time.Duration) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Authenticated = c.lastAuthedOK
	st.Cookies = len(c.cookies)
	st.HaveKE = c.haveKE
	if c.haveKE {
		st.SinceKE = now - c.lastKE
	}
	return st
}

package ntpsim

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/clock/nts"
)

// Window is a span of virtual time, measured from the network's start.
type Window struct{ From, To time.Duration }

// Server describes one simulated NTP server.
type Server struct {
	// Address is what clients query, "host:port" (beevik/ntp adds :123 to
	// bare names before dialing).
	Address string
	// BaseDelay is the minimum one-way network delay.
	BaseDelay time.Duration
	// Jitter is the mean of the exponential extra delay on each way.
	Jitter time.Duration
	// Spread adds a uniform delay in ±Spread on each way (a path of
	// 3 ms ± 1 ms has BaseDelay 3 ms and Spread 1 ms).
	Spread time.Duration
	// SpikeRate is the probability that a packet, each way on its own,
	// waits in a queue for an extra exponential delay of mean SpikeMean.
	SpikeRate float64
	SpikeMean time.Duration
	// Asymmetry is extra delay on the request path (negative: on the
	// reply path); the offset a client measures is off by half of it.
	Asymmetry time.Duration
	// Loss is the probability a query gets no reply.
	Loss float64
	// Outages are windows in which the server does not answer.
	Outages []Window
	// Error is added to the server's clock: a falseticker.
	Error time.Duration
	// Kiss, when "RATE", rate-limits the server: a bucket of 4 queries
	// refilled at one per KissInterval, a query finding it empty answered
	// with a kiss-of-death RATE. Any other non-empty code (DENY, RSTR)
	// answers every query with that kiss.
	Kiss         string
	KissInterval time.Duration
	// Stratum reported; zero means 1.
	Stratum uint8
	// RootDelay and RootDispersion reported.
	RootDelay, RootDispersion time.Duration
}

// kissBurst is how many queries a rate-limiting server takes at once.
const kissBurst = 4

type simServer struct {
	Server
	lastQuery time.Time
	tokens    float64
	queries   int
}

// Network is a set of simulated servers sharing one virtual true time.
// Queries through Dial advance that time by the packets' flight. It is not
// safe for concurrent use: the clock bench is single-threaded.
type Network struct {
	start   time.Time
	now     time.Time
	rng     *rand.Rand
	servers map[string]*simServer
	down    bool
	// Timeout is how much virtual time a lost query costs the client.
	Timeout time.Duration

	nts     *nts.Server // nil: plain NTP only
	ntsConf *tls.Config
}

// EnableNTS makes every server speak NTS too: DialKE reaches its NTS-KE,
// answered with cert, and NTS queries get authenticated replies (plain
// queries still get plain ones). The key exchange takes no virtual time.
func (n *Network) EnableNTS(cert tls.Certificate) error {
	s, err := nts.NewServer()
	if err != nil {
		return err
	}
	n.nts, n.ntsConf = s, &tls.Config{Certificates: []tls.Certificate{cert}}
	return nil
}

// DialKE connects to the NTS-KE of the server whose host is addr's (its
// NTP address host:123); it has the shape of clock.NTSEnv.Dial. The
// server's side runs on its own goroutine over a pipe.
func (n *Network) DialKE(_ context.Context, _, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if n.nts == nil {
		return nil, errors.New("ntpsim: connection refused (NTS not enabled)")
	}
	s := n.servers[net.JoinHostPort(host, strconv.Itoa(123))]
	if s == nil {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if n.down || n.inOutage(s) {
		return nil, errors.New("ntpsim: NTS-KE connection timed out (server down)")
	}
	client, server := net.Pipe()
	go n.nts.ServeKEConn(server, n.ntsConf)
	return client, nil
}

// NewNetwork returns an empty network whose virtual UTC starts at start.
func NewNetwork(start time.Time, seed uint64) *Network {
	return &Network{
		start:   start,
		now:     start,
		rng:     rand.New(rand.NewPCG(seed, 0x17b)),
		servers: make(map[string]*simServer),
		Timeout: 2 * time.Second,
	}
}

// Add puts a server on the network.
func (n *Network) Add(s Server) {
	if s.Stratum == 0 {
		s.Stratum = 1
	}
	n.servers[s.Address] = &simServer{Server: s, tokens: kissBurst, lastQuery: n.now}
}

// Now returns the true virtual UTC.
func (n *Network) Now() time.Time { return n.now }

// Elapsed returns the virtual time since the start.
func (n *Network) Elapsed() time.Duration { return n.now.Sub(n.start) }

// Advance lets d of virtual time pass.
func (n *Network) Advance(d time.Duration) {
	if d > 0 {
		n.now = n.now.Add(d)
	}
}

// Sleep advances virtual time by d; it has the shape the clock engine
// expects of a sleep function.
func (n *Network) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.Advance(d)
	return nil
}

// SetDown cuts every server off (true) or brings them back.
func (n *Network) SetDown(down bool) { n.down = down }

// Queries returns how many queries the server at address received.
func (n *Network) Queries(address string) int {
	if s := n.servers[address]; s != nil {
		return s.queries
	}
	return 0
}

// Dial connects to a simulated server; it has the shape of beevik/ntp's
// QueryOptions.Dialer. Unknown addresses fail as a DNS lookup would.
func (n *Network) Dial(_, remoteAddress string) (net.Conn, error) {
	s := n.servers[remoteAddress]
	if s == nil {
		host, _, err := net.SplitHostPort(remoteAddress)
		if err != nil {
			host = remoteAddress
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return &conn{net: n, srv: s}, nil
}

func (n *Network) exp(mean time.Duration) time.Duration {
	if mean <= 0 {
		return 0
	}
	return time.Duration(n.rng.ExpFloat64() * float64(mean))
}

// path returns the spread and queueing spike of one packet's way to or
// from s. It draws nothing for a server without them, so the runs of the
// older scenarios stay the same for a seed.
func (n *Network) path(s *simServer) time.Duration {
	var d time.Duration
	if s.Spread > 0 {
		d += time.Duration((n.rng.Float64()*2 - 1) * float64(s.Spread))
	}
	if s.SpikeRate > 0 && n.rng.Float64() < s.SpikeRate {
		d += n.exp(s.SpikeMean)
	}
	return d
}

// answers reports whether s answers a query sent now.
func (n *Network) answers(s *simServer) bool {
	if n.down || n.inOutage(s) {
		return false
	}
	return s.Loss <= 0 || n.rng.Float64() >= s.Loss
}

// inOutage reports whether s is in one of its outage windows now.
func (n *Network) inOutage(s *simServer) bool {
	el := n.Elapsed()
	for _, w := range s.Outages {
		if el >= w.From && el < w.To {
			return true
		}
	}
	return false
}

// conn is one client socket to a simulated server.
type conn struct {
	net     *Network
	srv     *simServer
	pending []byte
	arrival time.Time
	closed  bool
}

func (c *conn) Write(b []byte) (int, error) {
	n, s := c.net, c.srv
	s.queries++
	c.pending = nil
	if !n.answers(s) {
		return len(b), nil
	}
	kiss := ""
	switch {
	case s.Kiss == "RATE":
		if s.KissInterval > 0 {
			s.tokens = min(kissBurst, s.tokens+float64(n.now.Sub(s.lastQuery))/float64(s.KissInterval))
		}
		if s.tokens < 1 {
			kiss = "RATE"
		} else {
			s.tokens--
		}
	case s.Kiss != "":
		kiss = s.Kiss
	}
	s.lastQuery = n.now
	out := s.BaseDelay + max(s.Asymmetry, 0) + n.exp(s.Jitter) + n.path(s)
	recv := n.now.Add(out)
	xmit := recv.Add(5 * time.Microsecond)
	back := s.BaseDelay + max(-s.Asymmetry, 0) + n.exp(s.Jitter) + n.path(s)
	plain := func(req []byte) ([]byte, error) {
		return reply(req, replyParams{
			stratum:        s.Stratum,
			kiss:           kiss,
			rootDelay:      s.RootDelay,
			rootDispersion: s.RootDispersion,
			recv:           recv.Add(s.Error),
			xmit:           xmit.Add(s.Error),
		})
	}
	var resp []byte
	var err error
	if n.nts != nil {
		resp, err = n.nts.Respond(b, plain)
		if errors.Is(err, nts.ErrNotNTS) {
			resp, err = plain(b)
		}
	} else {
		resp, err = plain(b)
	}
	if err != nil {
		return 0, err
	}
	c.pending, c.arrival = resp, xmit.Add(back)
	return len(b), nil
}

func (c *conn) Read(b []byte) (int, error) {
	if c.pending == nil {
		c.net.Advance(c.net.Timeout)
		return 0, timeoutError{}
	}
	c.net.Advance(c.arrival.Sub(c.net.now))
	n := copy(b, c.pending)
	c.pending = nil
	return n, nil
}

func (c *conn) Close() error                     { c.closed = true; return nil }
func (c *conn) LocalAddr() net.Addr              { return simAddr("client") }
func (c *conn) RemoteAddr() net.Addr             { return simAddr(c.srv.Address) }
func (c *conn) SetDeadline(time.Time) error      { return nil }
func (c *conn) SetReadDeadline(time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(time.Time) error { return nil }

type simAddr string

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return string(a) }

// timeoutError is what a lost query returns, like a socket deadline.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout (simulated)" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

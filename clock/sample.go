package clock

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/beevik/ntp"

	"github.com/totpbox/totpbox/clock/nts"
)

// Timebase is the raw oscillator the clock counts with. It is never
// stepped or slewed; the discipline maps it to UTC.
type Timebase interface {
	// Local returns the oscillator reading since an arbitrary origin.
	Local() time.Duration
	// Suspended returns how long the machine has been suspended in total
	// since the timebase started, as far as it can tell; it grows when
	// the oscillator stopped while time went on.
	Suspended() time.Duration
}

// Dialer opens the connection an NTP query travels over; it has the shape
// of beevik/ntp's QueryOptions.Dialer. Nil means UDP.
type Dialer func(localAddress, remoteAddress string) (net.Conn, error)

// earliestPlausible is the earliest UTC a server may report: a reply before
// it is absurd, whatever the local clock says.
var earliestPlausible = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// latestPlausible is the latest UTC a server may report.
var latestPlausible = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// KissError is a kiss-of-death reply: the server asks us to slow down
// (RATE) or to go away (DENY, RSTR).
type KissError struct{ Code string }

// Error names the kiss code.
func (e *KissError) Error() string { return "kiss-of-death " + e.Code }

// querier sends single NTP queries stamped with the timebase.
type querier struct {
	epoch    time.Time
	timebase Timebase
	dialer   Dialer
	timeout  time.Duration
}

// BadReplyError is a reply that arrived but cannot be used: it failed
// Validate (unsynchronised, stratum 16, root distance too large...) or
// carries an absurd time.
type BadReplyError struct{ Reason string }

func (e *BadReplyError) Error() string { return e.Reason }

// clockTime is the uncorrected clock: Epoch + the timebase. ClockOffset of
// a reply is UTC minus this.
func (q *querier) clockTime() time.Time { return q.epoch.Add(q.timebase.Local()) }

// source is one server as the querier sees it: its configured name and,
// for an NTS server, the client holding its keys and cookies.
type source struct {
	name string
	nts  *nts.Client
}

// query sends one query to addr for the server named server and returns
// the sample, or why the reply cannot be used. ext, when not nil, protects
// the query with NTS and refuses a reply that fails authentication.
func (q *querier) query(server, addr string, ext *nts.Query) (Sample, *ntp.Response, error) {
	opt := ntp.QueryOptions{
		Timeout:       q.timeout,
		GetSystemTime: q.clockTime,
	}
	if ext != nil {
		opt.Extensions = []ntp.Extension{ext}
	}
	var conn *stampedConn
	if q.dialer != nil {
		opt.Dialer = q.dialer
	} else {
		opt.Dialer = func(localAddress, remoteAddress string) (net.Conn, error) {
			c, err := dialStamped(localAddress, remoteAddress)
			if err != nil {
				return nil, err
			}
			conn = c
			return c, nil
		}
	}
	r, err := ntp.QueryWithOptions(addr, opt)
	if err != nil {
		return Sample{}, nil, err
	}
	if conn != nil && conn.lag > 0 {
		stampedRecv(r, conn.lag)
	}
	if r.IsKissOfDeath() {
		return Sample{}, r, &KissError{Code: r.KissCode}
	}
	if err := r.Validate(); err != nil {
		return Sample{}, r, &BadReplyError{Reason: "invalid reply: " + err.Error()}
	}
	ts := r.Timestamps
	if ts.ServerXmit.Before(earliestPlausible) || ts.ServerXmit.After(latestPlausible) {
		return Sample{}, r, &BadReplyError{Reason: "absurd time " + ts.ServerXmit.UTC().Format(time.RFC3339)}
	}
	t1 := ts.ClientXmit.Sub(q.epoch)
	t4 := ts.ClientRecv.Sub(q.epoch)
	return Sample{
		Server:         server,
		Local:          t1 + (t4-t1)/2,
		Offset:         r.ClockOffset,
		Delay:          r.RTT,
		RootDelay:      r.RootDelay,
		RootDispersion: r.RootDispersion,
		Precision:      r.Precision,
	}, r, nil
}

// stampedConn is a query's UDP socket. Where the kernel stamps the
// datagrams it receives, Read notes how long the reply waited between
// arriving and being read: on a loaded machine, or a Pi Zero's one core,
// the wait for the scheduler is tens of microseconds to milliseconds, and
// a reply stamped only when Read returns makes the round trip look that
// much longer and the offset half of it too early. chronyd stamps replies
// in the kernel too.
type stampedConn struct {
	*net.UDPConn
	oob      []byte        // control message buffer; nil without kernel stamps
	noStamps error         // why there are no kernel stamps, if there are none
	lag      time.Duration // the last reply's wait; 0 when unknown
}

// maxRxLag is the longest wait taken as real; a longer one (or a negative
// one) means the host's clock was stepped between the stamp and the read.
const maxRxLag = time.Second

func (c *stampedConn) setLag(lag time.Duration) {
	if lag > 0 && lag < maxRxLag {
		c.lag = lag
	}
}

// dialStamped opens a query's UDP socket, as beevik/ntp's default dialer
// does, asking for kernel receive timestamps.
func dialStamped(localAddress, remoteAddress string) (*stampedConn, error) {
	var laddr *net.UDPAddr
	if localAddress != "" {
		var err error
		if laddr, err = net.ResolveUDPAddr("udp", net.JoinHostPort(localAddress, "0")); err != nil {
			return nil, err
		}
	}
	raddr, err := net.ResolveUDPAddr("udp", remoteAddress)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, err
	}
	sc := &stampedConn{UDPConn: c}
	sc.enableRxStamps()
	return sc, nil
}

// stampedRecv moves a reply's receive time back to the kernel's stamp,
// lag before the clock was read, and computes offset and round trip again
// from the four timestamps.
func stampedRecv(r *ntp.Response, lag time.Duration) {
	ts := &r.Timestamps
	ts.ClientRecv = ts.ClientRecv.Add(-lag)
	r.ClockOffset = (ts.ServerRecv.Sub(ts.ClientXmit) + ts.ServerXmit.Sub(ts.ClientRecv)) / 2
	r.RTT = max(0, ts.ClientRecv.Sub(ts.ClientXmit)-ts.ServerXmit.Sub(ts.ServerRecv))
}

// burstSize is the number of queries sent at start and after failures.
const burstSize = 4

// burstSpacing separates the queries of a burst.
const burstSpacing = 250 * time.Millisecond

// burst sends n queries to src, sleeping between them, and returns the
// sample with the smallest delay. A kiss-of-death, an NTS-NAK or a failed
// NTS key exchange ends the burst. onReply, when set, sees every reply
// that passed validation (and, for NTS, authentication).
func (q *querier) burst(ctx context.Context, src source, n int, sleep func(context.Context, time.Duration) error, onReply func(Sample, *ntp.Response)) (Sample, error) {
	var best Sample
	var have bool
	var lastErr error
	for i := range n {
		if i > 0 {
			if err := sleep(ctx, burstSpacing); err != nil {
				return Sample{}, err
			}
		}
		addr, ext := src.name, (*nts.Query)(nil)
		if src.nts != nil {
			var err error
			if addr, ext, err = src.nts.Prepare(ctx, q.timebase.Local()); err != nil {
				lastErr = err
				break
			}
		}
		s, r, err := q.query(src.name, addr, ext)
		if ext != nil {
			src.nts.Done(ext, q.timebase.Local(), err)
		}
		var kiss *KissError
		if errors.As(err, &kiss) || errors.As(err, new(*nts.NAKError)) {
			return Sample{}, err
		}
		if err != nil {
			lastErr = err
			var dns *net.DNSError
			if errors.As(err, &dns) || errors.Is(err, errBadAddress) {
				break
			}
			continue
		}
		if onReply != nil {
			onReply(s, r)
		}
		if !have || s.Delay < best.Delay {
			best, have = s, true
		}
	}
	if !have {
		if lastErr == nil {
			lastErr = errors.New("no reply")
		}
		return Sample{}, lastErr
	}
	return best, nil
}

// errBadAddress marks a server name that can never work.
var errBadAddress = errors.New("malformed server address")

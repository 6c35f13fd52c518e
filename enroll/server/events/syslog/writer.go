package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Transports.
const (
	TransportTLS = "tls" // RFC 5425: TCP with TLS, octet-counting framing
	TransportTCP = "tcp" // RFC 6587: plain TCP, octet-counting framing
	TransportUDP = "udp" // RFC 5426: one message per datagram
)

// DefaultQueue is the queue's length when Config.Queue is zero.
const DefaultQueue = 10000

// Config configures a Writer. Address and Transport are required.
type Config struct {
	// Address is the collector's host:port.
	Address string
	// Transport is TransportTLS, TransportTCP or TransportUDP.
	Transport string
	// TLS configures the TLS client (CA, client certificate); nil means
	// the system's roots. Used with TransportTLS only.
	TLS *tls.Config
	// Header names the sender in every message.
	Header Header
	// Queue is how many events wait for the collector at most; more are
	// dropped and counted. Zero means DefaultQueue.
	Queue int
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts, doubling from one to the other; zero means 100 ms and
	// 30 s.
	MinBackoff, MaxBackoff time.Duration
	// DropLogInterval is how often dropped events are logged, when there
	// are any; zero means a minute.
	DropLogInterval time.Duration
	// Logger receives the writer's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Writer sends audit events to a syslog collector. Publish queues; Run
// sends. It is safe for concurrent use.
type Writer struct {
	cfg     Config
	log     *slog.Logger
	queue   chan store.AuditEvent
	dropped atomic.Uint64
	sent    atomic.Uint64
	// connected says a connection to the collector is up, for tests.
	connected atomic.Bool

	metrics []prometheus.Collector
}

// New returns a writer for cfg, or an error naming the bad field.
func New(cfg Config) (*Writer, error) {
	switch cfg.Transport {
	case TransportTLS, TransportTCP, TransportUDP:
	default:
		return nil, fmt.Errorf("audit.syslog.transport must be tls, tcp or udp, not %q", cfg.Transport)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("audit.syslog.address must be host:port, not %q", cfg.Address)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.DropLogInterval <= 0 {
		cfg.DropLogInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Writer{cfg: cfg, log: cfg.Logger.With("syslog", cfg.Address), queue: make(chan store.AuditEvent, cfg.Queue)}
	w.metrics = []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "totpserver_syslog_dropped_total",
			Help: "Audit events not sent to syslog because the queue was full.",
		}, func() float64 { return float64(w.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "totpserver_syslog_sent_total",
			Help: "Audit events written to the syslog collector.",
		}, func() float64 { return float64(w.sent.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpserver_syslog_queued",
			Help: "Audit events waiting for the syslog collector.",
		}, func() float64 { return float64(len(w.queue)) }),
	}
	return w, nil
}

// Metrics are the writer's Prometheus metrics: dropped, sent and queued
// events.
func (w *Writer) Metrics() []prometheus.Collector { return w.metrics }

// Publish queues e for the collector; it never blocks. When the queue is
// full, e is dropped and counted.
func (w *Writer) Publish(e store.AuditEvent) {
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
	}
}

// Dropped is how many events were dropped since the writer was made.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Sent is how many events were written to the collector.
func (w *Writer) Sent() uint64 { return w.sent.Load() }

// Run sends queued events until ctx ends, connecting and reconnecting
// with backoff. An event whose write failed is sent again on the next
// connection, so the collector may see it twice but does not lose it.
func (w *Writer) Run(ctx context.Context) {
	go w.logDrops(ctx)
	backoff := w.cfg.MinBackoff
	var pending []byte // framed message not yet written
	for ctx.Err() == nil {
		c, err := w.dial(ctx)
		if err != nil {
			w.log.Warn("syslog collector unreachable", "err", err, "retry_in", backoff)
			if wallclock.Sleep(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, w.cfg.MaxBackoff)
			continue
		}
		backoff = w.cfg.MinBackoff
		w.log.Info("syslog collector connected", "transport", w.cfg.Transport)
		w.connected.Store(true)
		pending, err = w.send(ctx, c, pending)
		w.connected.Store(false)
		c.Close()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("syslog connection lost", "err", err)
		}
	}
}

// send writes pending and then queued events to c until ctx ends or c
// fails; it returns the message that failed.
func (w *Writer) send(ctx context.Context, c net.Conn, pending []byte) ([]byte, error) {
	// A stream peer never writes to us: a read returning means it
	// closed the connection, which a write alone may not notice until
	// a message is lost in the kernel's buffer.
	closed := make(chan struct{})
	if w.cfg.Transport != TransportUDP {
		go func() {
			var b [1]byte
			c.Read(b[:])
			close(closed)
		}()
	}
	write := func(msg []byte) error {
		select {
		case <-closed:
			return errors.New("the collector closed the connection")
		default:
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write(msg)
		return err
	}
	if pending != nil {
		if err := write(pending); err != nil {
			return pending, err
		}
		w.sent.Add(1)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-closed:
			return nil, errors.New("the collector closed the connection")
		case e := <-w.queue:
			msg := Format(w.cfg.Header, e)
			if w.cfg.Transport != TransportUDP {
				msg = frame(msg)
			}
			if err := write(msg); err != nil {
				return msg, err
			}
			w.sent.Add(1)
		}
	}
}

func (w *Writer) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	switch w.cfg.Transport {
	case TransportTLS:
		cfg := w.cfg.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(w.cfg.Address)
			cfg.ServerName = host
		}
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		td := &tls.Dialer{NetDialer: d, Config: cfg}
		return td.DialContext(ctx, "tcp", w.cfg.Address)
	case TransportUDP:
		return d.DialContext(ctx, "udp", w.cfg.Address)
	}
	return d.DialContext(ctx, "tcp", w.cfg.Address)
}

// logDrops logs, once an interval, how many events were dropped in it.
func (w *Writer) logDrops(ctx context.Context) {
	t := time.NewTicker(w.cfg.DropLogInterval)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := w.dropped.Load(); n != last {
				w.log.Warn("audit events dropped: the syslog queue was full", "dropped", n-last, "queue", w.cfg.Queue)
				last = n
			}
		}
	}
}

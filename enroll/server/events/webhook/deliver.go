package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Limits of a delivery.
const (
	// Timeout bounds one delivery attempt, connection included.
	Timeout = 5 * time.Second
	// MaxBody is the largest body sent, and the most of a response read.
	MaxBody = 64 << 10
	// RetryFor is how long a failing delivery is retried before it is
	// dead.
	RetryFor = 24 * time.Hour
	// lease is how long a replica holds a delivery it attempts.
	lease = 30 * time.Second
)

// Store is the outbox the deliverer reads; the SQLite and PostgreSQL
// stores satisfy it.
type Store interface {
	Webhook(ctx context.Context, id string) (store.WebhookEndpoint, error)
	ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, n int) ([]store.Delivery, error)
	FinishDelivery(ctx context.Context, id int64, owner, state string, next time.Time, lastErr string, now time.Time) error
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Config configures a Deliverer. Store, Sealer and Owner are required.
type Config struct {
	// Store holds the outbox and the endpoints.
	Store Store
	// Sealer opens the endpoints' signing secrets.
	Sealer Sealer
	// Owner names this replica in leases; unique per replica.
	Owner string
	// AllowPrivateTargets lets deliveries connect to private and
	// loopback addresses (webhooks.allow_private_targets).
	AllowPrivateTargets bool
	// Poll is how often the outbox is read when no notice wakes the
	// deliverer; zero means a second.
	Poll time.Duration
	// Clock tells the time; nil means the real clock.
	Clock Clock
	// Logger receives the deliverer's logs; nil means slog.Default().
	Logger *slog.Logger
	// Transport, when set, replaces the HTTP transport (tests); the
	// address check then is the transport's business.
	Transport http.RoundTripper
}

// Deliverer sends the outbox's pending deliveries. Run it on every
// replica: the leases in the store give each delivery to one at a time.
type Deliverer struct {
	cfg    Config
	log    *slog.Logger
	clock  Clock
	client *http.Client
	wake   chan struct{}

	delivered, failed, dead prometheus.Counter
	latency                 prometheus.Histogram
}

// New returns a deliverer for cfg.
func New(cfg Config) (*Deliverer, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("webhook: Config.Store is required")
	case cfg.Sealer == nil:
		return nil, errors.New("webhook: Config.Sealer is required")
	case cfg.Owner == "":
		return nil, errors.New("webhook: Config.Owner is required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Deliverer{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, wake: make(chan struct{}, 1)}
	rt := cfg.Transport
	if rt == nil {
		dialer := &net.Dialer{Timeout: Timeout}
		if !cfg.AllowPrivateTargets {
			dialer.Control = func(network, address string, c syscall.RawConn) error {
				return events.DialControl(network, address, c)
			}
		}
		rt = &http.Transport{
			Proxy:                 nil, // a proxy would hide the address from the check
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   Timeout,
			ResponseHeaderTimeout: Timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	d.client = &http.Client{
		Transport: rt,
		Timeout:   Timeout,
		// A redirect is not followed: it could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.delivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "totpserver_webhook_delivered_total", Help: "Webhook deliveries the endpoint accepted (2xx)."})
	d.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "totpserver_webhook_failed_total", Help: "Webhook delivery attempts that failed and will be retried."})
	d.dead = prometheus.NewCounter(prometheus.CounterOpts{Name: "totpserver_webhook_dead_total", Help: "Webhook deliveries given up after 24 hours of retries (dead letters)."})
	d.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "totpserver_webhook_delivery_seconds",
		Help: "Time from an event to its first successful delivery.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)})
	return d, nil
}

// Metrics are the deliverer's Prometheus metrics.
func (d *Deliverer) Metrics() []prometheus.Collector {
	return []prometheus.Collector{d.delivered, d.failed, d.dead, d.latency}
}

// Wake makes Run read the outbox now (a notice that an event was
// written); it never blocks.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		for d.Once(ctx) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
			// Let the events written meanwhile join one claim: a claim
			// per event costs the store a write each.
			select {
			case <-ctx.Done():
				return
			case <-time.After(coalesce):
			}
		}
	}
}

// coalesce is how long a woken deliverer waits for more events before it
// claims: short beside the delivery time a receiver sees.
const coalesce = 50 * time.Millisecond

// Once claims the deliveries due now and attempts them, in parallel; it
// returns how many it attempted.
func (d *Deliverer) Once(ctx context.Context) int {
	now := d.clock.Now()
	ds, err := d.cfg.Store.ClaimDeliveries(ctx, d.cfg.Owner, now, now.Add(lease), 16)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhook outbox unreadable", "err", err)
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, dl := range ds {
		wg.Go(func() { d.attempt(ctx, dl) })
	}
	wg.Wait()
	return len(ds)
}

// attempt sends one delivery and records its outcome.
func (d *Deliverer) attempt(ctx context.Context, dl store.Delivery) {
	err := d.send(ctx, dl)
	if ctx.Err() != nil {
		return // stopping: the lease runs out and another replica retries
	}
	now := d.clock.Now()
	state, next, msg := store.DeliveryDelivered, time.Time{}, ""
	if err != nil {
		msg = err.Error()
		next = now.Add(Backoff(dl.Attempts))
		state = store.DeliveryPending
		if next.Sub(dl.Created) > RetryFor {
			state, next = store.DeliveryDead, time.Time{}
			d.dead.Inc()
			d.log.Warn("webhook delivery given up", "event", dl.Event.ID, "type", dl.Event.Type, "endpoint", dl.EndpointID, "attempts", dl.Attempts+1, "err", msg)
		} else {
			d.failed.Inc()
			d.log.Info("webhook delivery failed", "event", dl.Event.ID, "endpoint", dl.EndpointID, "attempt", dl.Attempts+1, "retry_at", next, "err", msg)
		}
	} else {
		d.delivered.Inc()
		if dl.Attempts == 0 {
			d.latency.Observe(now.Sub(dl.Event.Time).Seconds())
		}
	}
	if err := d.cfg.Store.FinishDelivery(context.WithoutCancel(ctx), dl.ID, d.cfg.Owner, state, next, msg, now); err != nil {
		d.log.Warn("webhook delivery outcome not recorded", "event", dl.Event.ID, "err", err)
	}
}

// Body is the JSON body of a delivery of ev.
func Body(ev store.WebhookEvent) ([]byte, error) {
	return json.Marshal(events.Body{Type: ev.Type, Timestamp: ev.Time.UTC(), Data: json.RawMessage(ev.Data)})
}

func (d *Deliverer) send(ctx context.Context, dl store.Delivery) error {
	ep, err := d.cfg.Store.Webhook(ctx, dl.EndpointID)
	if err != nil {
		return fmt.Errorf("endpoint: %v", err)
	}
	secret, err := d.cfg.Sealer.Open(ep.Secret, SecretAAD(ep.ID))
	if err != nil {
		return fmt.Errorf("endpoint secret: %v", err)
	}
	key, err := Key(string(secret))
	if err != nil {
		return err
	}
	body, err := Body(dl.Event)
	if err != nil {
		return err
	}
	if len(body) > MaxBody {
		return fmt.Errorf("body of %d bytes is over %d", len(body), MaxBody)
	}
	ts := d.clock.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "totpserver-webhooks/1")
	req.Header.Set("webhook-id", dl.Event.ID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	req.Header.Set("webhook-signature", Sign(key, dl.Event.ID, ts, body))
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Backoff is the wait after a delivery's attempts-th failure (0 for the
// first): 5 s doubling, at most an hour, with up to 10% jitter.
func Backoff(attempts int) time.Duration {
	d := 5 * time.Second << min(attempts, 10)
	d = min(d, time.Hour)
	return d + time.Duration(rand.Int64N(int64(d/10)+1))
}

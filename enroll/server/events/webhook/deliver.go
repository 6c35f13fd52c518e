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
	FinishAndClaimDeliveries(ctx context.Context, owner string, outs []store.DeliveryOutcome, now, until time.Time, n int) ([]store.Delivery, []error, error)
	FinishDeliveries(ctx context.Context, owner string, outs []store.DeliveryOutcome, now time.Time) []error
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
			// As many as one claim attempts at once, so that the
			// next claim's reuse them: with fewer, each claim to one
			// endpoint dialed (and the receiver accepted) again most
			// of its connections.
			MaxIdleConnsPerHost: claimSize,
			IdleConnTimeout:     90 * time.Second,
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

// Run delivers until ctx ends. A round's outcomes are recorded in the
// transaction of the next round's claim, so that a round costs the store
// one write, not two (each a wait for the verifies on SQLite, which has
// one writer); that claim follows at once after a full round, and after
// a coalescing wait after a short one. When no round is due the outbox is
// read again at a notice or a poll, and only what is due takes a write.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	var (
		done []store.Delivery        // the last round's deliveries
		outs []store.DeliveryOutcome // and their outcomes, not yet recorded
	)
	for {
		ds := d.claim(ctx, done, outs)
		done, outs = ds, d.attemptAll(ctx, ds)
		if ctx.Err() != nil {
			d.finish(ctx, done, outs) // those attempted in full; the others' leases run out
			return
		}
		if len(ds) == claimSize {
			continue // more are due
		}
		if len(ds) > 0 {
			// The outcomes wait for the next claim, made after events
			// written meanwhile have gathered.
			if wallclock.Sleep(ctx, coalesce) != nil {
				d.finish(ctx, done, outs)
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
			// Let the events written meanwhile join one claim: a claim
			// per event costs the store a write each.
			if wallclock.Sleep(ctx, coalesce) != nil {
				return
			}
		}
	}
}

// coalesce is how long a woken deliverer waits for more events before it
// claims: short beside the delivery time a receiver sees.
const coalesce = 50 * time.Millisecond

// claimSize is the most deliveries one claim takes, and attempts at once.
const claimSize = 16

// Once claims the deliveries due now, attempts them in parallel and
// records their outcomes together (one transaction for the lot); it
// returns how many it attempted.
func (d *Deliverer) Once(ctx context.Context) int {
	ds := d.claim(ctx, nil, nil)
	outs := d.attemptAll(ctx, ds)
	if ctx.Err() == nil {
		d.finish(ctx, ds, outs)
	}
	return len(ds)
}

// claim records the outcomes outs of the deliveries done and claims the
// deliveries due now, in one transaction. When ctx ends meanwhile the
// outcomes are still recorded, alone.
func (d *Deliverer) claim(ctx context.Context, done []store.Delivery, outs []store.DeliveryOutcome) []store.Delivery {
	now := d.clock.Now()
	ds, errs, err := d.cfg.Store.FinishAndClaimDeliveries(ctx, d.cfg.Owner, outs, now, now.Add(lease), claimSize)
	if err != nil && ctx.Err() != nil {
		d.finish(ctx, done, outs)
		return nil
	}
	d.logUnrecorded(done, errs)
	if err != nil {
		d.log.Warn("webhook outbox unreadable", "err", err)
		return nil
	}
	return ds
}

// finish records the outcomes outs of the deliveries done, even when ctx
// has ended.
func (d *Deliverer) finish(ctx context.Context, done []store.Delivery, outs []store.DeliveryOutcome) {
	if len(outs) > 0 {
		d.logUnrecorded(done, d.cfg.Store.FinishDeliveries(context.WithoutCancel(ctx), d.cfg.Owner, outs, d.clock.Now()))
	}
}

func (d *Deliverer) logUnrecorded(done []store.Delivery, errs []error) {
	for i, err := range errs {
		if err != nil {
			d.log.Warn("webhook delivery outcome not recorded", "event", done[i].Event.ID, "err", err)
		}
	}
}

// attemptAll attempts ds in parallel and returns their outcomes, or nil
// when ctx ended meanwhile (the outcomes are not to be recorded).
func (d *Deliverer) attemptAll(ctx context.Context, ds []store.Delivery) []store.DeliveryOutcome {
	if len(ds) == 0 {
		return nil
	}
	// Each endpoint's address and key are read once per claim.
	eps := make(map[string]target)
	for _, dl := range ds {
		if _, ok := eps[dl.EndpointID]; !ok {
			eps[dl.EndpointID] = d.target(ctx, dl.EndpointID)
		}
	}
	outs := make([]store.DeliveryOutcome, len(ds))
	var wg sync.WaitGroup
	for i, dl := range ds {
		wg.Go(func() { outs[i] = d.attempt(ctx, eps[dl.EndpointID], dl) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return outs
}

// target is where an endpoint's deliveries go and the key that signs
// them, or why it cannot be used.
type target struct {
	url string
	key []byte
	err error
}

func (d *Deliverer) target(ctx context.Context, id string) target {
	ep, err := d.cfg.Store.Webhook(ctx, id)
	if err != nil {
		return target{err: fmt.Errorf("endpoint: %v", err)}
	}
	secret, err := d.cfg.Sealer.Open(ep.Secret, SecretAAD(ep.ID))
	if err != nil {
		return target{err: fmt.Errorf("endpoint secret: %v", err)}
	}
	key, err := Key(string(secret))
	return target{url: ep.URL, key: key, err: err}
}

// attempt sends one delivery and returns its outcome.
func (d *Deliverer) attempt(ctx context.Context, to target, dl store.Delivery) store.DeliveryOutcome {
	err := to.err
	if err == nil {
		err = d.send(ctx, to, dl)
	}
	now := d.clock.Now()
	out := store.DeliveryOutcome{ID: dl.ID, State: store.DeliveryDelivered}
	if ctx.Err() != nil {
		return out // not recorded
	}
	if err != nil {
		out.LastError = err.Error()
		out.Next = now.Add(Backoff(dl.Attempts))
		out.State = store.DeliveryPending
		if out.Next.Sub(dl.Created) > RetryFor {
			out.State, out.Next = store.DeliveryDead, time.Time{}
			d.dead.Inc()
			d.log.Warn("webhook delivery given up", "event", dl.Event.ID, "type", dl.Event.Type, "endpoint", dl.EndpointID, "attempts", dl.Attempts+1, "err", out.LastError)
		} else {
			d.failed.Inc()
			d.log.Info("webhook delivery failed", "event", dl.Event.ID, "endpoint", dl.EndpointID, "attempt", dl.Attempts+1, "retry_at", out.Next, "err", out.LastError)
		}
	} else {
		d.delivered.Inc()
		if dl.Attempts == 0 {
			d.latency.Observe(now.Sub(dl.Event.Time).Seconds())
		}
	}
	return out
}

// Body is the JSON body of a delivery of ev.
func Body(ev store.WebhookEvent) ([]byte, error) {
	return json.Marshal(events.Body{Type: ev.Type, Timestamp: ev.Time.UTC(), Data: json.RawMessage(ev.Data)})
}

func (d *Deliverer) send(ctx context.Context, to target, dl store.Delivery) error {
	body, err := Body(dl.Event)
	if err != nil {
		return err
	}
	if len(body) > MaxBody {
		return fmt.Errorf("body of %d bytes is over %d", len(body), MaxBody)
	}
	ts := d.clock.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "totpserver-webhooks/1")
	req.Header.Set("webhook-id", dl.Event.ID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	req.Header.Set("webhook-signature", Sign(to.key, dl.Event.ID, ts, body))
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

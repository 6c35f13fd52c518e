// Package appliance is the registration server's appliance API: pairing
// through a one-time code, signed requests, the per-appliance revision log
// of changes (offers, cancellations, expiries, deletions, renames,
// activations, unpair) served by long-poll, acks, and the clock reports
// appliances send with every sync.
//
// The HTTP side (Handler) is what appliances call; the Go methods (Pair,
// Appliances, Unpair, SendOffer, OfferState and the Device* hooks) are what
// the console and the admin API call. Everything is idempotent: a request
// or a hook repeated after a lost response neither duplicates nor drops an
// account.
//
// Long-polls are answered at once when a change for that appliance is
// written, by this process or, through the fleet bus (Config.Bus, LISTEN/
// NOTIFY on PostgreSQL), by another replica sharing the store. Held
// long-polls read the store only when woken; while the bus cannot hear
// the other replicas they re-read it every Config.PollInterval.
package appliance

import (
	"context"
	"errors"
	"github.com/totpbox/totpbox/enroll/server/events"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"

	"github.com/totpbox/totpbox/enroll/server/fleet"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Store is the persistence the API needs: store.ApplianceStore and the
// audit log. The server's SQLite and PostgreSQL stores satisfy it.
type Store interface {
	store.ApplianceStore
	Audit(ctx context.Context, e store.AuditEvent) error
	// AuditWithEvent records an audit event that raises a webhook event
	// (appliance.replace), with its outbox row in the same transaction.
	AuditWithEvent(ctx context.Context, e store.AuditEvent, ev store.WebhookEvent) error
}

// Clock tells the time; enroll/server's Clock has the same shape.
type Clock interface {
	Now() time.Time
}

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond; a negative PerSecond means no limit.
type Rate = ratelimit.Rate

// Defaults of Config.
const (
	DefaultPairingCodeTTL = 10 * time.Minute
	DefaultChangesLimit   = 100
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultPeriod         = 30 * time.Second
)

// LimitPairingIP names the per-address pairing limit for Config.Limits.
const LimitPairingIP = "pairing-ip"

// DefaultPairingRate limits pairing code requests per client address.
var DefaultPairingRate = Rate{PerSecond: 0.5, Burst: 20}

// DefaultUnauthenticatedRate limits, per client address, requests that do
// not authenticate: bad or missing signatures, and keys that are neither
// paired nor waiting with a pairing code.
var DefaultUnauthenticatedRate = Rate{PerSecond: 2, Burst: 60}

// Config configures an API. Store is required; every other field has a
// default used when it is zero.
type Config struct {
	// Store holds appliances, pairing codes and change logs.
	Store Store
	// Clock tells the time; nil means the real clock.
	Clock Clock
	// Logger receives the API's logs; nil means slog.Default(). Pairing
	// codes and secrets are never logged.
	Logger *slog.Logger
	// PairingCodeTTL is how long a pairing code works; default 10 minutes.
	PairingCodeTTL time.Duration
	// PairingRate limits pairing code requests per client address;
	// default DefaultPairingRate.
	PairingRate Rate
	// UnauthenticatedRate limits requests that do not authenticate (see
	// DefaultUnauthenticatedRate), per client address; past it they are
	// answered 429. Default DefaultUnauthenticatedRate.
	UnauthenticatedRate Rate
	// ClientIP returns the client address of a request, for rate limits;
	// nil means the host of RemoteAddr. Set it behind a reverse proxy.
	ClientIP func(*http.Request) string
	// MaxWait caps how long a long-poll is held; default proto.MaxWait.
	MaxWait time.Duration
	// Limits makes the per-address pairing limit (LimitPairingIP), shared
	// by every replica on PostgreSQL; nil keeps it in this process.
	Limits ratelimit.Factory
	// Bus wakes the long-polls other replicas hold when this one writes a
	// change, and theirs this one; nil means an in-process bus, right for
	// a single server.
	Bus *fleet.Bus
	// Events receives the audit events the appliance API records
	// (syslog); nil sends them nowhere. Its Publish must not block.
	Events events.Sink
	// PollInterval is how often held long-polls re-read the store while
	// the bus cannot hear other replicas (its listening connection is
	// down), so their changes still arrive. Zero never polls. It costs
	// nothing while the bus is live, and only Run polls.
	PollInterval time.Duration
	// ChangesLimit is the most changes one sync returns; default 100.
	ChangesLimit int
	// Retention is how long answered changes are kept (for OfferState)
	// before Run prunes them; default 30 days.
	Retention time.Duration
	// Period is the time step the clock warning is judged against;
	// default 30 s.
	Period time.Duration
	// ReplayCacheSize bounds the nonces remembered; default
	// proto.DefaultReplayCacheSize.
	ReplayCacheSize int
	// MaxHeldPolls bounds the syncs of paired appliances held at once by
	// this process; past it a sync is answered at once, as if its wait
	// had ended. Default DefaultMaxHeldPolls.
	MaxHeldPolls int
	// MaxPairingPolls bounds the pairing status requests (of keys waiting
	// to be paired) held at once by this process, apart from the syncs of
	// paired appliances, so a flood of pairing keys cannot take their
	// place; past it a status request is answered at once. Default
	// DefaultMaxPairingPolls.
	MaxPairingPolls int
}

// Defaults of Config's bounds on held long-polls.
const (
	DefaultMaxHeldPolls    = 20000
	DefaultMaxPairingPolls = 256
)

// MaxHeldPerKey is how many long-polls one key (a paired appliance, or a
// key waiting to be paired) may have held at once; its further requests
// are answered at once. An appliance holds one, and a second while it
// reconnects.
const MaxHeldPerKey = 2

// API is the appliance API. Create it with New; its methods are safe for
// concurrent use.
type API struct {
	cfg      Config
	store    Store
	clock    Clock
	log      *slog.Logger
	verifier proto.Verifier
	notify   notifier
	bus      *fleet.Bus
	pairing  ratelimit.Limit
	// pairingHere is the pairing limit in this process, taken before the
	// shared one: a burst from one address is refused here and reaches
	// the store only for the tokens this replica could grant.
	pairingHere *ratelimit.Limiter
	// pairingShared is set when pairing is not pairingHere.
	pairingShared bool
	unauth        *ratelimit.Limiter

	observer atomic.Pointer[Observer]

	mu      sync.Mutex
	online  map[string]int // appliance id or key topic -> held long-polls
	heldAll [2]int         // held long-polls: [0] paired syncs, [1] pairing status
}

// Delivery is an offer handed to its appliance: the first sync answer
// that carries it (the one whose request asked for the changes after a
// revision below the offer's). A held long-poll woken by the offer and a
// new poll that finds it both deliver; so does a sync served by another
// replica than the one that sent the offer, for Sent is the offer's time
// in the store.
type Delivery struct {
	ApplianceID string
	DeviceUID   string
	// Sent is when the offer was written to the store; At when the sync
	// answer carrying it was written to the appliance.
	Sent, At time.Time
}

// Latency is how long the offer took from the store to its appliance.
func (d Delivery) Latency() time.Duration { return d.At.Sub(d.Sent) }

// Observer hears what the appliance API reports as it happens. Its
// methods are called on the request's goroutine and must return quickly.
type Observer interface {
	// OfferDelivered reports one Delivery per offer delivered.
	OfferDelivered(Delivery)
}

// Report sets who hears the API's events (nil: nobody). The server's
// core sets itself, to time offers.
func (a *API) Report(o Observer) {
	if o == nil {
		a.observer.Store(nil)
		return
	}
	a.observer.Store(&o)
}

// delivered reports the pending offers of resp that the appliance had not
// had: those after the revision it asked from.
func (a *API) delivered(appID string, list []store.Change, resp proto.Changes, after int64) {
	o := a.observer.Load()
	if o == nil {
		return
	}
	now := a.clock.Now()
	for _, c := range list[:len(resp.Changes)] {
		if c.Kind == store.ChangeOffer && c.State == store.ChangePending && c.Rev > after {
			(*o).OfferDelivered(Delivery{ApplianceID: appID, DeviceUID: c.DeviceUID, Sent: c.Created, At: now})
		}
	}
}

// New returns an API for cfg, or an error naming what is missing.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil {
		return nil, errors.New("appliance: Config.Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PairingCodeTTL <= 0 {
		cfg.PairingCodeTTL = DefaultPairingCodeTTL
	}
	if cfg.PairingRate == (Rate{}) {
		cfg.PairingRate = DefaultPairingRate
	}
	if cfg.UnauthenticatedRate == (Rate{}) {
		cfg.UnauthenticatedRate = DefaultUnauthenticatedRate
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.MaxWait <= 0 || cfg.MaxWait > proto.MaxWait {
		cfg.MaxWait = proto.MaxWait
	}
	if cfg.ChangesLimit <= 0 {
		cfg.ChangesLimit = DefaultChangesLimit
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.MaxHeldPolls <= 0 {
		cfg.MaxHeldPolls = DefaultMaxHeldPolls
	}
	if cfg.MaxPairingPolls <= 0 {
		cfg.MaxPairingPolls = DefaultMaxPairingPolls
	}
	a := &API{
		cfg:         cfg,
		store:       cfg.Store,
		clock:       cfg.Clock,
		log:         cfg.Logger,
		pairingHere: ratelimit.New(cfg.PairingRate),
		unauth:      ratelimit.New(cfg.UnauthenticatedRate),
		online:      make(map[string]int),
	}
	a.pairing = a.pairingHere
	if cfg.Limits != nil {
		a.pairing = cfg.Limits.New(LimitPairingIP, cfg.PairingRate)
		a.pairingShared = true
	}
	a.verifier.MaxNonces = cfg.ReplayCacheSize
	a.bus = cfg.Bus
	if a.bus == nil {
		a.bus = fleet.New(nil, cfg.Logger)
	}
	a.bus.Handle(noticeKind, a.notify.notify)
	a.bus.OnResync(a.notify.notifyAll)
	return a, nil
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Handler serves the appliance API under proto.PathPrefix
// (/api/v1/appliance/). Mount it on the server's mux at that prefix.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+proto.PairingPath, a.handleRequestCode)
	mux.HandleFunc("GET "+proto.PairingPath, a.handlePairingStatus)
	mux.HandleFunc("GET "+proto.PathPrefix+"{id}/changes", a.handleChanges)
	mux.HandleFunc("POST "+proto.PathPrefix+"{id}/ack", a.handleAck)
	mux.HandleFunc("POST "+proto.PathPrefix+"{id}/held", a.handleHeld)
	mux.HandleFunc(proto.PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, proto.CodeBadRequest, "no such appliance API endpoint")
	})
	return mux
}

// Run prunes expired pairing codes, old answered changes and expired
// request nonces every minute until ctx is done, and wakes held
// long-polls every PollInterval while the bus is not live. Every replica
// runs it.
func (a *API) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() { defer close(done); a.pollFallback(ctx) }()
	defer func() { <-done }()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		a.prune(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *API) prune(ctx context.Context) {
	now := a.clock.Now()
	if _, err := a.store.DeleteExpiredPairingCodes(ctx, now); err != nil && ctx.Err() == nil {
		a.log.Warn("prune pairing codes", "err", err)
	}
	if _, err := a.store.DeleteAnsweredChanges(ctx, now.Add(-a.cfg.Retention)); err != nil && ctx.Err() == nil {
		a.log.Warn("prune answered changes", "err", err)
	}
	if _, err := a.store.DeleteExpiredNonces(ctx, now); err != nil && ctx.Err() == nil {
		a.log.Warn("prune request nonces", "err", err)
	}
	a.pairing.Prune(now)
	a.pairingHere.Prune(now)
	a.unauth.Prune(now)
}

// hold counts a long-poll of key (an appliance id, or a pairing key's
// topic) as held and returns the function that ends it, or nil when key
// holds MaxHeldPerKey already or the kind's total is reached: the request
// is then answered at once. Held long-polls cost a goroutine or two and
// their connection's buffers each, so they are bounded per key and in
// all.
func (a *API) hold(key string, pairing bool) (release func()) {
	kind, limit := 0, a.cfg.MaxHeldPolls
	if pairing {
		kind, limit = 1, a.cfg.MaxPairingPolls
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.online[key] >= MaxHeldPerKey || a.heldAll[kind] >= limit {
		return nil
	}
	a.online[key]++
	a.heldAll[kind]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.heldAll[kind]--
		if a.online[key]--; a.online[key] <= 0 {
			delete(a.online, key)
		}
	}
}

func (a *API) isOnline(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.online[id] > 0
}

// Errors of the console-facing methods, for errors.Is.
var (
	ErrBadCode        = errors.New("no appliance is waiting with this pairing code (codes expire after 10 minutes)")
	ErrNameTaken      = errors.New("another appliance has this name")
	ErrNoAppliance    = errors.New("no such appliance")
	ErrUnpairing      = errors.New("the appliance is being unpaired")
	ErrNoOffer        = errors.New("the MFA device was never sent to an appliance")
	ErrOnAnother      = errors.New("the MFA device is already on another appliance")
	ErrBadOffer       = errors.New("invalid offer")
	ErrAlreadyExpired = errors.New("the offer's expiry has passed")
)

package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
)

// Source is where users come from: *LDAP, or a fake in tests.
type Source interface {
	// Users returns every user the source has for totpbox; an error means
	// the source could not be read, and nothing may be concluded from it.
	Users() ([]Entry, error)
	String() string
}

// SourceLDAP is the source name of LDAP users in the store and the audit.
const SourceLDAP = core.SourceLDAP

// Core is what the sync changes users through, so that every change is
// audited and reaches every replica's cache: *core.Core.
type Core interface {
	ApplyDirectoryUser(ctx context.Context, a core.Actor, du core.DirectoryUser) (core.DirectoryOutcome, store.User, error)
	DirectoryUserLeft(ctx context.Context, a core.Actor, l store.DirectoryLink) (core.DirectoryOutcome, error)
}

// Store is what the sync reads beside the core: the links, and the lease
// that lets one replica sync at a time.
type Store interface {
	store.Directory
	store.Leases
}

// Result counts what one sync did.
type Result struct {
	Created, Updated, Disabled, Reenabled, Unchanged int
	// Skipped lists the entries our rules refused, one line each
	// ("uid=x,ou=people: username may hold only …").
	Skipped []string
}

// String is what `totpserver directory sync` prints.
func (r Result) String() string {
	s := fmt.Sprintf("created %d, updated %d, disabled %d, re-enabled %d, unchanged %d",
		r.Created, r.Updated, r.Disabled, r.Reenabled, r.Unchanged)
	if len(r.Skipped) > 0 {
		s += fmt.Sprintf(", skipped %d", len(r.Skipped))
	}
	return s
}

// Actor is who the audit says made the sync's changes.
var Actor = core.Actor{Name: "directory", Role: core.RoleAdmin}

// Syncer keeps the users of one source in step with it.
type Syncer struct {
	source Source
	core   Core
	store  Store
	log    *slog.Logger
	now    func() time.Time
	// holder names this replica for the lease.
	holder   string
	interval time.Duration

	mu     sync.Mutex
	status Status

	runs     *prometheus.CounterVec
	users    prometheus.Gauge
	lastGood prometheus.Gauge
}

// Status is the sync's state for the console's banner and health.
type Status struct {
	// LastSync is when the last sync ended well; zero before.
	LastSync time.Time
	// Err is the last sync's error while the source is failing; nil once
	// a sync succeeds again.
	Err error
	// Since is when the source began failing.
	Since time.Time
	// Last is the last good sync's result.
	Last Result
}

// NewSyncer makes a syncer of source's users; holder names this replica
// for the lease (host and process), interval is how often Run syncs.
func NewSyncer(source Source, c Core, st Store, log *slog.Logger, holder string, interval time.Duration) *Syncer {
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{
		source: source, core: c, store: st, log: log, now: time.Now, holder: holder, interval: interval,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_directory_syncs_total",
			Help: "Directory syncs run by this replica, by result (ok, error).",
		}, []string{"result"}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "totpserver_directory_users",
			Help: "Users the directory had at the last good sync.",
		}),
		lastGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "totpserver_directory_last_sync_timestamp_seconds",
			Help: "When this replica last synced the directory well (Unix time); 0 before.",
		}),
	}
}

// Collectors returns the sync's metrics, to register.
func (y *Syncer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{y.runs, y.users, y.lastGood}
}

// Status returns the sync's state.
func (y *Syncer) Status() Status {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.status
}

// Sync reads the source once and applies it: users that appeared are
// created, changed ones updated, those gone or disabled there disabled,
// those back enabled again; unchanged users are not written. A source
// that cannot be read changes nothing.
func (y *Syncer) Sync(ctx context.Context) (Result, error) {
	entries, err := y.source.Users()
	if err != nil {
		y.failed(err)
		return Result{}, err
	}
	var r Result
	seen := make(map[string]bool, len(entries))
	sort.Slice(entries, func(i, j int) bool { return entries[i].DN < entries[j].DN })
	for _, e := range entries {
		id := normDN(e.DN)
		if seen[id] {
			continue
		}
		seen[id] = true
		du := core.DirectoryUser{Source: SourceLDAP, ExternalID: id, Username: e.Username,
			DisplayName: e.DisplayName, Email: e.Email, Disabled: e.Disabled}
		if e.AdminKnown {
			admin := e.Admin
			du.Admin = &admin
		}
		out, _, err := y.core.ApplyDirectoryUser(ctx, Actor, du)
		if r.skip(e.DN, err) {
			continue
		}
		if err != nil {
			y.failed(err)
			return r, fmt.Errorf("directory sync: %s: %w", e.DN, err)
		}
		r.count(out)
	}
	links, err := y.store.DirectoryLinks(ctx, SourceLDAP)
	if err != nil {
		y.failed(err)
		return r, err
	}
	for _, l := range links {
		if seen[l.ExternalID] {
			continue
		}
		out, err := y.core.DirectoryUserLeft(ctx, Actor, l)
		if r.skip(l.ExternalID, err) {
			continue
		}
		if err != nil {
			y.failed(err)
			return r, fmt.Errorf("directory sync: %s left: %w", l.ExternalID, err)
		}
		r.count(out)
	}
	y.mu.Lock()
	y.status = Status{LastSync: y.now(), Last: r}
	y.mu.Unlock()
	y.runs.WithLabelValues("ok").Inc()
	y.users.Set(float64(len(seen)))
	y.lastGood.Set(float64(y.now().Unix()))
	return r, nil
}

// skip reports whether err is the core refusing one user's change (a
// core.Failure), and then lists it under who in r.Skipped: the sync goes
// on without that user.
func (r *Result) skip(who string, err error) bool {
	var f *core.Failure
	if !errors.As(err, &f) {
		return false
	}
	r.Skipped = append(r.Skipped, fmt.Sprintf("%s: %s", who, f.Msg))
	return true
}

func (r *Result) count(o core.DirectoryOutcome) {
	switch o {
	case core.DirectoryCreated:
		r.Created++
	case core.DirectoryUpdated:
		r.Updated++
	case core.DirectoryDisabled:
		r.Disabled++
	case core.DirectoryReenabled:
		r.Reenabled++
	default:
		r.Unchanged++
	}
}

func (y *Syncer) failed(err error) {
	y.runs.WithLabelValues("error").Inc()
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.status.Err == nil {
		y.status.Since = y.now()
	}
	y.status.Err = err
}

// leaseName is the lease the replicas share for the sync.
const leaseName = "directory-sync"

// Run syncs every interval until ctx ends, on one replica at a time: the
// replica that holds the lease syncs, the others wait for it to run out.
// A failing source is retried with backoff (from 10 s, doubling, up to
// the interval) and logged once per change of error.
func (y *Syncer) Run(ctx context.Context) error {
	backoff := 10 * time.Second
	var lastErr string
	for {
		wait := y.interval
		ok, err := y.store.TryLease(ctx, leaseName, y.holder, y.now(), y.interval+time.Minute)
		switch {
		case err != nil:
			y.log.Warn("directory sync: lease", "err", err)
		case ok:
			r, err := y.Sync(ctx)
			if err != nil {
				if msg := err.Error(); msg != lastErr {
					y.log.Error("directory sync failed; retrying with backoff, users unchanged", "source", y.source.String(), "err", err)
					lastErr = msg
				}
				wait = min(backoff, y.interval)
				backoff *= 2
				break
			}
			if lastErr != "" {
				y.log.Info("directory sync works again", "source", y.source.String())
			}
			lastErr, backoff = "", 10*time.Second
			if r.Created+r.Updated+r.Disabled+r.Reenabled > 0 || len(r.Skipped) > 0 {
				y.log.Info("directory sync", "source", y.source.String(), "result", r.String())
			}
			for _, s := range r.Skipped {
				y.log.Warn("directory sync skipped an entry", "entry", s)
			}
		}
		// A little jitter keeps replicas from asking at the same instant.
		wait += time.Duration(rand.Int64N(int64(time.Second)))
		select {
		case <-ctx.Done():
			_ = y.store.ReleaseLease(context.WithoutCancel(ctx), leaseName, y.holder)
			return nil
		case <-time.After(wait):
		}
	}
}

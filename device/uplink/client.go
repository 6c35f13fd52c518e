// Package uplink is the appliance side of pairing and sync with the
// registration server.
//
// On first start it creates the appliance's identity (an Ed25519 signing
// key and an X25519 box key) in the state directory. While unpaired it asks
// the server for a pairing code and shows it through PairingCode (the
// device loop's pairing view). Once paired it long-polls the server for
// changes and applies them to the vault: offers are published by Offers
// and stored as pending accounts when answered with Answer; activations,
// renames, deletions, cancellations and expiries follow; an unpair wipes
// every account the server delivered and leaves local ones alone.
//
// Every change is applied idempotently and the revision is saved
// atomically after each one, and acks wait in a saved outbox until the
// server has them, so neither a lost response nor a restart duplicates or
// drops an account. Offers not yet answered are sent again by the server
// until they are, so a restart shows them again.
//
// The client knows no appliance loop: it publishes its offers, link and
// pairing state on its own types, and signals on Changed when they change.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Vault is the account store as the client uses it; *vault.Vault
// satisfies it.
type Vault interface {
	List() []vault.Account
	Add(vault.Account) (vault.Account, error)
	Update(id string, fn func(*vault.Account) error) (vault.Account, error)
	Rename(id, label string) (vault.Account, error)
	RemoveWhere(match func(vault.Account) bool) (int, error)
}

var _ Vault = (*vault.Vault)(nil)

// Config configures a Client. Server, StateDir, Vault and Clock are
// required.
type Config struct {
	// Server is the registration server's URL, https://host[:port]. Plain
	// http is accepted only to a loopback address.
	Server string
	// CAFile, when set, is a PEM file of the CAs the server's certificate
	// must chain to, instead of the system roots.
	CAFile string
	// PinSHA256, when set, is the SHA-256 (hex, colons allowed) of the
	// server's certificate: only that certificate is accepted, and chain
	// verification is skipped (for self-signed servers).
	PinSHA256 string
	// StateDir holds the identity and the sync state (created 0700).
	StateDir string
	// Vault holds the accounts.
	Vault Vault
	// Sealer, when set (TPM mode), keeps the identity's private keys
	// sealed to the appliance's TPM; nil keeps them in a plain 0600 file.
	Sealer Sealer
	// Secrets, when set, returns the appliance's secrets mode ("tpm" or
	// "software"), reported to the server with each clock report.
	Secrets func() string
	// Clock gives the readings reported to the server and the time
	// requests are signed with.
	Clock clock.Clock
	// Version is the software version reported to the server.
	Version string
	// Logger receives the client's logs; nil means slog.Default(). Keys,
	// secrets and pairing codes are never logged.
	Logger *slog.Logger
	// HTTPClient, when set, is used for every request as it is: CAFile and
	// PinSHA256 are then ignored (the simulator and tests set it).
	HTTPClient *http.Client
	// Backoff is the retry schedule while the server is unreachable; zero
	// means DefaultBackoff (1 s doubling to 5 min, jittered).
	Backoff Backoff
	// OfferLifetime is how long an offer stays on the appliance unanswered
	// before it leaves, rejected (the admin sends it again from the
	// console); zero means DefaultOfferLifetime. The server's expiry ends
	// it sooner when it comes first.
	OfferLifetime time.Duration
	// Wait is how long a sync may be held by the server; zero means
	// proto.MaxWait (60 s).
	Wait time.Duration
	// OnSync, when set, is called after each sync request with how long
	// the server could hold it, how long it took and its error (nil on
	// success), for metrics.
	OnSync func(wait, took time.Duration, err error)
}

// Client pairs the appliance and keeps its vault in sync. Create it with
// New and run it with Run; the other methods are safe from any goroutine.
type Client struct {
	cfg     Config
	server  *url.URL
	http    *http.Client
	id      *identity
	log     *slog.Logger
	vault   Vault
	wake    chan struct{} // wakes the ack loop
	changed chan struct{} // signals a change of offers, link or pairing

	// applyMu serialises changes to the vault, the open offers and the
	// saved state between the sync loop, offer answers and the ack loop.
	// It is taken before mu.
	applyMu sync.Mutex

	mu          sync.Mutex
	st          syncState
	code        string
	codeExpires time.Time
	fails       int
	lastSync    time.Time
	lastErr     string
	skew        time.Duration // added to the clock when signing, learned from the server
	offers      map[string]*openOffer
	offerSeq    int64                 // numbers open offers and takeover batches in the order they arrived
	batches     map[string]*openBatch // open takeover batches, by id
	more        bool
}

// openOffer is an offer published and not answered yet. Its key is
// opened once, when the offer arrives, and cleared when the offer leaves.
type openOffer struct {
	seq                     int64
	rev                     int64
	deviceID, user, devName string
	label                   string
	key                     enroll.Key
	sequence                []string // the button sequence that accepts it
	expires                 time.Time
	timer                   *time.Timer
}

// DefaultOfferLifetime is how long an unanswered offer stays on the
// appliance by default: long enough for the admin holding the appliance,
// short enough that an offer left behind does not wait for a passer-by.
const DefaultOfferLifetime = 2 * time.Minute

// New checks cfg, loads or creates the identity and the sync state, and
// returns a Client ready to Run.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.StateDir == "":
		return nil, errors.New("client: no state directory")
	case cfg.Vault == nil:
		return nil, errors.New("client: no vault")
	case cfg.Clock == nil:
		return nil, errors.New("client: no clock")
	}
	u, err := parseServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Wait <= 0 || cfg.Wait > proto.MaxWait {
		cfg.Wait = proto.MaxWait
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = newHTTPClient(u, cfg.CAFile, cfg.PinSHA256); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("client: state directory: %w", err)
	}
	if err := os.Chmod(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("client: state directory: %w", err)
	}
	id, err := loadIdentity(cfg.StateDir, cfg.Sealer)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{cfg: cfg, server: u, http: hc, id: id, log: cfg.Logger, vault: cfg.Vault,
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), offers: make(map[string]*openOffer),
		batches: make(map[string]*openBatch)}
	if st.Server != "" && st.Server != u.String() {
		c.log.Warn("the configured server changed: pairing again; accounts are kept", "was", st.Server, "now", u.String())
		st = syncState{}
	}
	st.Server = u.String()
	c.st = st
	return c, nil
}

// KeyID returns the appliance's key id, as the server sees it.
func (c *Client) KeyID() string { return proto.KeyID(c.id.signPub()) }

// PairingCode returns the server's address and the code to type in the
// console, and whether the appliance waits to be paired. The code is
// empty while it is being fetched.
func (c *Client) PairingCode() (server, code string, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server.Host, c.code, !c.st.paired()
}

// Changed returns a channel that receives when the offers, the link or the
// pairing change. It holds one signal at most: a reader that was busy sees
// several changes as one, and then reads the current state.
func (c *Client) Changed() <-chan struct{} { return c.changed }

// notify signals a change on Changed without waiting for a reader.
func (c *Client) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Run pairs and syncs until ctx is done; it returns nil then. Failures are
// retried with backoff and reported by Status and Link.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.ackLoop(ctx) })
	defer wg.Wait()
	fails := 0
	wait := time.Duration(0) // the first sync answers at once: open offers come back
	for ctx.Err() == nil {
		var err error
		if c.isPaired() {
			err = c.sync(ctx, wait)
		} else {
			err = c.pair(ctx)
		}
		if err == nil {
			fails = 0
			wait = c.cfg.Wait
			c.mu.Lock()
			if c.more {
				wait, c.more = 0, false
			}
			c.mu.Unlock()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fails++
		c.failed(err)
		wait = 0
		if wallclock.Sleep(ctx, c.retryDelay(err, fails)) != nil {
			break
		}
	}
	return nil
}

func (c *Client) isPaired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.paired()
}

func (c *Client) state() syncState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Outbox = slices.Clone(s.Outbox)
	return s
}

// commit saves st and makes it the current state. On a failed save the
// state is unchanged.
func (c *Client) commit(st syncState) error {
	if err := saveState(c.cfg.StateDir, st); err != nil {
		return err
	}
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	return nil
}

func (c *Client) failed(err error) {
	c.mu.Lock()
	c.fails++
	c.lastErr = err.Error()
	first := c.fails == 1
	c.mu.Unlock()
	if first {
		c.log.Warn("server unreachable; retrying with backoff", "err", err)
		c.notify()
	} else {
		c.log.Debug("server still unreachable", "err", err)
	}
}

func (c *Client) succeeded() {
	c.mu.Lock()
	was := c.linkLocked()
	recovered := c.fails > 0
	c.fails, c.lastErr, c.lastSync = 0, "", time.Now()
	now := c.linkLocked()
	c.mu.Unlock()
	if recovered {
		c.log.Info("server reachable again")
	}
	if was != now {
		c.notify()
	}
}

// now is the time requests are signed with: the appliance's clock, with
// the correction learned from a clock_skew refusal.
func (c *Client) now() time.Time {
	c.mu.Lock()
	skew := c.skew
	c.mu.Unlock()
	return c.cfg.Clock.Now().Time.Add(skew)
}

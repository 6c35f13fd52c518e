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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
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
	offerSeq    int64 // numbers open offers in the order they arrived
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
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), offers: make(map[string]*openOffer)}
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

// Link is the state of the appliance's link with the server.
type Link int

// The link states.
const (
	// LinkNone: not paired (or standalone).
	LinkNone Link = iota
	// LinkUp: the last request reached the server.
	LinkUp
	// LinkDown: the server is unreachable.
	LinkDown
)

// String returns "none", "up" or "down".
func (l Link) String() string {
	switch l {
	case LinkNone:
		return "none"
	case LinkUp:
		return "up"
	case LinkDown:
		return "down"
	}
	return fmt.Sprintf("Link(%d)", int(l))
}

// Link returns the link state: none while unpaired, up while syncs
// succeed, down while the server is unreachable.
func (c *Client) Link() Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.linkLocked()
}

func (c *Client) linkLocked() Link {
	switch {
	case !c.st.paired():
		return LinkNone
	case c.fails == 0 && !c.lastSync.IsZero():
		return LinkUp
	}
	return LinkDown
}

// Status is the client's state for totpctl status.
type Status struct {
	Server         string    `json:"server"`
	KeyID          string    `json:"key_id"`
	Paired         bool      `json:"paired"`
	ApplianceID    string    `json:"appliance_id,omitempty"`
	Name           string    `json:"name,omitempty"`
	PairingCode    string    `json:"pairing_code,omitempty"`
	PairingExpires time.Time `json:"pairing_expires,omitzero"`
	Link           string    `json:"link"`
	LastSync       time.Time `json:"last_sync,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	Failures       int       `json:"failures"`
	Rev            int64     `json:"rev"`
	OpenOffers     int       `json:"open_offers"`
	PendingAcks    int       `json:"pending_acks"`
}

// Status returns the client's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Server: c.server.String(), KeyID: c.KeyID(), Paired: c.st.paired(), ApplianceID: c.st.ApplianceID,
		Name: c.st.Name, Link: c.linkLocked().String(), LastSync: c.lastSync, LastError: c.lastErr,
		Failures: c.fails, Rev: c.st.Rev, OpenOffers: len(c.offers), PendingAcks: len(c.st.Outbox)}
	if !s.Paired {
		s.PairingCode, s.PairingExpires = c.code, c.codeExpires
	}
	return s
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
		if !sleep(ctx, c.retryDelay(err, fails)) {
			break
		}
	}
	return nil
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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

// StatusError is an error response from the server.
type StatusError struct {
	StatusCode int
	Err        *proto.Error
	// RetryAfter is the wait the server asked for in its Retry-After
	// header; zero when it sent none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return fmt.Sprintf("server: %d: %v", e.StatusCode, e.Err) }

// Unwrap returns the server's error.
func (e *StatusError) Unwrap() error { return e.Err }

func errorCode(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Err.Code
	}
	return ""
}

// do sends a signed request and decodes the answer into out. A refusal
// for clock skew is retried once with the server's time.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, timeout time.Duration) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		u := *c.server
		u.Path = c.server.Path + path
		u.RawQuery = query.Encode()
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("User-Agent", "totpd/"+c.cfg.Version)
		proto.Sign(req, body, c.id.sign, c.now())
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: answer is not valid JSON", method, path)
			}
			return nil
		}
		pe := &proto.Error{}
		if json.Unmarshal(b, pe) != nil || pe.Code == "" {
			pe = &proto.Error{Code: "http", Message: resp.Status}
		}
		if pe.Code == proto.CodeClockSkew && !pe.ServerTime.IsZero() && attempt == 0 {
			skew := pe.ServerTime.Sub(c.cfg.Clock.Now().Time)
			c.log.Warn("the server refused this appliance's time; signing with the server's", "skew", skew.Round(time.Second))
			c.mu.Lock()
			c.skew = skew
			c.mu.Unlock()
			continue
		}
		return &StatusError{StatusCode: resp.StatusCode, Err: pe, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
}

// maxRetryAfter caps the wait a server's Retry-After may ask for.
const maxRetryAfter = time.Minute

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date,
// capped at maxRetryAfter; zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(time.Duration(max(n, 0))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// retryDelay is the wait before retrying after the fails-th failure in a
// row. A server that is up but cannot serve for now (503 from a replica
// cut off from its database, 502 or 504 from a load balancer whose
// replica went away) is retried after its Retry-After, or after the
// backoff's first step, without growing the backoff: the appliance is
// back within seconds of the server. Anything else (no answer at all)
// backs off exponentially.
func (c *Client) retryDelay(err error, fails int) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			if se.RetryAfter > 0 {
				// A little jitter, so a fleet does not come back at once.
				return se.RetryAfter + time.Duration(rand.Int64N(int64(se.RetryAfter/4)+1))
			}
			return c.cfg.Backoff.Delay(1, nil)
		}
	}
	return c.cfg.Backoff.Delay(fails, nil)
}

const requestTimeout = 30 * time.Second

// pair asks for a pairing code, or waits for the admin to type it.
func (c *Client) pair(ctx context.Context) error {
	c.mu.Lock()
	code, expires := c.code, c.codeExpires
	c.mu.Unlock()
	var p proto.Pairing
	if code == "" || !c.now().Before(expires) {
		req := proto.PairingRequest{BoxKey: c.id.boxPub[:], Version: c.cfg.Version}
		if err := c.do(ctx, http.MethodPost, proto.PairingPath, nil, req, &p, requestTimeout); err != nil {
			return err
		}
	} else {
		q := url.Values{"wait": {strconv.Itoa(int(c.cfg.Wait / time.Second))}}
		if err := c.do(ctx, http.MethodGet, proto.PairingPath, q, nil, &p, c.cfg.Wait+requestTimeout); err != nil {
			return err
		}
	}
	c.succeeded()
	return c.pairingAnswer(p)
}

func (c *Client) pairingAnswer(p proto.Pairing) error {
	switch p.State {
	case proto.PairingPaired:
		c.applyMu.Lock()
		defer c.applyMu.Unlock()
		st := syncState{Server: c.server.String(), ApplianceID: p.ApplianceID, Name: p.Name}
		if err := c.commit(st); err != nil {
			return err
		}
		c.mu.Lock()
		c.code, c.codeExpires = "", time.Time{}
		c.mu.Unlock()
		c.log.Info("paired with the server", "appliance", p.ApplianceID, "name", p.Name)
		c.notify()
	case proto.PairingWaiting:
		c.mu.Lock()
		changed := c.code != p.Code
		c.code, c.codeExpires = p.Code, p.ExpiresAt
		c.mu.Unlock()
		if changed {
			c.log.Info("waiting to be paired; the pairing code is on the screen", "expires", p.ExpiresAt)
			c.notify()
		}
	default:
		c.mu.Lock()
		c.code, c.codeExpires = "", time.Time{}
		c.mu.Unlock()
	}
	return nil
}

// sync fetches changes after the saved revision and applies them. The
// first sync of a pairing reconciles first.
func (c *Client) sync(ctx context.Context, wait time.Duration) error {
	if !c.state().Reconciled {
		if err := c.reconcile(ctx); err != nil {
			return err
		}
		if !c.isPaired() {
			return nil
		}
	}
	st := c.state()
	q := proto.SyncQuery{After: st.Rev, Wait: wait, Version: c.cfg.Version, Accounts: len(c.vault.List())}
	r := c.cfg.Clock.Now()
	q.Clock = &proto.ClockReport{Time: r.Time, Bound: r.Bound, State: r.State.String(), Frequency: r.Frequency,
		Authenticated: r.Authenticated}
	if c.cfg.Secrets != nil {
		q.Secrets = c.cfg.Secrets()
	}
	var resp proto.Changes
	start := time.Now()
	err := c.do(ctx, http.MethodGet, proto.ChangesPath(st.ApplianceID), q.Encode(), nil, &resp, wait+requestTimeout)
	if c.cfg.OnSync != nil && ctx.Err() == nil {
		c.cfg.OnSync(wait, time.Since(start), err)
	}
	if errorCode(err) == proto.CodeNotPaired {
		return c.lostPairing()
	}
	if err != nil {
		return err
	}
	c.succeeded()
	for _, ch := range resp.Changes {
		if err := c.applyChange(ch); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.more = resp.More
	c.mu.Unlock()
	return nil
}

// reconcile reports, once per pairing and before its first sync, the
// accounts the server placed under an earlier pairing (the server
// unpaired or forgot the appliance while it kept them): the server
// re-adopts those whose MFA device is active and on no other appliance
// (an adopted account still pending here becomes active), and the rest are
// wiped. Accounts added on the appliance are untouched.
// A server without the endpoint (404) adopts nothing and wipes nothing.
func (c *Client) reconcile(ctx context.Context) error {
	st := c.state()
	var held []string
	for _, a := range c.vault.List() {
		if !a.IsLocal() && !slices.Contains(held, a.Source) {
			held = append(held, a.Source)
		}
	}
	keep := make(map[string]bool, len(held))
	older := false
	for chunk := range slices.Chunk(held, proto.MaxHeld) {
		var resp proto.HeldResponse
		err := c.do(ctx, http.MethodPost, proto.HeldPath(st.ApplianceID), nil, proto.HeldRequest{DeviceIDs: chunk}, &resp, requestTimeout)
		if errorCode(err) == proto.CodeNotPaired {
			return c.lostPairing()
		}
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			older = true
			break
		}
		if err != nil {
			return fmt.Errorf("reconcile accounts from an earlier pairing: %w", err)
		}
		for _, id := range resp.Adopted {
			keep[id] = true
		}
	}
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if cur := c.state(); cur.ApplianceID != st.ApplianceID {
		return nil // paired again meanwhile: the next sync reconciles
	}
	wiped := 0
	if !older {
		n, err := c.vault.RemoveWhere(func(a vault.Account) bool {
			return !a.IsLocal() && slices.Contains(held, a.Source) && !keep[a.Source]
		})
		if err != nil {
			return fmt.Errorf("wipe accounts from an earlier pairing: %w", err)
		}
		wiped = n
		// The server adopts only active MFA devices: an account still
		// pending here (confirmed while the appliance was away) is active.
		for _, a := range c.vault.List() {
			if a.IsLocal() || !keep[a.Source] || a.State == vault.Active {
				continue
			}
			if _, err := c.vault.Update(a.ID, func(a *vault.Account) error {
				a.State = vault.Active
				return nil
			}); err != nil {
				return fmt.Errorf("activate an adopted account: %w", err)
			}
		}
	}
	st = c.state()
	st.Reconciled = true
	if err := c.commit(st); err != nil {
		return err
	}
	if len(held) > 0 {
		c.log.Info("accounts from an earlier pairing reconciled", "reported", len(held), "adopted", len(keep), "wiped", wiped, "server_without_reconcile", older)
		c.notify()
	}
	return nil
}

// lostPairing returns to pairing when the server no longer knows the key:
// after an unpair was applied and acknowledged, or when an admin made the
// server forget the appliance (then accounts are kept).
func (c *Client) lostPairing() error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	st := c.state()
	if !st.paired() {
		return nil
	}
	if st.UnpairRev == 0 {
		c.log.Warn("the server no longer knows this appliance; pairing again (accounts are kept)", "appliance", st.ApplianceID)
	} else {
		c.log.Info("unpaired from the server", "appliance", st.ApplianceID)
	}
	c.dropAllOffers()
	if err := c.commit(syncState{Server: c.server.String()}); err != nil {
		return err
	}
	c.notify()
	return nil
}

func (c *Client) wakeAcks() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ackLoop delivers the outbox whenever it holds acks, with backoff.
func (c *Client) ackLoop(ctx context.Context) {
	fails := 0
	for {
		st := c.state()
		if len(st.Outbox) == 0 || !st.paired() {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		batch := st.Outbox
		var resp proto.AckResponse
		err := c.do(ctx, http.MethodPost, proto.AckPath(st.ApplianceID), nil, proto.AckRequest{Acks: batch}, &resp, requestTimeout)
		switch code := errorCode(err); {
		case err == nil:
			fails = 0
			c.succeeded()
			if err := c.acked(batch, resp); err != nil {
				c.log.Warn("saving delivered acks failed", "err", err)
			}
			continue
		case code == proto.CodeNotPaired:
			if err := c.lostPairing(); err != nil {
				c.log.Warn("leaving the pairing failed", "err", err)
			}
			continue
		case code == proto.CodeBadRequest:
			// The server cannot take these acks (changes it no longer
			// has); retrying would never succeed.
			c.log.Warn("the server refused acks; dropping them", "err", err)
			c.acked(batch, proto.AckResponse{})
			continue
		case ctx.Err() != nil:
			return
		}
		fails++
		c.failed(fmt.Errorf("deliver acks: %w", err))
		if !sleep(ctx, c.retryDelay(err, fails)) {
			return
		}
	}
}

// acked removes delivered acks from the outbox and finishes an unpair.
func (c *Client) acked(batch []proto.Ack, resp proto.AckResponse) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	st := c.state()
	if st.UnpairRev != 0 {
		for _, a := range batch {
			if a.Rev == st.UnpairRev {
				// The server has the unpair's ack and forgot the
				// appliance.
				c.log.Info("unpaired from the server", "appliance", st.ApplianceID)
				c.dropAllOffers()
				err := c.commit(syncState{Server: c.server.String()})
				c.notify()
				return err
			}
		}
	}
	st.Outbox = slices.DeleteFunc(st.Outbox, func(o proto.Ack) bool { return slices.Contains(batch, o) })
	return c.commit(st)
}

// labelOf turns a device name into an account label the vault accepts.
func labelOf(name string) string {
	if utf8.RuneCountInString(name) <= vault.MaxLabelLen {
		return name
	}
	return string([]rune(name)[:vault.MaxLabelLen])
}

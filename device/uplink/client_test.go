package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// screen stands in for the appliance loop: it reads the client's offers
// on every signal of Changed, and answers them as a press does.
type screen struct {
	c     *Client
	v     *vault.Vault
	mu    sync.Mutex
	seen  map[string]bool
	shown int // distinct offers seen open
}

// watch follows Changed until ctx is done.
func (h *screen) watch(ctx context.Context) {
	for {
		select {
		case <-h.c.Changed():
			for _, o := range h.c.Offers() {
				h.mu.Lock()
				if !h.seen[o.ID] {
					h.seen[o.ID] = true
					h.shown++
				}
				h.mu.Unlock()
			}
		case <-ctx.Done():
			return
		}
	}
}

// shownOffer is an offer on the screen, answered as a press does.
type shownOffer struct {
	Offer
	h *screen
}

// Accept answers OK and returns the stored account's id.
func (o shownOffer) Accept() (string, error) {
	if err := o.h.c.Answer(o.ID, true); err != nil {
		return "", err
	}
	for _, a := range o.h.v.List() {
		if a.Source == o.ID {
			return a.ID, nil
		}
	}
	return "", errors.New("accepted offer's account not in the vault")
}

// Reject answers Back.
func (o shownOffer) Reject() error { return o.h.c.Answer(o.ID, false) }

// offers returns the offers on screen.
func (h *screen) offers() []shownOffer {
	var out []shownOffer
	for _, o := range h.c.Offers() {
		out = append(out, shownOffer{o, h})
	}
	return out
}

// take waits for an offer on screen and returns the first.
func (h *screen) take(t *testing.T) shownOffer {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "an offer on the screen", func() bool { return len(h.offers()) > 0 })
	return h.offers()[0]
}

func (h *screen) showCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shown
}

// server is the registration server's appliance API on loopback, with
// fault switches.
type server struct {
	api   *appliance.API
	store appliance.Store
	ts    *httptest.Server
	// down refuses every request with 503; acksDown only acks;
	// loseAcks processes acks but drops the answer.
	down, acksDown, loseAcks atomic.Bool
	// acceptsDelivered counts the "accepted" acks carried by ack
	// requests answered 200: an answer delivered twice counts twice,
	// however the outbox batched it.
	acceptsDelivered atomic.Int64
	unavailable      atomic.Int64 // requests the API answered 503
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isAck := strings.HasSuffix(r.URL.Path, "/ack")
	if s.down.Load() || isAck && s.acksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if isAck && s.loseAcks.Load() {
		s.api.Handler().ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler) // the answer is lost
	}
	var acks proto.AckRequest
	if isAck {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		json.Unmarshal(body, &acks) // a body that is not an AckRequest counts nothing
	}
	rec := &statusRecorder{ResponseWriter: w}
	s.api.Handler().ServeHTTP(rec, r)
	if isAck && rec.status == 200 {
		for _, a := range acks.Acks {
			if a.Result == proto.ResultAccepted {
				s.acceptsDelivered.Add(1)
			}
		}
	}
	if rec.status == http.StatusServiceUnavailable {
		s.unavailable.Add(1)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func newServer(t *testing.T, tls bool) *server {
	return newServerOn(t, storetest.OpenSQLite(t), tls)
}

func newServerOn(t *testing.T, st appliance.Store, tls bool) *server {
	s := &server{store: st}
	api, err := appliance.New(appliance.Config{Store: s.store, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.api = api
	s.ts = httptest.NewUnstartedServer(s)
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	t.Cleanup(s.ts.Close)
	return s
}

// app is an appliance: a real vault, a client and a fake screen, in dir.
type app struct {
	t      *testing.T
	dir    string
	vault  *vault.Vault
	c      *Client
	hooks  *screen
	cancel context.CancelFunc
	done   chan struct{}
}

func testConfig(s *server, dir string, v *vault.Vault) Config {
	return Config{Server: s.ts.URL, StateDir: filepath.Join(dir, "state"), Vault: v, Clock: clock.System{},
		Version: "test", Logger: testkit.Quiet(), Backoff: Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}}
}

func startApp(t *testing.T, s *server, dir string) *app {
	t.Helper()
	return startAppWith(t, s, dir, func(*Config) {})
}

// startAppWith is startApp with the client's config changed by edit.
func startAppWith(t *testing.T, s *server, dir string, edit func(*Config)) *app {
	t.Helper()
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, dir: dir, vault: v, done: make(chan struct{})}
	cfg := testConfig(s, dir, v)
	edit(&cfg)
	a.c, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.hooks = &screen{c: a.c, v: v, seen: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		var wg sync.WaitGroup
		wg.Go(func() { a.hooks.watch(ctx) })
		a.c.Run(ctx)
		wg.Wait()
		close(a.done)
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *app) stop() {
	a.cancel()
	<-a.done
	a.vault.Close()
}

// pair pairs the appliance through the code it shows and returns its id.
func (a *app) pair(s *server, name string) string {
	a.t.Helper()
	var code string
	testkit.WaitFor(a.t, 10*time.Second, "a pairing code", func() bool {
		_, code, _ = a.c.PairingCode()
		return code != ""
	})
	in, err := s.api.Pair(context.Background(), code, name)
	if err != nil {
		a.t.Fatal(err)
	}
	testkit.WaitFor(a.t, 10*time.Second, "the appliance to learn it is paired", func() bool { return a.c.Status().Paired })
	if st := a.c.Status(); st.ApplianceID != in.ID || st.Name != name {
		a.t.Fatalf("Status = %+v, want paired as %s", st, in.ID)
	}
	return in.ID
}

func (a *app) accounts() []vault.Account { return a.vault.List() }

func (a *app) account(source string) (vault.Account, bool) {
	for _, acc := range a.vault.List() {
		if acc.Source == source {
			return acc, true
		}
	}
	return vault.Account{}, false
}

func offerState(t *testing.T, s *server, dev string) string {
	st, err := s.api.OfferState(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	return st.State
}

func newKey(t *testing.T, account string) enroll.Key {
	k, err := enroll.NewKey("Example", account)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sendOffer(t *testing.T, s *server, id, dev, user, name string) enroll.Key {
	t.Helper()
	k := newKey(t, user)
	if err := s.api.SendOffer(context.Background(), id, dev, user, name, k, time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPairAndOfferLifecycle(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	if _, _, waiting := a.c.PairingCode(); !waiting || a.c.Link() != LinkNone {
		t.Fatalf("a new appliance is not waiting to pair (link %v)", a.c.Link())
	}
	id := a.pair(s, "Lobby kiosk 3")
	if _, _, waiting := a.c.PairingCode(); waiting {
		t.Error("paired appliance still waiting")
	}
	testkit.WaitFor(t, 10*time.Second, "link up", func() bool { return a.c.Link() == LinkUp })
	ctx := context.Background()
	key := sendOffer(t, s, id, "dev1", "alice", "Alice's token")
	o := a.hooks.take(t)
	if o.User != "alice" || o.DeviceName != "Alice's token" {
		t.Errorf("offer shows %q %q", o.User, o.DeviceName)
	}
	accID, err := o.Accept()
	if err != nil {
		t.Fatal(err)
	}
	acc, ok := a.account("dev1")
	if !ok || acc.ID != accID || acc.State != vault.Pending || acc.Label != "Alice's token" || string(acc.Key.Secret) != string(key.Secret) || acc.Issuer != "Example" {
		t.Fatalf("account = %v, want the offered key, pending, id %s", acc, accID)
	}
	testkit.WaitFor(t, 10*time.Second, "the server to see the accept", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
	if err := s.api.DeviceChanged(ctx, appliance.DeviceChange{Kind: store.ChangeActivate, DeviceUID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the account to become active", func() bool { acc, _ := a.account("dev1"); return acc.State == vault.Active })
	if err := s.api.DeviceChanged(ctx, appliance.DeviceChange{Kind: store.ChangeRename, DeviceUID: "dev1", Name: "Front desk"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the rename", func() bool { acc, _ := a.account("dev1"); return acc.Label == "Front desk" })
	if err := s.api.DeviceChanged(ctx, appliance.DeviceChange{Kind: store.ChangeDelete, DeviceUID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the account to be wiped", func() bool { _, ok := a.account("dev1"); return !ok })
	testkit.WaitFor(t, 10*time.Second, "every change acked", func() bool {
		cs, _ := s.store.Changes(ctx, id, 0, time.Now(), 0)
		for _, c := range cs {
			if c.State == store.ChangePending {
				return false
			}
		}
		return a.c.Status().PendingAcks == 0
	})
	in, _ := s.api.Appliance(ctx, id)
	if in.Version != "test" || in.Clock == nil || in.Clock.State != "SYNCED" || in.Warning != "" {
		t.Errorf("Appliance = %+v (clock %+v)", in, in.Clock)
	}
}

func TestRejectAndCancel(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	ctx := context.Background()
	sendOffer(t, s, id, "dev1", "alice", "one")
	if err := a.hooks.take(t).Reject(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "rejected on the appliance", func() bool { return offerState(t, s, "dev1") == proto.StateRejected })
	if len(a.accounts()) != 0 {
		t.Errorf("a rejected offer left accounts %v", a.accounts())
	}
	// Withdrawn while on screen: it leaves the screen, and a late press
	// stores nothing.
	sendOffer(t, s, id, "dev2", "bob", "two")
	testkit.WaitFor(t, 10*time.Second, "the offer on screen", func() bool { return len(a.hooks.offers()) == 1 })
	stale := a.hooks.offers()[0]
	if err := s.api.CancelOffer(ctx, "dev2"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the offer to leave the screen", func() bool { return len(a.hooks.offers()) == 0 })
	if _, err := stale.Accept(); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("Accept of a withdrawn offer = %v, want ErrWithdrawn", err)
	}
	if len(a.accounts()) != 0 {
		t.Errorf("a withdrawn offer left accounts %v", a.accounts())
	}
	// Accepted, then the registration expires unconfirmed.
	sendOffer(t, s, id, "dev3", "carol", "three")
	if _, err := a.hooks.take(t).Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "accepted", func() bool { return offerState(t, s, "dev3") == proto.StateAccepted })
	if err := s.api.DeviceChanged(ctx, appliance.DeviceChange{Kind: store.ChangeExpire, DeviceUID: "dev3"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the expired account to be wiped", func() bool { return len(a.accounts()) == 0 })
}

// TestOfferLeavesAfterItsLifetime: an offer nobody answers leaves the
// appliance after its lifetime there, well before the server's expiry,
// and is rejected: the server does not send it again, and a late press
// stores nothing.
func TestOfferLeavesAfterItsLifetime(t *testing.T) {
	s := newServer(t, false)
	a := startAppWith(t, s, t.TempDir(), func(c *Config) { c.OfferLifetime = 50 * time.Millisecond })
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	stale := a.hooks.take(t)
	testkit.WaitFor(t, 10*time.Second, "the offer to leave the appliance", func() bool { return len(a.hooks.offers()) == 0 })
	testkit.WaitFor(t, 10*time.Second, "the offer rejected at the server", func() bool { return offerState(t, s, "dev1") == proto.StateRejected })
	if _, err := stale.Accept(); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("Accept after the lifetime = %v, want ErrWithdrawn", err)
	}
	if len(a.accounts()) != 0 || a.hooks.showCount() != 1 {
		t.Errorf("after the lifetime: accounts %v, shown %d times; want none, once", a.accounts(), a.hooks.showCount())
	}
}

func TestUnpairKeepsLocalAccounts(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	if _, err := a.vault.Add(vault.Account{Key: newKey(t, "local")}); err != nil {
		t.Fatal(err)
	}
	id := a.pair(s, "A")
	for _, dev := range []string{"dev1", "dev2"} {
		sendOffer(t, s, id, dev, "u-"+dev, dev)
		if _, err := a.hooks.take(t).Accept(); err != nil {
			t.Fatal(err)
		}
	}
	sendOffer(t, s, id, "dev3", "u3", "open")
	testkit.WaitFor(t, 10*time.Second, "the third offer on screen", func() bool { return len(a.hooks.offers()) == 1 })
	if len(a.accounts()) != 3 {
		t.Fatalf("accounts = %v, want 3", a.accounts())
	}
	if err := s.api.Unpair(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a new pairing code after the unpair", func() bool {
		_, code, waiting := a.c.PairingCode()
		return waiting && code != ""
	})
	acc := a.accounts()
	if len(acc) != 1 || !acc[0].IsLocal() {
		t.Errorf("accounts after unpair = %v, want the local one only", acc)
	}
	if len(a.hooks.offers()) != 0 {
		t.Errorf("offers still on screen after unpair: %v", a.hooks.offers())
	}
	if list, _ := s.api.Appliances(context.Background()); len(list) != 0 {
		t.Errorf("server still lists %v", list)
	}
	if a.c.Link() != LinkNone {
		t.Errorf("Link = %v after unpair, want none", a.c.Link())
	}
}

// TestServerDownBetweenOfferAndAck: the answer waits in the outbox while
// the server is down, then is delivered once.
func TestServerDownBetweenOfferAndAck(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	o := a.hooks.take(t)
	s.down.Store(true)
	s.ts.CloseClientConnections()
	if _, err := o.Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the link to go down", func() bool { return a.c.Link() == LinkDown })
	if st := a.c.Status(); st.PendingAcks != 1 || st.LastError == "" {
		t.Errorf("Status while down = %+v, want one pending ack and an error", st)
	}
	if got := offerState(t, s, "dev1"); got != proto.StatePending {
		t.Errorf("offer state while down = %s", got)
	}
	s.down.Store(false)
	testkit.WaitFor(t, 10*time.Second, "the accept to arrive", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
	testkit.WaitFor(t, 10*time.Second, "the outbox to empty", func() bool { return a.c.Status().PendingAcks == 0 })
	testkit.WaitFor(t, 10*time.Second, "link up", func() bool { return a.c.Link() == LinkUp })
	if n := s.acceptsDelivered.Load(); n != 1 {
		t.Errorf("the accept was delivered %d times, want once", n)
	}
	if n := len(a.accounts()); n != 1 {
		t.Errorf("%d accounts, want 1", n)
	}
}

// TestLostAckAnswer: the server applies an ack whose answer is lost; the
// retry changes nothing.
func TestLostAckAnswer(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	s.loseAcks.Store(true)
	if _, err := a.hooks.take(t).Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the accept to be applied", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
	if a.c.Status().PendingAcks != 1 {
		t.Error("the ack left the outbox though its answer was lost")
	}
	s.loseAcks.Store(false)
	testkit.WaitFor(t, 10*time.Second, "the outbox to empty", func() bool { return a.c.Status().PendingAcks == 0 })
	if n := len(a.accounts()); n != 1 || offerState(t, s, "dev1") != proto.StateAccepted {
		t.Errorf("%d accounts, offer %s", n, offerState(t, s, "dev1"))
	}
}

// TestRestartBetweenOKAndConfirm: the appliance restarts after OK stored
// the account but before the server heard of it — once with the ack
// saved, once with the saved state from before OK (a crash right after
// the vault write). No duplicate, still pending, then active.
func TestRestartBetweenOKAndConfirm(t *testing.T) {
	for _, lostState := range []bool{false, true} {
		name := "outbox saved"
		if lostState {
			name = "state from before OK"
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, false)
			dir := t.TempDir()
			a := startApp(t, s, dir)
			id := a.pair(s, "A")
			sendOffer(t, s, id, "dev1", "alice", "one")
			o := a.hooks.take(t)
			statePath := filepath.Join(dir, "state", StateFile)
			before, err := os.ReadFile(statePath)
			if err != nil {
				t.Fatal(err)
			}
			s.acksDown.Store(true)
			if _, err := o.Accept(); err != nil {
				t.Fatal(err)
			}
			a.stop()
			if lostState {
				if err := os.WriteFile(statePath, before, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s.acksDown.Store(false)
			b := startApp(t, s, dir)
			testkit.WaitFor(t, 10*time.Second, "the accept to arrive", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
			if n := b.hooks.showCount(); n != 0 {
				t.Errorf("the accepted offer was shown again %d times", n)
			}
			acc := b.accounts()
			if len(acc) != 1 || acc[0].State != vault.Pending {
				t.Fatalf("accounts after restart = %v, want one pending", acc)
			}
			if err := s.api.DeviceChanged(context.Background(), appliance.DeviceChange{Kind: store.ChangeActivate, DeviceUID: "dev1"}); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 10*time.Second, "active", func() bool { acc, _ := b.account("dev1"); return acc.State == vault.Active })
			if n := len(b.accounts()); n != 1 {
				t.Errorf("%d accounts, want 1", n)
			}
		})
	}
}

// TestRestartShowsOpenOffer: an offer not answered before a restart is
// shown again after it.
func TestRestartShowsOpenOffer(t *testing.T) {
	s := newServer(t, false)
	dir := t.TempDir()
	a := startApp(t, s, dir)
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	testkit.WaitFor(t, 10*time.Second, "the offer", func() bool { return len(a.hooks.offers()) == 1 })
	a.stop()
	b := startApp(t, s, dir)
	if _, err := b.hooks.take(t).Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "accepted", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
}

// TestDuplicateDelivery: every change applied twice has the effect of
// applying it once.
func TestDuplicateDelivery(t *testing.T) {
	s := newServer(t, false)
	dir := t.TempDir()
	a := startApp(t, s, dir)
	id := a.pair(s, "A")
	key := sendOffer(t, s, id, "dev1", "alice", "one")
	if _, err := a.hooks.take(t).Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "accepted", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
	a.stop()

	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := New(testConfig(s, dir, v))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := proto.SealOffer(c.id.boxPub[:], "dev1", key, proto.NewSequence())
	if err != nil {
		t.Fatal(err)
	}
	rev := c.state().Rev
	changes := []proto.Change{
		{Rev: 1, Kind: proto.KindOffer, DeviceID: "dev1", State: proto.StatePending, Sealed: sealed, ExpiresAt: time.Now().Add(time.Hour)},
		{Rev: rev + 1, Kind: proto.KindActivate, DeviceID: "dev1", State: proto.StatePending},
		{Rev: rev + 2, Kind: proto.KindRename, DeviceID: "dev1", Name: "renamed", State: proto.StatePending},
		{Rev: rev + 3, Kind: proto.KindDelete, DeviceID: "dev2", State: proto.StatePending},
	}
	for range 2 {
		for _, ch := range changes {
			if err := c.applyChange(ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	acc := v.List()
	if len(acc) != 1 || acc[0].State != vault.Active || acc[0].Label != "renamed" {
		t.Errorf("accounts = %v, want one, active, renamed", acc)
	}
	if open := c.Offers(); len(open) != 0 {
		t.Errorf("an offer already in the vault is open: %v", open)
	}
	if st := c.state(); st.Rev != rev+3 || len(st.Outbox) != 4 {
		t.Errorf("state = rev %d, outbox %v; want rev %d and 4 acks", st.Rev, st.Outbox, rev+3)
	}
	// Applying an earlier revision again (a replayed answer) is skipped.
	if err := c.applyChange(proto.Change{Rev: rev + 3, Kind: proto.KindDelete, DeviceID: "dev1"}); err != nil || len(v.List()) != 1 {
		t.Errorf("an old delete was applied again: %v, %v", err, v.List())
	}
}

// TestForgotten: an appliance the server forgot goes back to pairing and
// keeps its accounts.
func TestForgotten(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	if _, err := a.hooks.take(t).Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "accepted", func() bool { return offerState(t, s, "dev1") == proto.StateAccepted })
	if err := s.api.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a pairing code", func() bool { _, code, w := a.c.PairingCode(); return w && code != "" })
	if len(a.accounts()) != 1 {
		t.Errorf("accounts = %v, want the one kept", a.accounts())
	}
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		url, wantErr string
	}{
		{"https://totp.example.com", ""},
		{"https://totp.example.com:8443/base/", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://[::1]:8080", ""},
		{"http://localhost:8080", ""},
		{"http://192.0.2.10:8080", "loopback"},
		{"http://totp.example.com", "loopback"},
		{"ftp://totp.example.com", "scheme"},
		{"totp.example.com", "not a URL"},
		{"", "no server"},
		{"https://user:pw@totp.example.com", "no user"},
	}
	for _, tt := range tests {
		_, err := parseServer(tt.url)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseServer(%q) = %v, want error containing %q", tt.url, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("parseServer error shows the password: %v", err)
		}
	}
	// New refuses it too, before touching the state dir.
	dir := t.TempDir()
	v, _ := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	defer v.Close()
	_, err := New(Config{Server: "http://192.0.2.10", StateDir: filepath.Join(dir, "state"), Vault: v, Clock: clock.System{}})
	if err == nil || !strings.Contains(err.Error(), "plain http is allowed only to loopback") {
		t.Errorf("New with plain http to a remote host = %v", err)
	}
}

func TestTLS(t *testing.T) {
	s := newServer(t, true)
	pin := CertSHA256(s.ts.Certificate())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw}), 0o600)
	wrongPin := strings.Repeat("ab", 32)
	tests := []struct {
		name      string
		pin, ca   string
		wantError string // "" means it gets a pairing code
	}{
		{"pinned", pin, "", ""},
		{"pinned with colons", strings.ToUpper(pin[:2]) + ":" + pin[2:], "", ""},
		{"CA file", "", caFile, ""},
		{"wrong pin", wrongPin, "", "does not match the pinned certificate"},
		{"system roots", "", "", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			cfg := testConfig(s, dir, v)
			cfg.PinSHA256, cfg.CAFile = tt.pin, tt.ca
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { c.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if tt.wantError == "" {
				testkit.WaitFor(t, 10*time.Second, "a pairing code over TLS", func() bool { _, code, _ := c.PairingCode(); return code != "" })
				return
			}
			testkit.WaitFor(t, 10*time.Second, "a TLS failure", func() bool { return c.Status().LastError != "" })
			if st := c.Status(); !strings.Contains(st.LastError, tt.wantError) || st.PairingCode != "" {
				t.Errorf("Status = %+v, want error containing %q and no code", st, tt.wantError)
			}
		})
	}
	if _, err := ParsePin("abcd"); err == nil {
		t.Error("ParsePin accepted a short pin")
	}
}

func TestIdentity(t *testing.T) {
	s := newServer(t, false)
	dir := t.TempDir()
	v, _ := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	defer v.Close()
	c1, err := New(testConfig(s, dir, v))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := New(testConfig(s, dir, v))
	if err != nil {
		t.Fatal(err)
	}
	if c1.KeyID() != c2.KeyID() {
		t.Error("the identity changed across starts")
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "state"):               0o700,
		filepath.Join(dir, "state", IdentityFile): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "state", IdentityFile), []byte("{"), 0o600)
	if _, err := New(testConfig(s, dir, v)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("New with a damaged identity = %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 5 * time.Minute}
	tests := []struct {
		n    int
		rnd  float64
		want time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.999999, time.Second},
		{2, 0, time.Second},
		{4, 0.5, 6 * time.Second},
		{9, 0, 128 * time.Second},
		{10, 0, 150 * time.Second},
		{10, 0.999999999, 5 * time.Minute},
		{1000, 0, 150 * time.Second},
	}
	for _, tt := range tests {
		got := b.Delay(tt.n, func() float64 { return tt.rnd })
		if d := got - tt.want; d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.n, tt.rnd, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	c := &Client{cfg: Config{Backoff: Backoff{Min: time.Second, Max: 5 * time.Minute}}}
	status := func(code int, after time.Duration) error {
		return fmt.Errorf("sync: %w", &StatusError{StatusCode: code, Err: &proto.Error{Code: proto.CodeBusy}, RetryAfter: after})
	}
	tests := []struct {
		name     string
		err      error
		fails    int
		min, max time.Duration
	}{
		{"503 with Retry-After, tenth failure", status(503, 5*time.Second), 10, 5 * time.Second, 6250 * time.Millisecond},
		{"503 without Retry-After, tenth failure", status(503, 0), 10, 500 * time.Millisecond, time.Second},
		{"502 from the balancer", status(502, 0), 10, 500 * time.Millisecond, time.Second},
		{"429 with Retry-After", status(429, 3*time.Second), 10, 3 * time.Second, 3750 * time.Millisecond},
		{"500, tenth failure", status(500, 5*time.Second), 10, 150 * time.Second, 5 * time.Minute},
		{"no answer, tenth failure", errors.New("connection refused"), 10, 150 * time.Second, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				if got := c.retryDelay(tt.err, tt.fails); got < tt.min || got > tt.max {
					t.Fatalf("retryDelay(%v, %d) = %v, want %v..%v", tt.err, tt.fails, got, tt.min, tt.max)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{"-3", 0},
		{"3600", time.Minute},
		{"Sun, 01 Mar 2026 12:00:20 GMT", 20 * time.Second},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestPostgresOutageMidRun: PostgreSQL is cut off (a TCP proxy between
// the server and the database drops every connection) while an appliance
// holds an offer; its answer is refused with 503 and Retry-After, stays
// in the outbox, and is delivered once the database is back; an offer
// sent afterwards arrives. Nothing is lost or duplicated.
func TestPostgresOutageMidRun(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	proxy := testkit.NewProxy(t, storetest.PostgresAddr(t, dsn))
	st, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(storetest.WithHostPort(dsn, proxy.Addr()), schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := newServerOn(t, st, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	o := a.hooks.take(t)

	proxy.Cut()
	if _, err := o.Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "a 503 from the server", func() bool { return s.unavailable.Load() > 0 })
	if st := a.c.Status(); st.PendingAcks != 1 {
		t.Errorf("Status during the outage = %+v, want the answer in the outbox", st)
	}
	proxy.Restore()
	testkit.WaitFor(t, 30*time.Second, "the accept to arrive", func() bool {
		st, err := s.api.OfferState(context.Background(), "dev1")
		return err == nil && st.State == proto.StateAccepted
	})
	testkit.WaitFor(t, 30*time.Second, "the outbox to empty", func() bool { return a.c.Status().PendingAcks == 0 })
	sendOffer(t, s, id, "dev2", "bob", "two")
	if o := a.hooks.take(t); o.User != "bob" {
		t.Fatalf("offer after the outage is for %q, want bob", o.User)
	}
	if n := s.acceptsDelivered.Load(); n != 1 {
		t.Errorf("the accept was delivered %d times, want once", n)
	}
	if n := len(a.accounts()); n != 1 {
		t.Errorf("%d accounts, want 1", n)
	}
}

// TestOfferCarriesItsSequence: the button sequence the server sealed in
// an offer is published with it, the very one the console shows.
func TestOfferCarriesItsSequence(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "alice", "one")
	var open []Offer
	testkit.WaitFor(t, 10*time.Second, "the offer", func() bool { open = a.c.Offers(); return len(open) == 1 })
	st, err := s.api.OfferState(context.Background(), "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sequence) != proto.SequencePresses || strings.Join(open[0].Sequence, " ") != strings.Join(st.Sequence, " ") {
		t.Errorf("the appliance's sequence %v, the console's %v; want the same %d presses", open[0].Sequence, st.Sequence, proto.SequencePresses)
	}
}

package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

type fakePanel struct {
	mu    sync.Mutex
	size  image.Point
	draws int
	fail  bool
}

func (p *fakePanel) Bounds() image.Rectangle { return image.Rectangle{Max: p.size} }
func (p *fakePanel) Draw(img image.Image) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("ssd1306: bus error")
	}
	p.draws++
	return nil
}
func (p *fakePanel) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.draws }

// fakeClock reads the bubble's time with a settable state.
type fakeClock struct {
	mu     sync.Mutex
	state  clock.State
	reason string
}

func (c *fakeClock) Now() clock.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return clock.Reading{Time: time.Now(), State: c.state, Reason: c.reason}
}
func (c *fakeClock) set(s clock.State, reason string) {
	c.mu.Lock()
	c.state, c.reason = s, reason
	c.mu.Unlock()
}

type fakeAccounts struct {
	mu    sync.Mutex
	accts []vault.Account
}

func (f *fakeAccounts) List() []vault.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vault.Account(nil), f.accts...)
}

func testKey(name string) enroll.Key {
	return enroll.Key{Issuer: "ACME", Account: name, Secret: []byte("12345678901234567890" + name), Digits: 6, Period: 30 * time.Second}
}

func account(id string, st vault.State) vault.Account {
	return vault.Account{ID: id, Issuer: "ACME", Label: "acct " + id, Key: testKey(id), State: st}
}

type rig struct {
	a      *Appliance
	panel  *fakePanel
	clk    *fakeClock
	accts  *fakeAccounts
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, cfg Config, accts ...vault.Account) *rig {
	t.Helper()
	r := &rig{panel: &fakePanel{size: image.Pt(128, 64)}, clk: &fakeClock{state: clock.Synced}, accts: &fakeAccounts{accts: accts}}
	cfg.Panel, cfg.Clock, cfg.Accounts = r.panel, r.clk, r.accts
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { a.Run(ctx); close(r.done) }()
	synctest.Wait()
	return r
}

func (r *rig) stop() { r.cancel(); <-r.done }

// enter presses OK on the offer shown, then seq.
func (r *rig) enter(seq ...Button) {
	r.press(OK)
	for _, b := range seq {
		r.press(b)
	}
}

func (r *rig) press(b Button) { r.a.Press(b); synctest.Wait() }

func (r *rig) want(t *testing.T, view string, codeShown bool) Status {
	t.Helper()
	st := r.a.Status()
	if st.View != view || st.CodeShown != codeShown {
		t.Fatalf("Status() = view %q code shown %v, want %q %v (%+v)", st.View, st.CodeShown, view, codeShown, st)
	}
	return st
}

func TestCodeViewRedrawsOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{}, account("a", vault.Active))
		defer r.stop()
		r.want(t, "code", true)
		before := r.panel.count()
		time.Sleep(60 * time.Second)
		synctest.Wait()
		got := r.panel.count() - before
		if got < 58 || got > 61 {
			t.Errorf("frames drawn in 60 s of code view = %d, want about 60 (one per countdown second)", got)
		}
	})
}

func TestUntrustedTimeShowsNoCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{}, account("a", vault.Active))
		defer r.stop()
		r.clk.set(clock.Untrusted, "error bound too large")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r.want(t, "untrusted", false)
		r.clk.set(clock.Unsynced, "no NTP reply yet")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r.want(t, "untrusted", false)
		r.clk.set(clock.Holdover, "no reply for 2h")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r.want(t, "code", true)
	})
}

func TestHiddenRevealsThenHides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{Hidden: true, RevealFor: 10 * time.Second}, account("a", vault.Active))
		defer r.stop()
		r.want(t, "hidden", false)
		r.press(OK)
		r.want(t, "code", true)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		r.want(t, "code", true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r.want(t, "hidden", false)
		r.press(OK)
		r.press(Back)
		r.want(t, "hidden", false)
	})
}

func TestNextCyclesAndKeepsFocus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{}, account("a", vault.Active), account("b", vault.Active), account("c", vault.Active))
		defer r.stop()
		if st := r.want(t, "code", true); st.AccountID != "a" || st.AccountCount != 3 {
			t.Fatalf("first account = %+v", st)
		}
		r.press(Next)
		if st := r.a.Status(); st.AccountID != "b" || st.AccountIndex != 1 {
			t.Fatalf("after next: %+v, want account b at 1", st)
		}
		// An account added before b keeps the focus on b.
		r.accts.mu.Lock()
		r.accts.accts = append([]vault.Account{account("z", vault.Active)}, r.accts.accts...)
		r.accts.mu.Unlock()
		r.a.Refresh()
		synctest.Wait()
		if st := r.a.Status(); st.AccountID != "b" || st.AccountIndex != 2 {
			t.Fatalf("after insert: %+v, want account b at 2", st)
		}
		r.press(Next)
		r.press(Next)
		if st := r.a.Status(); st.AccountID != "z" {
			t.Fatalf("after wrapping: %+v, want account z", st)
		}
	})
}

func TestPendingShowsQRAndSecretActiveDoesNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{}, account("p", vault.Pending), account("a", vault.Active))
		defer r.stop()
		r.press(OK)
		r.want(t, "qr", false)
		r.press(OK)
		r.want(t, "secret", false)
		r.press(Back)
		r.want(t, "qr", false)
		r.press(Back)
		r.want(t, "code", true)
		r.press(Next)
		r.press(OK)
		r.want(t, "code", true) // an active account's secret is never shown
	})
}

func TestOfferAcceptAndReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{}
		r := start(t, Config{BlankAfter: time.Minute, Offers: offers}, account("a", vault.Active))
		defer r.stop()
		offers.mu.Lock()
		offers.accts = r.accts
		offers.mu.Unlock()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r.want(t, "blank", false)

		offers.add(Offer{ID: "new", User: "alice", DeviceName: "kiosk"})
		r.a.Refresh()
		synctest.Wait()
		if st := r.want(t, "offer", false); !st.OfferPending {
			t.Fatalf("offer not flagged: %+v", st)
		}
		r.press(Next) // the offer waits: the account's code
		if st := r.want(t, "code", true); !st.OfferPending {
			t.Fatalf("the offer set aside is no longer pending: %+v", st)
		}
		r.press(Next) // past the last account: the offer again
		r.want(t, "offer", false)
		r.enter(testSequence...)
		if st := r.want(t, "qr", false); st.AccountID != "acct-new" || offers.accepted != 1 {
			t.Fatalf("after accept: %+v, accepted %d", st, offers.accepted)
		}
		r.press(OK)
		r.press(OK)
		r.want(t, "code", true)

		offers.add(Offer{ID: "x", User: "bob", DeviceName: "x"})
		r.a.Refresh()
		synctest.Wait()
		r.press(Back)
		if offers.rejected != 1 {
			t.Fatalf("rejected = %d, want 1", offers.rejected)
		}
		r.want(t, "code", true)
	})
}

func TestOfferWakesBlankScreenAndFailedAcceptSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		changed := make(chan struct{}, 1)
		offers := &fakeOffers{fail: errors.New("vault: disk full")}
		r := start(t, Config{BlankAfter: time.Minute, Offers: offers, Changed: changed}, account("a", vault.Active))
		defer r.stop()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r.want(t, "blank", false)
		offers.add(Offer{ID: "d1", User: "alice", DeviceName: "kiosk"})
		changed <- struct{}{}
		synctest.Wait()
		r.want(t, "offer", false)
		r.enter(testSequence...)
		if st := r.want(t, "message", false); st.OfferPending {
			t.Fatalf("offer still pending after a failed accept: %+v", st)
		}
		r.press(OK) // clears the message
		r.want(t, "code", true)
	})
}

// TestOKOnWithdrawnOfferShowsOneLine: the server withdrew the offer
// (registered another way, expired, deleted, sent elsewhere) between the
// frame and the press. OK stores nothing, focuses no account and shows
// no QR code or secret: one line says why, and a press clears it.
func TestOKOnWithdrawnOfferShowsOneLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{fail: fmt.Errorf("%w: gone", ErrWithdrawn)}
		r := start(t, Config{Offers: offers}, account("a", vault.Active))
		defer r.stop()
		offers.add(Offer{ID: "d1", User: "carol", DeviceName: "Edge four"})
		r.a.Refresh()
		synctest.Wait()
		r.want(t, "offer", false)
		r.enter(testSequence...)
		st := r.want(t, "message", false)
		if st.Message != MsgWithdrawn || st.OfferPending || st.AccountID != "" {
			t.Fatalf("after OK on a withdrawn offer: %+v, want the message %q alone", st, MsgWithdrawn)
		}
		r.press(OK) // clears the message
		if st := r.want(t, "code", true); st.AccountID != "a" {
			t.Fatalf("after the message: %+v, want the code of account a", st)
		}
	})
}

// TestOfferWaitsBesideTheAccounts: an offer does not take the kiosk over.
// NEXT sets it aside and shows the accounts' codes, as without it; NEXT
// past the last account brings it back, where OK and Back answer it. While
// set aside, OK and Back act on the account shown, not on the offer.
func TestOfferWaitsBesideTheAccounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{}
		r := start(t, Config{Offers: offers}, account("a", vault.Active), account("b", vault.Active))
		defer r.stop()
		offers.mu.Lock()
		offers.accts = r.accts
		offers.mu.Unlock()
		offers.add(Offer{ID: "new", User: "alice", DeviceName: "kiosk"})
		r.a.Refresh()
		synctest.Wait()
		r.want(t, "offer", false)
		r.press(Next)
		if st := r.want(t, "code", true); st.AccountID != "a" || !st.OfferPending {
			t.Fatalf("NEXT on the offer: %+v, want account a's code with the offer waiting", st)
		}
		r.press(Back)
		r.press(OK)
		r.press(Next)
		if st := r.want(t, "code", true); st.AccountID != "b" {
			t.Fatalf("second NEXT: %+v, want account b's code", st)
		}
		if offers.accepted+offers.rejected != 0 {
			t.Fatalf("presses on the accounts answered the offer: accepted %d, rejected %d", offers.accepted, offers.rejected)
		}
		r.press(Next)
		r.want(t, "offer", false)
		r.press(Back)
		if offers.rejected != 1 {
			t.Fatalf("Back on the offer: rejected %d, want 1", offers.rejected)
		}
		r.want(t, "code", true)
	})
}

// TestOfferAcceptsOnlyTheConsoleSequence: OK on an offer asks for the
// button sequence the console shows; each press of it shows only how
// many were entered, and nothing is stored nor any secret shown until the
// whole sequence is right. Then the account's QR code is shown, as OK
// alone did before.
func TestOfferAcceptsOnlyTheConsoleSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{}
		r := start(t, Config{Offers: offers}, account("a", vault.Active))
		defer r.stop()
		offers.mu.Lock()
		offers.accts = r.accts
		offers.mu.Unlock()
		offers.add(Offer{ID: "new", User: "alice", DeviceName: "kiosk"})
		r.a.Refresh()
		synctest.Wait()
		r.want(t, "offer", false)
		r.press(OK)
		for i, b := range testSequence {
			st := r.want(t, "offer-entry", false)
			r.a.mu.Lock()
			scr := r.a.lastScreen
			r.a.mu.Unlock()
			if scr.Entered != i || scr.Needed != len(testSequence) || scr.Secret != "" || scr.URI != "" {
				t.Fatalf("entry after %d presses: screen %+v", i, scr)
			}
			if offers.accepted != 0 || st.AccountID != "" {
				t.Fatalf("after %d of %d presses: accepted %d, status %+v", i, len(testSequence), offers.accepted, st)
			}
			r.press(b)
		}
		if st := r.want(t, "qr", false); st.AccountID != "acct-new" || offers.accepted != 1 {
			t.Fatalf("after the sequence: %+v, accepted %d", st, offers.accepted)
		}
	})
}

// TestWrongSequencesRejectTheOffer: a wrong sequence goes back to the
// offer, saying how many tries are left, and shows no secret; the third
// rejects the offer as Back does. An entry left unfinished is dropped
// without counting.
func TestWrongSequencesRejectTheOffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{}
		r := start(t, Config{Offers: offers}, account("a", vault.Active))
		defer r.stop()
		offers.mu.Lock()
		offers.accts = r.accts
		offers.mu.Unlock()
		offers.add(Offer{ID: "new", User: "alice", DeviceName: "kiosk"})
		r.a.Refresh()
		synctest.Wait()

		r.enter(Next) // a passer-by presses a little, then walks away
		r.want(t, "offer-entry", false)
		time.Sleep(21 * time.Second)
		synctest.Wait()
		r.want(t, "offer", false)

		wrong := [][]Button{{OK, OK, OK, OK}, {Next, Back, Back, OK}, {Back, Back, Back, Back}}
		for i, seq := range wrong {
			r.enter(seq...)
			if offers.accepted != 0 {
				t.Fatalf("wrong sequence %d accepted the offer", i+1)
			}
			if i == len(wrong)-1 {
				break
			}
			r.want(t, "offer", false)
			r.a.mu.Lock()
			left := r.a.lastScreen.TriesLeft
			r.a.mu.Unlock()
			if left != MaxWrongSequences-i-1 {
				t.Fatalf("after wrong sequence %d: %d tries left shown, want %d", i+1, left, MaxWrongSequences-i-1)
			}
		}
		st := r.want(t, "message", false)
		if offers.rejected != 1 || st.OfferPending || st.Message != MsgWrongSequence {
			t.Fatalf("after %d wrong sequences: rejected %d, status %+v", len(wrong), offers.rejected, st)
		}
		r.press(OK) // clears the message
		r.want(t, "code", true)
	})
}

// TestOfferWithoutSequenceCannotBeAccepted: OK on an offer that carries
// no sequence does nothing; Back still rejects it.
func TestOfferWithoutSequenceCannotBeAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		offers := &fakeOffers{}
		r := start(t, Config{Offers: offers}, account("a", vault.Active))
		defer r.stop()
		offers.mu.Lock()
		offers.accts = r.accts
		offers.open = []Offer{{ID: "old", User: "alice", DeviceName: "kiosk"}}
		offers.mu.Unlock()
		r.a.Refresh()
		synctest.Wait()
		r.press(OK)
		r.press(OK)
		r.want(t, "offer", false)
		r.press(Back)
		if offers.accepted != 0 || offers.rejected != 1 {
			t.Fatalf("accepted %d, rejected %d; want the offer rejected only", offers.accepted, offers.rejected)
		}
	})
}

// fakeOffers is the sync client as the loop sees it. Accepting stores an
// account whose Source is the offer's id, as device/uplink does.
type fakeOffers struct {
	mu                 sync.Mutex
	open               []Offer
	accts              *fakeAccounts
	fail               error
	accepted, rejected int
}

// testSequence is the button sequence of the offers add adds.
var testSequence = []Button{Next, Back, Next, OK}

// add opens o, with testSequence as its button sequence.
func (f *fakeOffers) add(o Offer) {
	o.Sequence = testSequence
	f.mu.Lock()
	f.open = append(f.open, o)
	f.mu.Unlock()
}

func (f *fakeOffers) Open() []Offer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Offer(nil), f.open...)
}

func (f *fakeOffers) Answer(id string, accept bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = slices.DeleteFunc(f.open, func(o Offer) bool { return o.ID == id })
	if !accept {
		f.rejected++
		return nil
	}
	if f.fail != nil {
		return f.fail
	}
	f.accepted++
	a := account("acct-"+id, vault.Pending)
	a.Source = id
	f.accts.mu.Lock()
	f.accts.accts = append(f.accts.accts, a)
	f.accts.mu.Unlock()
	return nil
}

func TestBlankingWakesWithoutActing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{BlankAfter: 30 * time.Second}, account("a", vault.Active), account("b", vault.Active))
		defer r.stop()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		st := r.a.Status()
		if !st.Blank {
			t.Fatalf("not blank after 31 s: %+v", st)
		}
		draws := r.panel.count()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := r.panel.count(); n != draws {
			t.Errorf("blank screen redrawn %d times", n-draws)
		}
		r.press(Next)
		if st := r.want(t, "code", true); st.AccountID != "a" {
			t.Errorf("waking press moved to %q", st.AccountID)
		}
	})
}

func TestPanelErrorsDoNotStopTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, Config{}, account("a", vault.Active))
		defer r.stop()
		r.panel.mu.Lock()
		r.panel.fail = true
		r.panel.mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		r.panel.mu.Lock()
		r.panel.fail = false
		r.panel.mu.Unlock()
		before := r.panel.count()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if r.panel.count() == before {
			t.Error("no frames after the panel came back")
		}
	})
}

func TestNoAccountsAndPairing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakePairing{}
		r := start(t, Config{Pairing: p})
		defer r.stop()
		r.want(t, "message", false)
		p.set(true)
		r.a.Refresh()
		synctest.Wait()
		r.want(t, "pairing", false)
	})
}

type fakePairing struct {
	mu      sync.Mutex
	waiting bool
}

func (p *fakePairing) set(w bool) { p.mu.Lock(); p.waiting = w; p.mu.Unlock() }
func (p *fakePairing) PairingCode() (string, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "https://totp.example", "ABCD2345", p.waiting
}

func TestParseButton(t *testing.T) {
	for _, b := range []Button{Next, OK, Back} {
		if got, err := ParseButton(b.String()); err != nil || got != b {
			t.Errorf("ParseButton(%q) = %v, %v", b, got, err)
		}
	}
	if _, err := ParseButton("reset"); err == nil {
		t.Error("ParseButton(reset) accepted")
	}
}

type fakeButtons chan ButtonEvent

func (b fakeButtons) Events() <-chan ButtonEvent { return b }

func TestRunFollowsButtons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		btns := make(fakeButtons, 1)
		r := start(t, Config{Buttons: btns}, account("a", vault.Active), account("b", vault.Active))
		defer r.stop()
		btns <- ButtonEvent{Button: Next, At: time.Now()}
		synctest.Wait()
		if st := r.want(t, "code", true); st.AccountID != "b" || st.Presses != 1 {
			t.Fatalf("after a hardware Next: %+v, want account b and 1 press", st)
		}
	})
}

// Package device is the appliance runtime: one loop that ties together the
// clock's reading, the vault's accounts, the buttons and the screen.
//
// The loop builds a display.Screen from its state, renders it only when the
// screen would change, draws it only when the pixels changed, and otherwise
// sleeps until the next thing that can change the frame: a countdown tick,
// a step boundary, a reveal or blanking timeout, a press or an event.
package device

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/button"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/display"
)

// Button is one of the appliance's three buttons (device/button).
type Button = button.Button

// The buttons. Next moves to the next account (or page); OK reveals,
// accepts or moves forward; Back hides, rejects or returns to the code.
const (
	Next = button.Next
	OK   = button.OK
	Back = button.Back
)

// ParseButton parses a button name as Button.String writes it.
func ParseButton(s string) (Button, error) { return button.Parse(s) }

// Panel is where frames go: device/hw's panels, on a Pi or on the
// simulator's emulated bus, fit.
type Panel interface {
	Bounds() image.Rectangle
	// Draw shows img, which has the panel's size.
	Draw(img image.Image) error
}

// halter is a panel that can switch itself off.
type halter interface{ Halt() error }

// Accounts is the vault as the loop sees it.
type Accounts interface {
	List() []vault.Account
}

// Pairing reports the appliance's pairing state for the pairing view.
type Pairing interface {
	// PairingCode returns the server address and the code to type into
	// the console, and whether the appliance is waiting to be paired.
	PairingCode() (server, code string, waiting bool)
}

// ButtonEvent is one debounced press from hardware (device/button).
type ButtonEvent = button.Event

// Buttons is a source of hardware presses: device/hw's GPIO buttons, on a
// Pi or on the simulator's virtual pins, fit.
type Buttons interface {
	// Events returns the channel presses arrive on.
	Events() <-chan ButtonEvent
}

// Offer is a registration the server sent to this appliance, waiting for
// an answer: OK and then the button sequence the console shows accepts it
// (proof that the person at the appliance sees the console), Back rejects
// it, Next sets it aside.
type Offer struct {
	// ID identifies the offer to Answer (the server's MFA device id). The
	// account stored on accepting it has it as its Source.
	ID string
	// User and DeviceName are shown: "New account for User — DeviceName".
	User, DeviceName string
	// Sequence is the button sequence that accepts the offer, sealed in
	// it by the server and shown only on the console; never shown here.
	// An offer without one cannot be accepted.
	Sequence []Button
}

// MaxWrongSequences is how many wrong button sequences reject an offer,
// as Back does.
const MaxWrongSequences = 3

// MsgWrongSequence is the one line shown when an offer was rejected after
// MaxWrongSequences wrong button sequences.
const MsgWrongSequence = "Wrong buttons 3 times: offer rejected"

// Offers are the open offers as the loop sees them; the daemon adapts
// device/uplink's client to it. The loop reads Open for every frame and
// calls Answer from its own goroutine on a press; neither may block for
// long.
type Offers interface {
	// Open returns the offers waiting for an answer, oldest first.
	Open() []Offer
	// Answer accepts (stores the account as pending) or rejects offer id.
	// It returns an error wrapping ErrWithdrawn when the offer is no
	// longer open: the server withdrew it, or it lapsed.
	Answer(id string, accept bool) error
}

// ErrWithdrawn is what Offers.Answer wraps when the offer it was asked to
// answer is no longer open.
var ErrWithdrawn = errors.New("the offer was withdrawn")

// MsgWithdrawn is the one line shown when OK is pressed on an offer the
// server withdrew meanwhile (registered another way, expired, deleted or
// sent to another appliance): nothing is stored and no secret is shown.
const MsgWithdrawn = "Offer withdrawn by the server"

// Takeover is a batch of accounts of the appliance this one replaces,
// waiting to be taken over: "Take over Count accounts from From? OK /
// BACK", asked once for the batch. The accounts' secrets never reach the
// loop.
type Takeover struct {
	// ID identifies the batch to AnswerTakeover.
	ID string
	// From names the appliance replaced; Count is how many accounts wait.
	From  string
	Count int
}

// Takeovers are the takeover batches as the loop sees them; the daemon
// adapts device/uplink's client to it.
type Takeovers interface {
	// Takeover returns the oldest batch waiting for an answer.
	Takeover() (Takeover, bool)
	// AnswerTakeover takes over (stores every account of) or declines
	// batch id.
	AnswerTakeover(id string, accept bool) error
}

// Wiper reports that the appliance was replaced and wiped: the pairing
// view then says so.
type Wiper interface {
	// Wiped returns the name of the appliance that replaced this one,
	// and whether the vault was wiped for it.
	Wiped() (replacedBy string, ok bool)
}

// Config configures an Appliance. The zero value of each optional field
// has the meaning its comment gives.
type Config struct {
	// Panel receives frames. Required.
	Panel Panel
	// Clock gives the reading for codes and countdowns. Required.
	Clock clock.Clock
	// Accounts lists the vault's accounts. Required.
	Accounts Accounts
	// Pairing, when set, adds the pairing view while the appliance waits
	// to be paired.
	Pairing Pairing
	// Link, when set, reports the server link for the status glyph; nil
	// means standalone (no glyph).
	Link func() display.Link
	// Offers, when set, are shown before anything else; a new one wakes a
	// blank screen.
	Offers Offers
	// Takeovers, when set, are asked about before anything else; a new
	// one wakes a blank screen.
	Takeovers Takeovers
	// Changed, when set, wakes the loop to rebuild its frame at once: the
	// pairing, the link or the offers changed. Without it they are seen
	// within a second.
	Changed <-chan struct{}
	// Buttons, when set, are followed while Run runs, each press as if
	// delivered by Press.
	Buttons Buttons
	// Hidden keeps codes hidden until OK is pressed (privacy at kiosks).
	Hidden bool
	// RevealFor is how long a revealed code stays shown; default 20 s.
	RevealFor time.Duration
	// BlankAfter blanks the panel after this long without a press; zero
	// never blanks. A press while blank only wakes the screen.
	BlankAfter time.Duration
	// Paper draws dark ink on light, for e-paper panels.
	Paper bool
	// Preview is how long before a step ends the next code is shown;
	// default 5 s.
	Preview time.Duration
	// Now is the local clock for UI timeouts (reveal, blanking); nil means
	// time.Now. It is not used for codes.
	Now func() time.Time
	// Logger receives panel errors; nil means slog.Default().
	Logger *slog.Logger
	// OnFrame, when set, is called after each frame is drawn (metrics,
	// tests).
	OnFrame func(Status)
}

// seqEntry is a button sequence being entered for offer id. It is
// dropped, uncounted, when no press comes before until.
type seqEntry struct {
	id      string
	presses []Button
	until   time.Time
}

type mode int

const (
	modeCode mode = iota
	modeQR
	modeSecret
	modeOffer
	modePairing
)

// Appliance is the runtime loop. Create it with New and run it with Run;
// Press, Refresh and Status are safe from any goroutine.
type Appliance struct {
	cfg  Config
	size image.Point

	presses chan Button
	wake    chan struct{}

	mu          sync.Mutex
	mode        mode
	index       int    // position in the account list
	focusID     string // account the index points at, kept across list changes
	page        int    // secret page
	revealUntil time.Time
	lastInput   time.Time
	blank       bool
	offers      []Offer // the open offers of the last frame, oldest first
	// takeover is the takeover batch of the last frame, if any.
	takeover *Takeover
	// aside holds the offers NEXT set aside: they wait while the accounts
	// are shown, and come back when NEXT passes the last account.
	aside map[string]bool
	// entry is the button sequence being entered for an offer, after OK
	// on it; nil on the offer screen itself.
	entry *seqEntry
	// wrong counts the wrong sequences entered per open offer.
	wrong      map[string]int
	message    string // transient message, cleared by a press
	status     Status
	pressCount int
	lastScreen display.Screen
	drawn      bool
}

// Status is what the appliance shows, for the simulator's state endpoint,
// totpctl status and tests. It never holds a code's digits.
type Status struct {
	View         string `json:"view"`
	AccountIndex int    `json:"account_index"`
	AccountCount int    `json:"account_count"`
	AccountID    string `json:"account_id,omitempty"`
	Label        string `json:"label,omitempty"`
	// User is the user the shown account was placed for, named on the
	// screen beside it; empty for an account added on the appliance.
	User         string `json:"user,omitempty"`
	CodeShown    bool   `json:"code_shown"`
	TimeState    string `json:"time_state"`
	Blank        bool   `json:"blank"`
	OfferPending bool   `json:"offer_pending"`
	// Message is the one-line message shown, in the message view.
	Message string `json:"message,omitempty"`
	Frames  int    `json:"frames"`
	// Presses counts the presses handled so far.
	Presses int `json:"presses"`
}

// New checks cfg and returns an Appliance ready to Run.
func New(cfg Config) (*Appliance, error) {
	switch {
	case cfg.Panel == nil:
		return nil, errors.New("device: no panel")
	case cfg.Clock == nil:
		return nil, errors.New("device: no clock")
	case cfg.Accounts == nil:
		return nil, errors.New("device: no accounts")
	}
	if cfg.RevealFor <= 0 {
		cfg.RevealFor = 20 * time.Second
	}
	if cfg.Preview <= 0 {
		cfg.Preview = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := cfg.Panel.Bounds()
	a := &Appliance{
		cfg:     cfg,
		size:    b.Size(),
		presses: make(chan Button, 16),
		wake:    make(chan struct{}, 1),
	}
	a.lastInput = cfg.Now()
	return a, nil
}

// Press delivers a button press as if from hardware.
func (a *Appliance) Press(b Button) {
	select {
	case a.presses <- b:
	default: // a full queue means the user is mashing buttons; drop
	}
}

// Refresh asks the loop to rebuild its frame now: accounts, link or
// pairing state changed.
func (a *Appliance) Refresh() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Status returns what the appliance shows now.
func (a *Appliance) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// Shown returns what the appliance shows now and, when that is a code,
// its digits: the very code on the screen, computed once for the frame
// (inside the TPM for an account held there). The simulator reports it as
// a person reading the glass would; totpd never calls it.
func (a *Appliance) Shown() (Status, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.status.CodeShown {
		return a.status, ""
	}
	return a.status, a.lastScreen.Code
}

// Run draws frames until ctx is done. Panel errors are logged and the loop
// goes on: a panel that comes back gets the current frame.
func (a *Appliance) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	if a.cfg.Buttons != nil {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { a.followButtons(ctx, a.cfg.Buttons.Events()) })
		defer wg.Wait()
		defer cancel()
	}
	for {
		wait := a.step()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case b := <-a.presses:
			a.handle(b)
			a.countPress()
		case <-a.wake:
		case <-a.cfg.Changed:
		case <-timer.C:
		}
	}
}

// followButtons delivers hardware presses until ctx is done.
func (a *Appliance) followButtons(ctx context.Context, events <-chan ButtonEvent) {
	for {
		select {
		case ev := <-events:
			a.Press(ev.Button)
		case <-ctx.Done():
			return
		}
	}
}

func (a *Appliance) countPress() {
	a.mu.Lock()
	a.pressCount++
	a.mu.Unlock()
}

// step builds and draws the frame and returns how long the loop may sleep.
func (a *Appliance) step() time.Duration {
	reading := a.cfg.Clock.Now()
	accounts := a.cfg.Accounts.List()
	var offers []Offer
	if a.cfg.Offers != nil {
		offers = a.cfg.Offers.Open()
	}

	var takeover *Takeover
	if a.cfg.Takeovers != nil {
		if t, ok := a.cfg.Takeovers.Takeover(); ok {
			takeover = &t
		}
	}

	a.mu.Lock()
	now := a.cfg.Now()
	a.takeOffers(offers, now)
	if takeover != nil && (a.takeover == nil || a.takeover.ID != takeover.ID) {
		a.blank, a.lastInput = false, now
	}
	a.takeover = takeover
	scr, st, wait := a.build(reading, accounts, now)
	changed := !a.drawn || scr != a.lastScreen
	a.lastScreen, a.drawn = scr, true
	a.mu.Unlock()

	if changed {
		var err error
		if h, ok := a.cfg.Panel.(halter); ok && st.Blank {
			err = h.Halt() // the panel off; the next Draw wakes it
		} else if st.Blank {
			err = a.cfg.Panel.Draw(image.NewGray(image.Rectangle{Max: a.size}))
		} else {
			err = a.cfg.Panel.Draw(display.Render(scr, a.size))
		}
		if err != nil {
			a.cfg.Logger.Warn("panel draw failed", "err", err)
		}
		st.Frames = a.status.Frames + 1
	} else {
		st.Frames = a.status.Frames
	}
	a.mu.Lock()
	st.Presses = a.pressCount
	a.status = st
	a.mu.Unlock()
	if changed && a.cfg.OnFrame != nil {
		a.cfg.OnFrame(st)
	}
	return wait
}

// takeOffers makes offers the ones shown; an offer not shown before wakes
// a blank screen and counts as input. a.mu is held.
func (a *Appliance) takeOffers(offers []Offer, now time.Time) {
	for _, o := range offers {
		if !slices.ContainsFunc(a.offers, func(p Offer) bool { return p.ID == o.ID }) {
			a.blank = false
			a.lastInput = now
		}
	}
	gone := func(id string) bool { return !slices.ContainsFunc(offers, func(o Offer) bool { return o.ID == id }) }
	for id := range a.aside {
		if gone(id) {
			delete(a.aside, id)
		}
	}
	for id := range a.wrong {
		if gone(id) {
			delete(a.wrong, id)
		}
	}
	if a.entry != nil && gone(a.entry.id) {
		a.entry = nil
	}
	a.offers = offers
}

// shownOffer returns the oldest open offer not set aside: the one on the
// screen. a.mu is held.
func (a *Appliance) shownOffer() (Offer, bool) {
	for _, o := range a.offers {
		if !a.aside[o.ID] {
			return o, true
		}
	}
	return Offer{}, false
}

package display

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"time"
)

// Sizes maps the panel names used by configuration (and by
// `totpsim snapshot --panel`) to their size in pixels.
var Sizes = map[string]image.Point{
	"ssd1306-128x64": {128, 64},
	"ssd1306-128x32": {128, 32},
	"epd-250x122":    {250, 122},
	"epd-296x128":    {296, 128},
}

// SizeByName returns the size of the panel called name, one of the keys of
// Sizes.
func SizeByName(name string) (image.Point, error) {
	if p, ok := Sizes[name]; ok {
		return p, nil
	}
	return image.Point{}, fmt.Errorf("display: unknown panel %q; allowed: %s", name, strings.Join(SizeNames(), ", "))
}

// SizeNames returns the names of Sizes, sorted.
func SizeNames() []string {
	names := make([]string, 0, len(Sizes))
	for n := range Sizes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// View selects what a Screen shows.
type View int

// The views. The zero value is ViewCode.
const (
	// ViewCode shows the current code of one account, its countdown and,
	// during the last seconds of a step, the next code.
	ViewCode View = iota
	// ViewUntrusted replaces the code when the appliance's time cannot be
	// trusted: no code at all, and why (Screen.Reason).
	ViewUntrusted
	// ViewHidden shows the account's label only and asks for a button
	// press to reveal the code (privacy at kiosks).
	ViewHidden
	// ViewOffer asks whether to accept an offer of a new account from the
	// registration server: OK goes on to the button sequence the console
	// shows (ViewOfferEntry), BACK rejects.
	ViewOffer
	// ViewQR shows the account's otpauth URI as a QR code.
	ViewQR
	// ViewSecret shows the account's base32 secret in groups of four,
	// paged where the panel is too small.
	ViewSecret
	// ViewPairing shows the server address and the pairing code the admin
	// types into the console.
	ViewPairing
	// ViewMessage shows a short status or error message.
	ViewMessage
	// ViewOfferEntry asks for the button sequence the console shows for
	// an offer, and how many presses were entered (never which).
	ViewOfferEntry
	// ViewTakeover asks a spare, once for the batch, whether to take over
	// Screen.Count accounts from the appliance it replaces
	// (Screen.DeviceName): OK takes them over, BACK declines.
	ViewTakeover
)

var viewNames = [...]string{
	ViewCode:       "code",
	ViewUntrusted:  "untrusted",
	ViewHidden:     "hidden",
	ViewOffer:      "offer",
	ViewQR:         "qr",
	ViewSecret:     "secret",
	ViewPairing:    "pairing",
	ViewMessage:    "message",
	ViewOfferEntry: "offer-entry",
	ViewTakeover:   "takeover",
}

// Views returns every View, in order.
func Views() []View {
	vs := make([]View, len(viewNames))
	for i := range vs {
		vs[i] = View(i)
	}
	return vs
}

// String returns the view's name as used in configuration, the simulator's
// API and `totpsim snapshot --view`.
func (v View) String() string {
	if v >= 0 && int(v) < len(viewNames) {
		return viewNames[v]
	}
	return fmt.Sprintf("View(%d)", int(v))
}

// ParseView returns the View whose String is s.
func ParseView(s string) (View, error) {
	for i, n := range viewNames {
		if n == s {
			return View(i), nil
		}
	}
	return 0, fmt.Errorf("display: unknown view %q; allowed: %s", s, strings.Join(viewNames[:], ", "))
}

// TimeState is how far the appliance trusts its time, as shown by the
// time glyph.
type TimeState int

// The time states. The zero value is TimeSynced.
const (
	// TimeSynced: the clock is disciplined by NTP within its error bound.
	TimeSynced TimeState = iota
	// TimeHoldover: NTP is unreachable but the clock's error bound is still
	// small enough for codes.
	TimeHoldover
	// TimeUntrusted: the error bound is too large for codes.
	TimeUntrusted
	// TimeUnsynced: the clock has never been synchronised since boot.
	TimeUnsynced
)

// String returns "synced", "holdover", "untrusted" or "unsynced".
func (t TimeState) String() string {
	switch t {
	case TimeSynced:
		return "synced"
	case TimeHoldover:
		return "holdover"
	case TimeUntrusted:
		return "untrusted"
	case TimeUnsynced:
		return "unsynced"
	}
	return fmt.Sprintf("TimeState(%d)", int(t))
}

// trusted reports whether codes may be shown in state t.
func (t TimeState) trusted() bool { return t == TimeSynced || t == TimeHoldover }

// Link is the state of the appliance's connection to the registration
// server, as shown by the link glyph.
type Link int

// The link states. The zero value is LinkNone.
const (
	// LinkNone: a standalone appliance, not paired; no glyph is drawn.
	LinkNone Link = iota
	// LinkUp: paired and the last sync succeeded.
	LinkUp
	// LinkDown: paired but the server cannot be reached.
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

// Screen is everything one frame shows. Render draws it; the appliance loop
// builds it. Fields a view does not use are ignored, so one Screen may be
// reused across views. Every field may hold any value: text is shortened or
// replaced to fit and numbers are clamped.
type Screen struct {
	// View selects the layout.
	View View

	// Issuer and Label name the account (code, untrusted, hidden, QR and
	// secret views). Label is the friendly name; a Label that repeats the
	// issuer as "Issuer:name" is shown as "name".
	Issuer, Label string

	// Code is the current code, as digits (code view). Codes of 6 digits
	// are grouped 3+3, 8 digits 4+4.
	Code string
	// NextCode, when non-empty, is shown as a preview below the code; the
	// loop fills it during the last seconds of a step so that a user who
	// would be late types the next code instead.
	NextCode string
	// Remaining is the time left in the current step and Period the step
	// length; they draw the countdown bar. Period <= 0 means 30 s.
	Remaining, Period time.Duration

	// Index is the zero-based position of the account among Count accounts;
	// "Index+1/Count" is shown when Count > 1. In the takeover view Count
	// is how many accounts the spare is asked to take over.
	Index, Count int

	// Time selects the time glyph. The code view never shows a code when
	// Time is TimeUntrusted or TimeUnsynced: it shows the untrusted view.
	Time TimeState
	// Link selects the server link glyph.
	Link Link
	// Reason says why time is untrusted (untrusted view), such as
	// "no NTP yet" or "error bound too large".
	Reason string

	// URI is the account's otpauth URI (QR view).
	URI string

	// Secret is the account's base32 secret (secret view). Spaces, dashes
	// and padding are ignored; it is shown upper-case in groups of four.
	Secret string
	// Page is the zero-based page of the secret view; it is clamped to
	// [0, SecretPages(Secret, size)-1].
	Page int

	// User and DeviceName describe an offer (offer view): "New account for
	// User — DeviceName". In the takeover view DeviceName is the name of
	// the appliance replaced. In the other views of an account, User is the
	// user the server placed it for, named after its label within the
	// panel's width; empty for an account added on the appliance.
	User, DeviceName string

	// Entered and Needed are the presses entered so far and the length of
	// the button sequence (offer entry view). TriesLeft, from 1 to 3, is
	// how many wrong sequences are left before the offer is rejected
	// (offer and offer entry views); fewer than 3 is shown.
	Entered, Needed, TriesLeft int

	// Server is the registration server's address and PairingCode the code
	// the admin types into the console (pairing view).
	Server, PairingCode string

	// Title (optional) and Message are the message view's text.
	Title, Message string

	// Paper draws dark ink on a light background, as e-paper shows text.
	// By default lit pixels (image1bit.On) are ink on a dark background,
	// as on an OLED. QR codes are always dark modules on a light
	// background, as scanners expect.
	Paper bool
}

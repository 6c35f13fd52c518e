package display

import (
	"image"
	"math"
	"strconv"
	"strings"
)

// code draws the code view. Small panels show "Issuer: Label" above the
// code, and the next code there during the last seconds of a step. Taller
// panels show the issuer above the code and the label below it, where the
// next code replaces the label; the line is kept even when empty so that
// the code does not change size when the preview appears.
func (r *renderer) code() {
	t, s := r.t, r.s
	f := t.small
	next := groupCode(codeFace(16).clean(s.NextCode))
	code := groupCode(codeFace(16).clean(s.Code))
	bottom := r.size.Y - t.bar
	r.countdown(image.Rect(0, bottom, r.size.X, r.size.Y))
	if r.small() {
		text := ""
		if len(next) > 0 {
			r.s.Count = 0 // the preview needs the room of "2/5"
			text = "next " + string(next)
		}
		top := r.header(text)
		r.bigText(code, image.Rect(t.pad, top+t.gap, r.size.X-t.pad, bottom-t.gap))
		return
	}
	split := s.Issuer != "" && s.Label != ""
	var top int
	if split {
		top = r.header(s.Issuer)
	} else {
		top = r.header("")
	}
	bottom -= t.gap + f.height()
	switch {
	case len(next) > 0:
		r.c.line(f, f.clean("next "+string(next)), t.pad, r.size.X-t.pad, bottom, 0, true)
	case split:
		r.c.line(f, r.label(f, r.size.X-2*t.pad, false), t.pad, r.size.X-t.pad, bottom, 0, true)
	}
	r.bigText(code, image.Rect(t.pad, top+t.gap, r.size.X-t.pad, bottom-t.gap))
}

// countdown draws the step's remaining time as a bar filling box.
func (r *renderer) countdown(box image.Rectangle) {
	period := r.s.Period
	if period <= 0 {
		period = 30e9
	}
	rem := min(max(r.s.Remaining, 0), period)
	if box.Dy() >= 5 {
		r.c.frame(box, true)
		inner := box.Inset(2)
		w := int(math.Ceil(float64(inner.Dx()) * float64(rem) / float64(period)))
		r.c.fill(image.Rect(inner.Min.X, inner.Min.Y, inner.Min.X+w, inner.Max.Y), true)
		return
	}
	w := int(math.Ceil(float64(box.Dx()) * float64(rem) / float64(period)))
	r.c.fill(image.Rect(box.Min.X, box.Min.Y, box.Min.X+w, box.Max.Y), true)
	// A dotted track shows the whole step.
	for x := box.Min.X + w; x < box.Max.X; x += 2 {
		r.c.set(x, box.Max.Y-1, true)
	}
}

// groupCode splits a code into two groups with a space: 3+3 for six
// digits, 4+4 for eight, halves for other lengths from 5 to 12.
func groupCode(rs []rune) []rune {
	n := len(rs)
	if n < 5 || n > 12 || slicesContains(rs, ' ') {
		return rs
	}
	h := (n + 1) / 2
	out := make([]rune, 0, n+1)
	out = append(out, rs[:h]...)
	out = append(out, ' ')
	return append(out, rs[h:]...)
}

func slicesContains(rs []rune, r rune) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// codeFace returns the face of codes and pairing codes, Go Mono Bold, at px
// pixels per em.
func codeFace(px int) *face { return bigFace(px) }

// minCodePx is the smallest size of the code face; below it the body face
// reads better.
const minCodePx = 14

// bigExtent measures rs in f with spaces half a character wide: the ink's
// top and bottom relative to the baseline, and the advance.
func bigExtent(f *face, rs []rune) (top, bottom, w int) {
	adv := f.glyph('0').adv
	top, bottom = 0, 0
	for _, ch := range rs {
		if ch == ' ' {
			w += adv / 2
			continue
		}
		g := f.glyph(ch)
		if !g.rect.Empty() {
			top, bottom = min(top, g.rect.Min.Y), max(bottom, g.rect.Max.Y)
		}
		w += adv
	}
	return top, bottom, w
}

// bigText draws rs in the code face as large as fits box, centred; text
// too long for it is drawn in the body face.
func (r *renderer) bigText(rs []rune, box image.Rectangle) {
	if len(rs) == 0 || box.Empty() {
		return
	}
	// Estimate from a reference size, then step down until it fits.
	const ref = 64
	t, b, w := bigExtent(codeFace(ref), rs)
	if b-t <= 0 || w <= 0 {
		return
	}
	px := min(box.Dy()*ref/(b-t), box.Dx()*ref/w) + 1
	for ; px >= minCodePx; px-- {
		if t, b, w = bigExtent(codeFace(px), rs); b-t <= box.Dy() && w <= box.Dx() {
			break
		}
	}
	if px < minCodePx {
		r.paragraph(r.t.text, string(rs), box, 0)
		return
	}
	f := codeFace(px)
	adv := f.glyph('0').adv
	x := box.Min.X + (box.Dx()-w)/2
	base := box.Min.Y + (box.Dy()-(b-t))/2 - t
	for _, ch := range rs {
		if ch == ' ' {
			x += adv / 2
			continue
		}
		r.c.text(f, []rune{ch}, x, base, true)
		x += adv
	}
}

// untrustedReason says why there is no code.
func (r *renderer) untrustedReason() string {
	if r.s.Reason != "" {
		return r.s.Reason
	}
	switch r.s.Time {
	case TimeUnsynced:
		return "waiting for NTP"
	case TimeUntrusted:
		return "clock error too large"
	}
	return "time not trusted"
}

func (r *renderer) untrusted() {
	t := r.t
	f := t.text
	reason := r.untrustedReason()
	if r.small() {
		// No room for the account: the reason matters more.
		r.paragraph(f, "No code: "+reason, r.body(t.pad-t.gap), 0)
		return
	}
	box := r.body(r.header(r.s.Issuer))
	n := r.lines(f, box)
	if n < 2 {
		r.paragraph(f, "No code: "+reason, box, 0)
		return
	}
	lh := f.height() + t.gap
	lines := f.wrap(f.clean(reason), box.Dx(), n-1)
	y := box.Min.Y + (box.Dy()-(len(lines)+1)*lh+t.gap)/2
	title := choose(t.bold, box.Dx(), 1, "No code: time untrusted", "No code")
	y = r.c.line(t.bold, t.bold.clean(title), box.Min.X, box.Max.X, y, 0, true) + t.gap
	for _, l := range lines {
		y = r.c.line(f, l, box.Min.X, box.Max.X, y, 0, true) + t.gap
	}
}

func (r *renderer) hidden() {
	t, s := r.t, r.s
	f := t.text
	if r.small() || s.Issuer == "" || s.Label == "" {
		box := r.body(r.header(""))
		r.paragraph(f, choose(f, box.Dx(), r.lines(f, box), "Press OK to show the code", "Press OK to show", "OK: show"), box, 0)
		return
	}
	// The issuer above, the label under it and the hint at the bottom.
	box := r.body(r.header(s.Issuer))
	y := r.c.line(f, r.label(f, box.Dx(), false), box.Min.X, box.Max.X, box.Min.Y, 0, true) + t.gap
	box.Min.Y = y
	r.paragraph(f, choose(f, box.Dx(), r.lines(f, box), "Press OK to show the code", "Press OK to show", "OK: show"), box, 0)
}

// hints draws the buttons' meanings on the bottom line: each key in a
// light box, then what it does.
func (r *renderer) hints(keys, long, short []string) int {
	f, t := r.t.small, r.t
	bottom := r.size.Y - t.pad
	top := bottom - f.height() - 2
	words := long
	if r.hintsWidth(keys, words) > r.size.X-2*t.pad {
		words = short
	}
	n := len(keys)
	total := r.hintsWidth(keys, words)
	space := 0
	if n > 1 {
		space = (r.size.X - 2*t.pad - total) / (n - 1)
	}
	x := t.pad
	for i, k := range keys {
		kr, wr := f.clean(k), f.clean(words[i])
		kw := f.width(kr) + 2
		r.c.fill(image.Rect(x, top, x+kw, bottom), true)
		r.c.line(f, kr, x+1, x+kw, top+1, -1, false)
		r.c.line(f, wr, x+kw+2, r.size.X, top+1, -1, true)
		x += kw + 2 + f.width(wr) + space
	}
	return top
}

func (r *renderer) hintsWidth(keys, words []string) int {
	f := r.t.small
	w := 0
	for i, k := range keys {
		w += f.width(f.clean(k)) + 2 + 2 + f.width(f.clean(words[i]))
	}
	return w
}

// triesLeft says how many wrong button sequences are left, once one was
// wrong.
func triesLeft(n int) string {
	switch {
	case n <= 0 || n >= 3:
		return ""
	case n == 1:
		return "1 try left"
	}
	return strconv.Itoa(n) + " tries left"
}

// offerEntry asks for the console's button sequence: one mark per press,
// filled as presses are entered. Every button is part of the sequence, so
// no hints are drawn.
func (r *renderer) offerEntry() {
	t, s := r.t, r.s
	needed := min(max(s.Needed, 1), 8)
	entered := min(max(s.Entered, 0), needed)
	marks := strings.Repeat("*", entered) + strings.Repeat("_", needed-entered)
	ask := "Press the buttons the console shows"
	tries := triesLeft(s.TriesLeft)
	f := t.text
	if r.small() {
		box := r.body(t.pad - t.gap)
		text := choose(f, box.Dx(), r.lines(f, box), ask+" "+marks, "Press the console's buttons "+marks,
			"Console's buttons "+marks, "Buttons "+marks)
		r.paragraph(f, text, box, 0)
		return
	}
	top := r.titleBar("Confirm", marks)
	box := image.Rect(t.pad, top+t.gap, r.size.X-t.pad, r.size.Y-t.pad)
	text := ask
	if tries != "" {
		text = choose(f, box.Dx(), r.lines(f, box), ask+". "+tries, ask)
	}
	r.paragraph(f, text, box, 0)
}

func (r *renderer) offer() {
	t, s := r.t, r.s
	hintTop := r.hints([]string{"OK", "BACK"}, []string{"accept", "reject"}, []string{"yes", "no"})
	who := s.User
	if who == "" {
		who = "this appliance"
	}
	if s.DeviceName != "" {
		who += " — " + s.DeviceName
	}
	if r.small() {
		f := t.text
		w := r.size.X - 2*t.pad
		text := choose(f, w, 1, "New account for "+who, "New: "+who)
		r.c.line(f, f.fit(f.clean(text), w), t.pad, r.size.X, t.pad, -1, true)
		return
	}
	top := r.titleBar("New account", "")
	text, box := "for "+who, image.Rect(t.pad, top+t.gap, r.size.X-t.pad, hintTop-t.gap)
	if tries := triesLeft(s.TriesLeft); tries != "" {
		text = choose(t.text, box.Dx(), r.lines(t.text, box), text+". "+tries, text)
	}
	r.paragraph(t.text, text, box, 0)
}

// takeover asks, once for the batch, whether this appliance takes over
// the accounts of the appliance it replaces. No account is named: the
// question is about the batch, and nothing secret is shown.
func (r *renderer) takeover() {
	t, s := r.t, r.s
	hintTop := r.hints([]string{"OK", "BACK"}, []string{"take over", "decline"}, []string{"yes", "no"})
	n := max(s.Count, 0)
	accounts := strconv.Itoa(n) + " accounts"
	if n == 1 {
		accounts = "1 account"
	}
	from := s.DeviceName
	if from == "" {
		from = "the old appliance"
	}
	if r.small() {
		f := t.text
		w := r.size.X - 2*t.pad
		text := choose(f, w, 1, "Take over "+accounts+" from "+from+"?", "Take over "+accounts+"?", "Take over "+strconv.Itoa(n)+"?")
		r.c.line(f, f.fit(f.clean(text), w), t.pad, r.size.X, t.pad, -1, true)
		return
	}
	top := r.titleBar("Take over", "")
	box := image.Rect(t.pad, top+t.gap, r.size.X-t.pad, hintTop-t.gap)
	r.paragraph(t.text, accounts+" from "+from+"?", box, 0)
}

func (r *renderer) qr() {
	t, s := r.t, r.s
	f := t.text
	fit, err := FitQR(s.URI, r.size)
	if err == nil && !fit.draw(r.c, s.URI, s.Paper) {
		err = ErrQRTooLong
	}
	if err != nil {
		box := r.body(t.pad - t.gap)
		if !r.small() {
			box = r.body(r.header(""))
		}
		msg := choose(f, box.Dx(), r.lines(f, box),
			"QR code too long for this screen — see secret", "QR too long: see secret")
		if s.URI == "" {
			msg = "No QR code for this account"
		}
		r.paragraph(f, msg, box, 0)
		return
	}
	box := image.Rect(fit.Rect.Max.X+t.pad+2, t.pad, r.size.X-t.pad, r.size.Y-t.pad)
	if box.Dx() < 4*f.glyph('0').adv {
		return
	}
	n := r.lines(f, box)
	var lines [][]rune
	bold := 0
	if s.Issuer != "" {
		lines = append(lines, t.bold.wrap(t.bold.clean(s.Issuer), box.Dx(), 1)...)
		bold = len(lines)
	}
	label := s.Label
	if s.Issuer != "" && strings.HasPrefix(label, s.Issuer+":") {
		label = label[len(s.Issuer)+1:]
	}
	lines = append(lines, f.wrap(f.clean(label), box.Dx(), max(1, n-len(lines)-3))...)
	if hint := "Scan with an authenticator app"; n-len(lines) >= 2 && fits(f, hint, box.Dx(), n-len(lines)-1) {
		lines = append(lines, nil)
		lines = append(lines, f.wrap(f.clean(hint), box.Dx(), n-len(lines))...)
	}
	lh := f.height() + t.gap
	y := box.Min.Y + (box.Dy()-len(lines)*lh+t.gap)/2
	for i, l := range lines {
		lf := f
		if i < bold {
			lf = t.bold
		}
		y = r.c.line(lf, l, box.Min.X, box.Max.X, y, -1, true) + t.gap
	}
}

func (r *renderer) secret() {
	t := r.t
	l := layoutSecret(r.s.Secret, r.size)
	page := min(max(r.s.Page, 0), l.pages-1)
	indicator := ""
	if l.pages > 1 {
		indicator = strconv.Itoa(page+1) + "/" + strconv.Itoa(l.pages)
	}
	top := t.pad
	if l.header {
		title := "Secret"
		if name := r.s.Issuer; name != "" {
			title += ": " + name
		} else if r.s.Label != "" {
			title += ": " + r.s.Label
		}
		top = r.titleBar(title, indicator) + t.gap
	}
	if len(l.groups) == 0 {
		r.paragraph(t.text, "No secret for this account", r.body(top), 0)
		return
	}
	f := l.f
	adv := f.glyph('0').adv
	lineW := l.perLine*(secretGroup+1)*adv - adv
	x0 := t.pad + (r.size.X-2*t.pad-l.indicatW-lineW)/2
	first := page * l.perLine * l.lines
	n := min(l.lines, (len(l.groups)-first+l.perLine-1)/l.perLine)
	y := top + (r.size.Y-t.pad-top-n*l.lh+t.gap)/2
	for i := range n {
		lo := first + i*l.perLine
		for j, g := range l.groups[lo:min(lo+l.perLine, len(l.groups))] {
			r.c.text(f, f.clean(g), x0+j*(secretGroup+1)*adv, y-l.top, true)
		}
		if i == 0 && !l.header && indicator != "" {
			r.c.line(t.small, t.small.clean(indicator), 0, r.size.X-t.pad, y, 1, true)
		}
		y += l.lh
	}
}

// serverName shortens a server URL for the pairing view.
func serverName(s string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
		}
	}
	return strings.TrimSuffix(s, "/")
}

func (r *renderer) pairing() {
	t, s := r.t, r.s
	f := t.small
	top := t.pad - t.gap
	if !r.small() {
		top = r.titleBar("Pair with server", "")
	}
	server := serverName(s.Server)
	if server == "" {
		server = "no server configured"
	}
	top = r.c.line(f, f.fit(f.clean(server), r.size.X-2*t.pad), t.pad, r.size.X-t.pad, top+t.gap, 0, true)
	box := image.Rect(t.pad+2, top+t.gap, r.size.X-t.pad-2, r.size.Y-t.pad)
	if r.size.Y >= 100 {
		hint := f.clean("Type this code in the console")
		r.c.line(f, f.fit(hint, box.Dx()), box.Min.X, box.Max.X, box.Max.Y-f.height(), 0, true)
		box.Max.Y -= f.height() + 2*t.gap
	}
	code := codeFace(16).clean(s.PairingCode)
	if len(code) == 0 {
		r.paragraph(t.text, "waiting for a pairing code", box, 0)
		return
	}
	r.bigText(code, box)
}

func (r *renderer) message() {
	t, s := r.t, r.s
	f := t.text
	box := r.body(t.pad - t.gap)
	if s.Title != "" {
		below := r.body(t.pad + t.bold.height() + 2)
		if !r.small() || fits(f, s.Message, below.Dx(), r.lines(f, below)) {
			r.titleBar(s.Title, "")
			box = below
		} else {
			// A small panel: the message matters more than a title bar.
			r.paragraph(f, s.Title+": "+s.Message, box, 0)
			return
		}
	}
	r.paragraph(f, s.Message, box, 0)
}

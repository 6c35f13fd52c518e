// Package display renders what the appliance shows — a Screen — into a
// 1-bit image for a panel of any size: codes in large crisp digits with a
// countdown, status glyphs, QR codes fitted to the panel, secrets, offers,
// pairing codes and messages.
//
// Rendering is pure: no I/O and no clock reads. The result is the ssd1306
// driver's native format, so it is written to an OLED as it is.
package display

import (
	"image"
	"strconv"
	"strings"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// maxSide bounds the panel size Render accepts; larger sizes are clipped.
const maxSide = 2048

// theme is the fonts and spacing for a class of panel.
type theme struct {
	small     *face // header and hints
	text      *face // body text and the secret
	bold      *face // titles
	pad       int   // margin at the panel's edges
	gap       int   // between lines
	iconScale int   // status glyph magnification
	bar       int   // countdown bar height
}

// themeFor picks the fonts and spacing for a panel: 7x13 text on small
// OLEDs, 8x16 on the larger e-paper panels.
func themeFor(size image.Point) theme {
	switch {
	case size.Y >= 100 && size.X >= 200:
		return theme{small: face8x16(), text: face8x16(), bold: face8x16Bld(), pad: 4, gap: 3, iconScale: 2, bar: 8}
	case size.Y >= 48:
		return theme{small: face7x13(), text: face7x13(), bold: face7x13(), pad: 1, gap: 2, iconScale: 1, bar: 5}
	}
	return theme{small: face7x13(), text: face7x13(), bold: face7x13(), pad: 0, gap: 1, iconScale: 1, bar: 3}
}

// Render draws s for a panel of the given size. Lit pixels (image1bit.On)
// are ink on a dark background, as on an OLED, unless s.Paper is set. It
// never panics: text in any script is drawn or replaced, over-long text is
// shortened with an ellipsis and numbers out of range are clamped. A view
// out of range draws as ViewMessage; sides are clamped to [0, 2048], and a
// panel under 16x8 stays blank.
func Render(s Screen, size image.Point) *image1bit.VerticalLSB {
	size.X = min(max(size.X, 0), maxSide)
	size.Y = min(max(size.Y, 0), maxSide)
	c := newCanvas(size)
	if size.X < 16 || size.Y < 8 {
		return c.img // too small for anything legible
	}
	r := &renderer{c: c, t: themeFor(size), s: s, size: size}
	switch s.View {
	case ViewCode:
		if s.Time.trusted() {
			r.code()
		} else {
			r.untrusted()
		}
	case ViewUntrusted:
		r.untrusted()
	case ViewHidden:
		r.hidden()
	case ViewOffer:
		r.offer()
	case ViewOfferEntry:
		r.offerEntry()
	case ViewTakeover:
		r.takeover()
	case ViewQR:
		r.qr()
	case ViewSecret:
		r.secret()
	case ViewPairing:
		r.pairing()
	default:
		r.message()
	}
	if s.Paper {
		c.invert()
	}
	return c.img
}

type renderer struct {
	c    *canvas
	t    theme
	s    Screen
	size image.Point
}

// small reports whether the panel has room for only two lines of text
// besides the header, as a 128x32 OLED.
func (r *renderer) small() bool { return r.size.Y < 48 }

// label is the account's name in at most w pixels of f: "Issuer: Label"
// (or the label alone, without withIssuer), with a label that repeats the
// issuer ("Issuer:name") not repeating it and an e-mail address cut to its
// local part before anything is shortened with an ellipsis.
//
// An account placed for a user ends with the user in parentheses: the
// whole name when it fits, else the account's name shortened as above
// beside the user's address cut to its local part, which takes at most
// half the width.
func (r *renderer) label(f *face, w int, withIssuer bool) []rune {
	user := r.s.User
	if user == "" {
		return r.name(f, w, withIssuer)
	}
	name := r.name(f, 1<<30, withIssuer)
	if full := f.clean(string(name) + " (" + user + ")"); len(name) > 0 && f.width(full) <= w {
		return full
	}
	if at := strings.LastIndexByte(user, '@'); at > 0 {
		user = user[:at]
	}
	who := f.clean("(" + user + ")")
	if len(name) == 0 {
		return f.fit(who, w)
	}
	if f.width(who) > w/2 {
		who = f.fit(who, w/2)
	}
	sp := f.glyph(' ').adv
	rest := w - f.width(who) - sp
	if rest <= 0 {
		return f.fit(who, w)
	}
	return append(append(r.name(f, rest, withIssuer), ' '), who...)
}

// name is the account's own name in at most w pixels of f, as label
// describes it, without its user.
func (r *renderer) name(f *face, w int, withIssuer bool) []rune {
	issuer, label := r.s.Issuer, r.s.Label
	if !withIssuer {
		issuer = ""
	}
	if r.s.Issuer != "" && strings.HasPrefix(label, r.s.Issuer+":") {
		label = strings.TrimSpace(label[len(r.s.Issuer)+1:])
	}
	join := func(l string) string {
		switch {
		case issuer == "":
			return l
		case l == "":
			return issuer
		}
		return issuer + ": " + l
	}
	full := f.clean(join(label))
	if f.width(full) <= w {
		return full
	}
	if at := strings.LastIndexByte(label, '@'); at > 0 {
		return f.fit(f.clean(join(label[:at])), w)
	}
	return f.fit(full, w)
}

// fits reports whether text wraps into n lines of w pixels without being
// shortened.
func fits(f *face, text string, w, n int) bool {
	return len(f.wrap(f.clean(text), w, n+1)) <= n
}

// choose returns the first of texts that fits n lines of w pixels, or the
// last.
func choose(f *face, w, n int, texts ...string) string {
	for _, t := range texts {
		if fits(f, t, w, n) {
			return t
		}
	}
	return texts[len(texts)-1]
}

// lines is how many lines of f fit in box.
func (r *renderer) lines(f *face, box image.Rectangle) int {
	return max(0, (box.Dy()+r.t.gap)/(f.height()+r.t.gap))
}

// header draws the account's label on the left and the status glyphs on
// the right (account index, time, server link) and returns its bottom.
// text replaces the label when non-empty.
func (r *renderer) header(text string) int {
	f, t := r.t.small, r.t
	lh := f.height()
	x := r.size.X - t.pad
	iy := t.pad + (lh-iconSize*t.iconScale)/2
	if li := linkIcon(r.s.Link); li != nil {
		x -= iconWidth(li) * t.iconScale
		r.c.icon(li, x, iy, t.iconScale, true)
		x -= 2 * t.iconScale
	}
	ti := timeIcon(r.s.Time)
	x -= iconWidth(ti) * t.iconScale
	r.c.icon(ti, x, iy, t.iconScale, true)
	if r.s.Count > 1 {
		idx := min(max(r.s.Index, 0), r.s.Count-1) + 1
		pos := []rune(strconv.Itoa(idx) + "/" + strconv.Itoa(r.s.Count))
		x -= 3*t.iconScale + f.width(pos)
		if x > r.size.X/3 {
			r.c.line(f, pos, x, x, t.pad, -1, true)
		} else {
			x += 3*t.iconScale + f.width(pos)
		}
	}
	w := x - f.glyph(' ').adv - t.pad
	var rs []rune
	if text != "" {
		rs = f.fit(f.clean(text), w)
	} else {
		rs = r.label(f, w, true)
	}
	return r.c.line(f, rs, t.pad, x, t.pad, -1, true)
}

// titleBar draws text in ink-on-light across the top with right at the
// right end and returns its bottom.
func (r *renderer) titleBar(text, right string) int {
	f, t := r.t.bold, r.t
	bottom := t.pad + f.height() + 2
	r.c.fill(image.Rect(0, 0, r.size.X, bottom), true)
	rw := 0
	if right != "" {
		rr := f.clean(right)
		rw = f.width(rr) + 2*f.glyph(' ').adv
		r.c.line(f, rr, 0, r.size.X-t.pad-1, t.pad+1, 1, false)
	}
	rs := f.fit(f.clean(text), r.size.X-2*t.pad-2-rw)
	r.c.line(f, rs, t.pad+1, r.size.X, t.pad+1, -1, false)
	return bottom
}

// paragraph wraps text into box and draws it centred; it returns the
// number of lines drawn.
func (r *renderer) paragraph(f *face, text string, box image.Rectangle, align int) int {
	lh := f.height() + r.t.gap
	n := (box.Dy() + r.t.gap) / lh
	if n <= 0 {
		return 0
	}
	lines := f.wrap(f.clean(text), box.Dx(), n)
	y := box.Min.Y + (box.Dy()-len(lines)*lh+r.t.gap)/2
	for _, l := range lines {
		r.c.line(f, l, box.Min.X, box.Max.X, y, align, true)
		y += lh
	}
	return len(lines)
}

// body is the area under a header of the given bottom.
func (r *renderer) body(top int) image.Rectangle {
	return image.Rect(r.t.pad, top+r.t.gap, r.size.X-r.t.pad, r.size.Y-r.t.pad)
}

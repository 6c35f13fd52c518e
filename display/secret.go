package display

import (
	"image"
	"strconv"
	"strings"
	"unicode"
)

// base32Alphabet is every character of a base32 secret (RFC 4648).
const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// secretGroup is the number of characters in a group of the secret view.
const secretGroup = 4

// secretLayout is how the secret view pages a secret on a panel.
type secretLayout struct {
	f        *face
	top, lh  int  // ink top relative to the baseline, and line pitch
	header   bool // a title line above the groups
	perLine  int  // groups per line
	lines    int  // lines of groups per page
	groups   []string
	pages    int
	indicatW int // width kept free for "n/m" when there is no header
}

// secretGroups normalises a base32 secret (upper case, no spaces, dashes or
// padding) and splits it into groups of four.
func secretGroups(secret string) []string {
	var b strings.Builder
	for _, r := range secret {
		if unicode.IsSpace(r) || r == '-' || r == '=' {
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	rs := []rune(b.String())
	var groups []string
	for i := 0; i < len(rs); i += secretGroup {
		groups = append(groups, string(rs[i:min(i+secretGroup, len(rs))]))
	}
	return groups
}

func layoutSecret(secret string, size image.Point) secretLayout {
	t := themeFor(size)
	l := secretLayout{f: t.text, groups: secretGroups(secret)}
	if size.Y >= 100 {
		// Large panels: the code's face, as large as leaves four groups
		// on a line, is easier to copy.
		for px := 28; px > minCodePx; px-- {
			f := codeFace(px)
			if adv := f.glyph('0').adv; (size.X-2*t.pad+adv)/((secretGroup+1)*adv) >= 4 {
				l.f = f
				break
			}
		}
	}
	top, bottom, _ := bigExtent(l.f, []rune(base32Alphabet))
	l.top, l.lh = top, bottom-top+t.gap
	lh := l.lh
	// A title bar when it leaves room for two lines of groups.
	avail := size.Y - 2*t.pad
	titleH := t.bold.height() + 2 + t.gap
	if n := (avail - titleH + t.gap) / lh; n >= 2 {
		l.header, l.lines = true, n
	} else {
		l.lines = max(1, (avail+t.gap)/lh)
	}
	adv := l.f.glyph('0').adv
	// Without a header, "n/m" goes at the end of the first line: keep room
	// for it on every line so that the groups stay in columns.
	for digits := 1; ; digits++ {
		w := size.X - 2*t.pad
		if !l.header {
			l.indicatW = (2*digits + 2) * t.small.glyph('0').adv
			w -= l.indicatW
		}
		l.perLine = max(1, (w+adv)/((secretGroup+1)*adv))
		perPage := l.perLine * l.lines
		l.pages = max(1, (len(l.groups)+perPage-1)/perPage)
		if l.header || len(strconv.Itoa(l.pages)) <= digits {
			return l
		}
	}
}

// SecretPages returns how many pages the secret view needs to show secret
// on a panel of the given size; the loop pages through them with
// Screen.Page. It is at least 1.
func SecretPages(secret string, size image.Point) int {
	if size.X <= 0 || size.Y <= 0 {
		return 1
	}
	return layoutSecret(secret, size).pages
}

package display

import (
	"image"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/inconsolata"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/unicode/norm"
)

// ellipsis marks shortened text. Faces that lack it get a drawn one.
const ellipsis = '…'

// glyph is one rune rasterised to 1 bit: the pixels of rect (relative to
// the dot on the baseline) that are lit, row by row.
type glyph struct {
	adv  int
	rect image.Rectangle
	bits []bool
}

// face is a font.Face rasterised to 1 bit, with its glyphs cached. Bitmap
// faces are used as they are; scalable faces are rendered without
// anti-aliasing by thresholding coverage at one half.
type face struct {
	src  font.Face
	sfnt *sfnt.Font // nil for bitmap faces

	// top and bottom bound the ink of the face's sample text (ASCII for
	// text faces, digits for the code's face), relative to the baseline:
	// a line needs bottom-top rows.
	top, bottom int

	mu     sync.Mutex
	buf    sfnt.Buffer
	glyphs map[rune]*glyph
}

// newFace wraps src; the ink of sample sets the line height.
func newFace(src font.Face, f *sfnt.Font, sample string) *face {
	fc := &face{src: src, sfnt: f, glyphs: make(map[rune]*glyph)}
	fc.top, fc.bottom = 1<<30, -1<<30
	for _, r := range sample {
		g := fc.glyph(r)
		if g.rect.Empty() {
			continue
		}
		fc.top = min(fc.top, g.rect.Min.Y)
		fc.bottom = max(fc.bottom, g.rect.Max.Y)
	}
	return fc
}

// height is the number of rows a line of text needs.
func (f *face) height() int { return f.bottom - f.top }

// has reports whether the face holds a glyph for r.
func (f *face) has(r rune) bool {
	if r == ellipsis {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hasLocked(r)
}

func (f *face) hasLocked(r rune) bool {
	if f.sfnt != nil {
		i, err := f.sfnt.GlyphIndex(&f.buf, r)
		return err == nil && i != 0
	}
	_, ok := f.src.GlyphAdvance(r)
	return ok
}

// glyph returns the rasterised glyph for r, which must be a rune the face
// has (see has and clean); others render as the face's fallback.
func (f *face) glyph(r rune) *glyph {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.glyphs[r]; ok {
		return g
	}
	var g *glyph
	if r == ellipsis && !f.hasLocked(r) {
		g = f.drawnEllipsis()
	} else {
		g = f.rasterise(r)
	}
	f.glyphs[r] = g
	return g
}

func (f *face) rasterise(r rune) *glyph {
	dr, mask, mp, adv, _ := f.src.Glyph(fixed.Point26_6{}, r)
	g := &glyph{adv: adv.Round()}
	if mask == nil || dr.Empty() {
		return g
	}
	// Shrink the rectangle to the lit pixels.
	lit := image.Rectangle{}
	on := func(x, y int) bool {
		_, _, _, a := mask.At(mp.X+x-dr.Min.X, mp.Y+y-dr.Min.Y).RGBA()
		return a >= 0x8000
	}
	for y := dr.Min.Y; y < dr.Max.Y; y++ {
		for x := dr.Min.X; x < dr.Max.X; x++ {
			if on(x, y) {
				lit = lit.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	g.rect = lit
	g.bits = make([]bool, lit.Dx()*lit.Dy())
	for y := lit.Min.Y; y < lit.Max.Y; y++ {
		for x := lit.Min.X; x < lit.Max.X; x++ {
			g.bits[(y-lit.Min.Y)*lit.Dx()+x-lit.Min.X] = on(x, y)
		}
	}
	return g
}

// drawnEllipsis makes an ellipsis one cell wide from three single pixels on
// the baseline, for faces that have none.
func (f *face) drawnEllipsis() *glyph {
	dot := f.rasterise('.')
	adv := dot.adv
	w, h := max(1, dot.rect.Dx()), max(1, dot.rect.Dy())
	if 3*w+2 > adv {
		w, h = 1, 1
	}
	gap := max(1, (adv-3*w)/3)
	x0 := (adv - (3*w + 2*gap)) / 2
	y1 := dot.rect.Max.Y
	if dot.rect.Empty() {
		y1 = 0
	}
	g := &glyph{adv: adv, rect: image.Rect(x0, y1-h, x0+3*w+2*gap, y1)}
	g.bits = make([]bool, g.rect.Dx()*g.rect.Dy())
	for i := range 3 {
		for y := range h {
			for x := range w {
				g.bits[y*g.rect.Dx()+i*(w+gap)+x] = true
			}
		}
	}
	return g
}

// width is the advance of rs, in pixels.
func (f *face) width(rs []rune) int {
	w := 0
	for _, r := range rs {
		w += f.glyph(r).adv
	}
	return w
}

// replacements covers punctuation that some faces lack and that has a
// plain ASCII stand-in.
var replacements = map[rune]string{
	'—': "-", '–': "-", '‐': "-", '‑': "-", '−': "-",
	'‘': "'", '’': "'", '‚': ",", '“': "\"", '”': "\"", '„': "\"",
	'•': "*", '·': ".", '×': "x", '«': "<<", '»': ">>",
	'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe",
	'Ø': "O", 'ø': "o", 'Ł': "L", 'ł': "l", 'Đ': "D", 'đ': "d", 'Þ': "Th", 'þ': "th",
}

// clean turns any string into runes the face can draw: white space becomes
// one space, control and format characters and lone combining marks are
// dropped, runes the face lacks are decomposed to their base letters
// ("é" → "e", "ﬁ" → "fi") or replaced by "?". Leading and trailing space
// is trimmed.
func (f *face) clean(s string) []rune {
	out := make([]rune, 0, len(s))
	space := false
	emit := func(r rune) {
		if r == ' ' {
			space = len(out) > 0
			return
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			emit(' ')
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Mn, r),
			unicode.Is(unicode.Me, r), unicode.Is(unicode.Cs, r), unicode.Is(unicode.Co, r):
			// Invisible, or nothing to draw on its own.
		case r != unicode.ReplacementChar && f.has(r):
			emit(r)
		default:
			for _, b := range f.fallback(r) {
				emit(b)
			}
		}
	}
	return out
}

// fallback spells r, which the face lacks, with runes it has.
func (f *face) fallback(r rune) []rune {
	if s, ok := replacements[r]; ok && f.hasAll(s) {
		return []rune(s)
	}
	var base []rune
	if r == unicode.ReplacementChar {
		return []rune{'?'}
	}
	for _, d := range norm.NFKD.String(string(r)) {
		if unicode.Is(unicode.Mn, d) {
			continue
		}
		if unicode.IsSpace(d) {
			d = ' '
		} else if !f.has(d) {
			base = nil
			break
		}
		base = append(base, d)
	}
	if len(base) > 0 && len(base) <= 3 {
		return base
	}
	return []rune{'?'}
}

func (f *face) hasAll(s string) bool {
	for _, r := range s {
		if !f.has(r) {
			return false
		}
	}
	return true
}

// fit returns rs, shortened with an ellipsis if it is wider than w pixels.
func (f *face) fit(rs []rune, w int) []rune {
	if f.width(rs) <= w {
		return rs
	}
	ew := f.glyph(ellipsis).adv
	total := 0
	for i, r := range rs {
		a := f.glyph(r).adv
		if total+a+ew > w {
			cut := rs[:i:i]
			for len(cut) > 0 && cut[len(cut)-1] == ' ' {
				cut = cut[:len(cut)-1]
			}
			if ew > w {
				return cut
			}
			return append(cut, ellipsis)
		}
		total += a
	}
	return rs
}

// wrap breaks rs into at most n lines no wider than w pixels, at spaces
// where it can; words wider than a line are broken. If the text does not
// fit, the last line ends with an ellipsis.
func (f *face) wrap(rs []rune, w, n int) [][]rune {
	var lines [][]rune
	for len(rs) > 0 && len(lines) < n {
		if len(lines) == n-1 {
			lines = append(lines, f.fit(rs, w))
			break
		}
		// Longest prefix that fits.
		end, total := 0, 0
		for end < len(rs) {
			a := f.glyph(rs[end]).adv
			if total+a > w {
				break
			}
			total += a
			end++
		}
		if end == len(rs) {
			lines = append(lines, rs)
			break
		}
		if end == 0 {
			end = 1 // a glyph wider than the line: draw it clipped
		}
		brk := end
		for i := end; i > 0; i-- {
			if rs[i] == ' ' {
				brk = i
				break
			}
		}
		line := rs[:brk]
		for len(line) > 0 && line[len(line)-1] == ' ' {
			line = line[:len(line)-1]
		}
		lines = append(lines, line)
		rs = rs[brk:]
		for len(rs) > 0 && rs[0] == ' ' {
			rs = rs[1:]
		}
	}
	return lines
}

// ascii is every printable ASCII character but space.
const ascii = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// The faces. Bitmap faces are crisp at their one size; the code's digits
// use Go Mono Bold at a size chosen for the panel.
var (
	face7x13    = sync.OnceValue(func() *face { return newFace(basicfont.Face7x13, nil, ascii) })
	face8x16    = sync.OnceValue(func() *face { return newFace(inconsolata.Regular8x16, nil, ascii) })
	face8x16Bld = sync.OnceValue(func() *face { return newFace(inconsolata.Bold8x16, nil, ascii) })
	monoBold    = sync.OnceValue(func() *sfnt.Font {
		f, err := opentype.Parse(gomonobold.TTF)
		if err != nil {
			panic("display: parsing the embedded Go Mono Bold font: " + err.Error())
		}
		return f
	})
)

var (
	bigFacesMu sync.Mutex
	bigFaces   = map[int]*face{}
)

// bigFace returns Go Mono Bold at px pixels per em, without anti-aliasing.
func bigFace(px int) *face {
	bigFacesMu.Lock()
	defer bigFacesMu.Unlock()
	if f, ok := bigFaces[px]; ok {
		return f
	}
	src, err := opentype.NewFace(monoBold(), &opentype.FaceOptions{Size: float64(px), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic("display: sizing the embedded Go Mono Bold font: " + err.Error())
	}
	f := newFace(src, monoBold(), "0123456789")
	bigFaces[px] = f
	return f
}

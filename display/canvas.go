package display

import (
	"image"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// canvas draws into a 1-bit image. Ink is image1bit.On; Render inverts the
// finished image for e-paper (Screen.Paper).
type canvas struct {
	img  *image1bit.VerticalLSB
	w, h int
}

func newCanvas(size image.Point) *canvas {
	return &canvas{img: image1bit.NewVerticalLSB(image.Rectangle{Max: size}), w: size.X, h: size.Y}
}

// set paints (x, y) with ink (on) or background; points outside are
// ignored.
func (c *canvas) set(x, y int, on bool) {
	if x < 0 || y < 0 || x >= c.w || y >= c.h {
		return
	}
	i, mask := y>>3*c.w+x, byte(1)<<(y&7)
	if on {
		c.img.Pix[i] |= mask
	} else {
		c.img.Pix[i] &^= mask
	}
}

// fill paints r, clipped to the canvas.
func (c *canvas) fill(r image.Rectangle, on bool) {
	r = r.Intersect(image.Rect(0, 0, c.w, c.h))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.set(x, y, on)
		}
	}
}

// frame draws the one-pixel outline of r.
func (c *canvas) frame(r image.Rectangle, on bool) {
	if r.Empty() {
		return
	}
	c.fill(image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+1), on)
	c.fill(image.Rect(r.Min.X, r.Max.Y-1, r.Max.X, r.Max.Y), on)
	c.fill(image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Max.Y), on)
	c.fill(image.Rect(r.Max.X-1, r.Min.Y, r.Max.X, r.Max.Y), on)
}

// text draws rs with its baseline at y starting at x and returns the x
// after the last glyph.
func (c *canvas) text(f *face, rs []rune, x, y int, on bool) int {
	for _, r := range rs {
		g := f.glyph(r)
		w := g.rect.Dx()
		for i, b := range g.bits {
			if b {
				c.set(x+g.rect.Min.X+i%w, y+g.rect.Min.Y+i/w, on)
			}
		}
		x += g.adv
	}
	return x
}

// line draws one line of rs in the box whose top is y, aligned in [x0, x1)
// (align < 0 left, 0 centre, > 0 right), and returns the box's bottom.
func (c *canvas) line(f *face, rs []rune, x0, x1, top, align int, on bool) int {
	x := x0
	switch w := f.width(rs); {
	case align == 0:
		x = x0 + (x1-x0-w)/2
	case align > 0:
		x = x1 - w
	}
	c.text(f, rs, x, top-f.top, on)
	return top + f.height()
}

// icon draws a bitmap given as rows of '#' (ink) and '.' at (x, y),
// magnified by scale.
func (c *canvas) icon(rows []string, x, y, scale int, on bool) {
	for j, row := range rows {
		for i := range len(row) {
			if row[i] == '#' {
				c.fill(image.Rect(x+i*scale, y+j*scale, x+(i+1)*scale, y+(j+1)*scale), on)
			}
		}
	}
}

// invert swaps ink and background, leaving the padding rows of the last
// band clear.
func (c *canvas) invert() {
	for i := range c.img.Pix {
		c.img.Pix[i] = ^c.img.Pix[i]
	}
	if pad := c.h & 7; pad != 0 {
		mask := byte(1)<<pad - 1
		last := (c.h >> 3) * c.w
		for i := last; i < last+c.w && i < len(c.img.Pix); i++ {
			c.img.Pix[i] &= mask
		}
	}
}

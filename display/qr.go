package display

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"sync"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// ECLevel is a QR code's error-correction level.
type ECLevel int

// The error-correction levels, from least to most redundancy.
const (
	ECLow      ECLevel = iota // L: recovers 7% of the code words
	ECMedium                  // M: 15%
	ECQuartile                // Q: 25%
	ECHigh                    // H: 30%
)

// String returns "L", "M", "Q" or "H".
func (l ECLevel) String() string {
	if l >= ECLow && l <= ECHigh {
		return string("LMQH"[l])
	}
	return fmt.Sprintf("ECLevel(%d)", int(l))
}

func (l ECLevel) qr() qr.ErrorCorrectionLevel {
	return [...]qr.ErrorCorrectionLevel{qr.L, qr.M, qr.Q, qr.H}[l]
}

// The fit engine's limits.
const (
	// MinQRScale is the smallest module a QR code is drawn with, in
	// pixels: a phone camera cannot read one-pixel modules on a small
	// panel.
	MinQRScale = 2
	// QRQuietZone is the quiet zone around a QR code, in modules, as the
	// standard asks.
	QRQuietZone = 4
	// MinQRQuietZone is the quiet zone used only where QRQuietZone does
	// not fit; scanners still read codes with it.
	MinQRQuietZone = 2
)

// ErrQRTooLong is returned (wrapped) by FitQR when a URI's QR code does not
// fit a panel at MinQRScale pixels per module.
var ErrQRTooLong = errors.New("QR code too large for the panel")

// QRFit is how a QR code is drawn on a panel.
type QRFit struct {
	// Level is the error-correction level.
	Level ECLevel
	// Modules is the number of modules on a side, without the quiet zone
	// (21 for version 1, 4 more per version).
	Modules int
	// Scale is the size of a module in pixels, at least MinQRScale.
	Scale int
	// Quiet is the quiet zone in modules: QRQuietZone, or MinQRQuietZone
	// where it must.
	Quiet int
	// Rect is where the code and its quiet zone are drawn: a square of
	// (Modules+2*Quiet)*Scale pixels, at the panel's left edge and
	// centred vertically.
	Rect image.Rectangle
}

// dataCodewords is the number of data codewords of QR code versions 1 to
// 40 at levels L, M, Q and H (ISO/IEC 18004, table 7). With it the fit
// engine sizes a code without encoding it: encoding (mask selection) is the
// slow part and is done once, for the chosen level.
var dataCodewords = [40][4]int{
	{19, 16, 13, 9},          // 1
	{34, 28, 22, 16},         // 2
	{55, 44, 34, 26},         // 3
	{80, 64, 48, 36},         // 4
	{108, 86, 62, 46},        // 5
	{136, 108, 76, 60},       // 6
	{156, 124, 88, 66},       // 7
	{194, 154, 110, 86},      // 8
	{232, 182, 132, 100},     // 9
	{274, 216, 154, 122},     // 10
	{324, 254, 180, 140},     // 11
	{370, 290, 206, 158},     // 12
	{428, 334, 244, 180},     // 13
	{461, 365, 261, 197},     // 14
	{523, 415, 295, 223},     // 15
	{589, 453, 325, 253},     // 16
	{647, 507, 367, 283},     // 17
	{721, 563, 397, 313},     // 18
	{795, 627, 445, 341},     // 19
	{861, 669, 485, 385},     // 20
	{932, 714, 512, 406},     // 21
	{1006, 782, 568, 442},    // 22
	{1094, 860, 614, 464},    // 23
	{1174, 914, 664, 514},    // 24
	{1276, 1000, 718, 538},   // 25
	{1370, 1062, 754, 596},   // 26
	{1468, 1128, 808, 628},   // 27
	{1531, 1193, 871, 661},   // 28
	{1631, 1267, 911, 701},   // 29
	{1735, 1373, 985, 745},   // 30
	{1843, 1455, 1033, 793},  // 31
	{1955, 1541, 1115, 845},  // 32
	{2071, 1631, 1171, 901},  // 33
	{2191, 1725, 1231, 961},  // 34
	{2306, 1812, 1286, 986},  // 35
	{2434, 1914, 1354, 1054}, // 36
	{2566, 1992, 1426, 1096}, // 37
	{2702, 2102, 1502, 1142}, // 38
	{2812, 2216, 1582, 1222}, // 39
	{2956, 2334, 1666, 1276}, // 40
}

// qrMode is the encoding mode the encoder picks for content: numeric,
// alphanumeric or bytes, as boombuler/barcode's qr.Auto does.
type qrMode int

const (
	modeNumeric qrMode = iota
	modeAlphanumeric
	modeByte
)

func modeOf(content string) qrMode {
	m := modeNumeric
	for i := 0; i < len(content); i++ {
		c := content[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z', strings.IndexByte(" $%*+-./:", c) >= 0:
			m = modeAlphanumeric
		default:
			return modeByte
		}
	}
	return m
}

// qrModules returns the side, in modules, of the smallest QR code holding
// content at level l, or 0 if none does.
func qrModules(content string, l ECLevel) int {
	mode := modeOf(content)
	n := len(content)
	var bits int
	switch mode {
	case modeNumeric:
		bits = n/3*10 + [...]int{0, 4, 7}[n%3]
	case modeAlphanumeric:
		bits = n/2*11 + n%2*6
	default:
		bits = n * 8
	}
	for v := 1; v <= 40; v++ {
		band := 0 // the character count's width grows at versions 10 and 27
		if v >= 27 {
			band = 2
		} else if v >= 10 {
			band = 1
		}
		countBits := [3][3]int{{10, 12, 14}, {9, 11, 13}, {8, 16, 16}}[mode][band]
		if dataCodewords[v-1][l]*8 >= 4+countBits+bits {
			return 17 + 4*v
		}
	}
	return 0
}

// FitQR chooses how to draw the QR code of uri on a panel of the given
// size. The code's square takes at most the panel's height and width. The
// quiet zone is QRQuietZone modules unless only MinQRQuietZone lets the code
// fit; with that quiet zone, the largest integer scale wins (bigger modules
// scan more easily than more redundant ones), then the highest
// error-correction level that still fits at that scale. It returns an error
// wrapping ErrQRTooLong where the code cannot be drawn at MinQRScale; the
// error never contains the URI, which holds the account's secret. FitQR
// does not encode the code, so it is cheap to call.
func FitQR(uri string, size image.Point) (QRFit, error) {
	side := min(size.X, size.Y)
	if uri == "" {
		return QRFit{}, errors.New("display: empty URI for the QR code")
	}
	n := qrModules(uri, ECLow)
	if n == 0 {
		return QRFit{}, fmt.Errorf("display: URI of %d bytes does not fit any QR code: %w", len(uri), ErrQRTooLong)
	}
	quiet := QRQuietZone
	if (n+2*quiet)*MinQRScale > side {
		quiet = MinQRQuietZone
	}
	if (n+2*quiet)*MinQRScale > side {
		return QRFit{}, fmt.Errorf("display: URI of %d bytes needs a QR code of %d modules, over the %d a %dx%d panel shows at %d px per module: %w",
			len(uri), n, max(0, side/MinQRScale-2*MinQRQuietZone), size.X, size.Y, MinQRScale, ErrQRTooLong)
	}
	scale := side / (n + 2*quiet)
	fit := QRFit{Level: ECLow, Modules: n, Scale: scale, Quiet: quiet}
	for l := ECHigh; l > ECLow; l-- {
		if m := qrModules(uri, l); m > 0 && (m+2*quiet)*scale <= side {
			fit.Level, fit.Modules = l, m
			break
		}
	}
	px := (fit.Modules + 2*quiet) * scale
	y := (size.Y - px) / 2
	fit.Rect = image.Rect(0, y, px, y+px)
	return fit, nil
}

// lastQR caches the most recent encoded code: the appliance redraws the
// QR view with the same URI, and encoding takes milliseconds. It holds one
// account's URI at a time, which the appliance holds in memory anyway.
var lastQR struct {
	sync.Mutex
	uri   string
	level ECLevel
	code  *qrMatrix
}

// qrMatrix is an encoded QR code's modules, row by row, true where dark.
type qrMatrix struct {
	n    int
	dark []bool
}

func matrixOf(code barcode.Barcode) *qrMatrix {
	b := code.Bounds()
	m := &qrMatrix{n: b.Dx(), dark: make([]bool, b.Dx()*b.Dy())}
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, _, _, _ := code.At(b.Min.X+x, b.Min.Y+y).RGBA()
			m.dark[y*m.n+x] = r < 0x8000
		}
	}
	return m
}

// encodeQR returns the QR code of uri at level l.
func encodeQR(uri string, l ECLevel) (*qrMatrix, error) {
	lastQR.Lock()
	defer lastQR.Unlock()
	if lastQR.code != nil && lastQR.uri == uri && lastQR.level == l {
		return lastQR.code, nil
	}
	code, err := qr.Encode(uri, l.qr(), qr.Auto)
	if err != nil {
		// The encoder's errors quote the content: do not pass them on.
		return nil, fmt.Errorf("display: encoding a URI of %d bytes as a QR code failed", len(uri))
	}
	m := matrixOf(code)
	lastQR.uri, lastQR.level, lastQR.code = uri, l, m
	return m, nil
}

// draw encodes uri and paints it into fit.Rect: dark modules on a light
// quiet zone, after Render's final inversion for paper. It reports whether
// the code was drawn.
func (fit QRFit) draw(c *canvas, uri string, paper bool) bool {
	code, err := encodeQR(uri, fit.Level)
	if err != nil {
		return false
	}
	if m := code.n; m != fit.Modules {
		// The size model and the encoder disagree; draw what was encoded
		// if it still fits at this scale.
		px := (m + 2*fit.Quiet) * fit.Scale
		if px > fit.Rect.Dy() {
			return false
		}
		fit.Modules = m
		fit.Rect.Max = fit.Rect.Min.Add(image.Pt(px, px))
	}
	light := !paper
	c.fill(fit.Rect, light)
	x0 := fit.Rect.Min.X + fit.Quiet*fit.Scale
	y0 := fit.Rect.Min.Y + fit.Quiet*fit.Scale
	for j := range fit.Modules {
		for i := range fit.Modules {
			if code.dark[j*code.n+i] {
				c.fill(image.Rect(x0+i*fit.Scale, y0+j*fit.Scale, x0+(i+1)*fit.Scale, y0+(j+1)*fit.Scale), !light)
			}
		}
	}
	return true
}

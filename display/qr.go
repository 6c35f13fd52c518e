package display

import (
	"errors"
	"fmt"
	"image"

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

	code barcode.Barcode
}

// FitQR chooses how to draw the QR code of uri on a panel of the given
// size. The code's square takes at most the panel's height and width. The
// quiet zone is QRQuietZone modules unless only MinQRQuietZone lets the code
// fit; with that quiet zone, the largest integer scale wins (bigger modules
// scan more easily than more redundant ones), then the highest
// error-correction level that still fits at that scale. It returns an error
// wrapping ErrQRTooLong where the code cannot be drawn at MinQRScale; the
// error never contains the URI, which holds the account's secret.
func FitQR(uri string, size image.Point) (QRFit, error) {
	side := min(size.X, size.Y)
	if uri == "" {
		return QRFit{}, errors.New("display: empty URI for the QR code")
	}
	low, err := qr.Encode(uri, qr.L, qr.Auto)
	if err != nil {
		return QRFit{}, fmt.Errorf("display: URI of %d bytes does not fit any QR code: %w", len(uri), ErrQRTooLong)
	}
	n := low.Bounds().Dx()
	quiet := QRQuietZone
	if (n+2*quiet)*MinQRScale > side {
		quiet = MinQRQuietZone
	}
	if (n+2*quiet)*MinQRScale > side {
		return QRFit{}, fmt.Errorf("display: URI of %d bytes needs a QR code of %d modules, over the %d a %dx%d panel shows at %d px per module: %w",
			len(uri), n, side/MinQRScale-2*MinQRQuietZone, size.X, size.Y, MinQRScale, ErrQRTooLong)
	}
	scale := side / (n + 2*quiet)
	fit := QRFit{Level: ECLow, Modules: n, Scale: scale, Quiet: quiet, code: low}
	for l := ECHigh; l > ECLow; l-- {
		c, err := qr.Encode(uri, l.qr(), qr.Auto)
		if err != nil {
			continue
		}
		if m := c.Bounds().Dx(); (m+2*quiet)*scale <= side {
			fit.Level, fit.Modules, fit.code = l, m, c
			break
		}
	}
	px := (fit.Modules + 2*quiet) * scale
	y := (size.Y - px) / 2
	fit.Rect = image.Rect(0, y, px, y+px)
	return fit, nil
}

// draw paints the code into fit.Rect: dark modules on a light quiet zone
// and background after Render's final inversion for paper.
func (fit QRFit) draw(c *canvas, paper bool) {
	light := !paper
	c.fill(fit.Rect, light)
	x0 := fit.Rect.Min.X + fit.Quiet*fit.Scale
	y0 := fit.Rect.Min.Y + fit.Quiet*fit.Scale
	b := fit.code.Bounds()
	for j := range fit.Modules {
		for i := range fit.Modules {
			if dark(fit.code, b.Min.X+i, b.Min.Y+j) {
				c.fill(image.Rect(x0+i*fit.Scale, y0+j*fit.Scale, x0+(i+1)*fit.Scale, y0+(j+1)*fit.Scale), !light)
			}
		}
	}
}

func dark(img image.Image, x, y int) bool {
	r, _, _, _ := img.At(x, y).RGBA()
	return r < 0x8000
}

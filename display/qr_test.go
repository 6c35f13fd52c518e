package display

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"

	"github.com/boombuler/barcode/qr"
	"github.com/makiuchi-d/gozxing"
	qrdecode "github.com/makiuchi-d/gozxing/qrcode"
)

// otpauthURI returns an otpauth URI of exactly n bytes (n >= 40): a label
// grown to length around a 16-character secret.
func otpauthURI(n int) string {
	const head, tail = "otpauth://totp/", "?secret=JBSWY3DPEHPK3PXP"
	k := n - len(head) - len(tail)
	label := strings.Repeat("Example:alice.kiosk-7@example.com/", 1+k/34)[:k]
	return head + label + tail
}

// decodeQR reads the QR code in img with ZXing's decoder.
func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrdecode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// TestQRViewDecodes renders the QR view of URIs of 40 to 160 bytes on every
// panel and decodes it back from the pixels wherever FitQR claims it fits;
// where it does not, the view must hold no code at all.
func TestQRViewDecodes(t *testing.T) {
	for _, panel := range SizeNames() {
		size := Sizes[panel]
		for n := 40; n <= 160; n++ {
			uri := otpauthURI(n)
			for _, paper := range []bool{false, true} {
				if paper && n%10 != 0 {
					continue
				}
				name := fmt.Sprintf("%s/%d", panel, n)
				if paper {
					name += "/paper"
				}
				_, fitErr := FitQR(uri, size)
				img := Render(Screen{View: ViewQR, Issuer: "Example", Label: "alice", URI: uri, Paper: paper}, size)
				got, err := decodeQR(img)
				switch {
				case fitErr == nil && err != nil:
					t.Errorf("%s: FitQR fits but decoding the rendered view failed: %v", name, err)
				case fitErr == nil && got != uri:
					t.Errorf("%s: decoded %q, want %q", name, got, uri)
				case fitErr != nil && err == nil:
					t.Errorf("%s: FitQR refused (%v) but the view holds a readable code", name, fitErr)
				}
			}
		}
	}
}

// TestFitQRTable pins which panels fit which URI lengths, and how.
func TestFitQRTable(t *testing.T) {
	tests := []struct {
		panel  string
		n      int // URI length in bytes
		fits   bool
		scale  int
		quiet  int
		level  ECLevel
		module int
	}{
		// The OLEDs hold no otpauth URI at 2 px per module: 64 px hold 32
		// modules, version 2 (25) with a quiet zone of 2, 32 bytes.
		{"ssd1306-128x64", 17, true, 2, 4, ECLow, 21},
		{"ssd1306-128x64", 32, true, 2, 2, ECLow, 25},
		{"ssd1306-128x64", 33, false, 0, 0, 0, 0},
		{"ssd1306-128x64", 40, false, 0, 0, 0, 0},
		{"ssd1306-128x64", 160, false, 0, 0, 0, 0},
		{"ssd1306-128x32", 10, false, 0, 0, 0, 0},
		{"ssd1306-128x32", 40, false, 0, 0, 0, 0},
		{"ssd1306-128x32", 160, false, 0, 0, 0, 0},
		// 122 px: 3 px modules up to version 3 (53 bytes), then 2 px up to
		// version 9 (230 bytes), version 10 only with a quiet zone of 2.
		{"epd-250x122", 40, true, 3, 4, ECMedium, 29},
		{"epd-250x122", 53, true, 3, 4, ECLow, 29},
		{"epd-250x122", 54, true, 2, 4, ECHigh, 41},
		{"epd-250x122", 100, true, 2, 4, ECQuartile, 49},
		{"epd-250x122", 160, true, 2, 4, ECMedium, 53},
		{"epd-250x122", 230, true, 2, 4, ECLow, 53},
		{"epd-250x122", 231, true, 2, 2, ECLow, 57},
		{"epd-250x122", 271, true, 2, 2, ECLow, 57},
		{"epd-250x122", 272, false, 0, 0, 0, 0},
		// 128 px: 3 px modules up to version 4 (78 bytes).
		{"epd-296x128", 40, true, 3, 4, ECQuartile, 33},
		{"epd-296x128", 78, true, 3, 4, ECLow, 33},
		{"epd-296x128", 79, true, 2, 4, ECHigh, 49},
		{"epd-296x128", 160, true, 2, 4, ECMedium, 53},
		{"epd-296x128", 271, true, 2, 2, ECLow, 57},
		{"epd-296x128", 272, false, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.panel, tt.n), func(t *testing.T) {
			uri := strings.Repeat("x", tt.n)
			if tt.n >= 40 {
				uri = otpauthURI(tt.n)
			}
			fit, err := FitQR(uri, Sizes[tt.panel])
			if !tt.fits {
				if !errors.Is(err, ErrQRTooLong) {
					t.Fatalf("FitQR(%d bytes, %s) = %+v, %v; want ErrQRTooLong", tt.n, tt.panel, fit, err)
				}
				if strings.Contains(err.Error(), uri) {
					t.Errorf("FitQR error %q contains the URI", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FitQR(%d bytes, %s): %v", tt.n, tt.panel, err)
			}
			got := [4]int{fit.Scale, fit.Quiet, int(fit.Level), fit.Modules}
			want := [4]int{tt.scale, tt.quiet, int(tt.level), tt.module}
			if got != want {
				t.Errorf("FitQR(%d bytes, %s) = scale %d, quiet %d, level %v, %d modules; want scale %d, quiet %d, level %v, %d modules",
					tt.n, tt.panel, fit.Scale, fit.Quiet, fit.Level, fit.Modules, tt.scale, tt.quiet, tt.level, tt.module)
			}
		})
	}
}

// TestFitQRChoices checks the fit engine's rules for every length on every
// panel: the code fits, modules are at least 2 px, no larger scale fits with
// the chosen quiet zone, the quiet zone is 2 only where 4 cannot fit, and
// the next level of error correction does not fit at the chosen scale.
func TestFitQRChoices(t *testing.T) {
	for _, panel := range SizeNames() {
		size := Sizes[panel]
		side := min(size.X, size.Y)
		for n := 40; n <= 280; n++ {
			uri := otpauthURI(n)
			fit, err := FitQR(uri, size)
			low := qrModules(uri, ECLow) // checked against the encoder by TestQRModules
			if err != nil {
				if (low+2*MinQRQuietZone)*MinQRScale <= side {
					t.Errorf("FitQR(%d bytes, %s) refused a code of %d modules that fits: %v", n, panel, low, err)
				}
				continue
			}
			px := (fit.Modules + 2*fit.Quiet) * fit.Scale
			if fit.Scale < MinQRScale || px > side || !fit.Rect.In(image.Rect(0, 0, size.X, size.Y)) || fit.Rect.Dx() != px || fit.Rect.Dy() != px {
				t.Errorf("FitQR(%d bytes, %s) = %+v: does not fit the panel", n, panel, fit)
			}
			if (low+2*fit.Quiet)*(fit.Scale+1) <= side {
				t.Errorf("FitQR(%d bytes, %s) = scale %d; scale %d fits", n, panel, fit.Scale, fit.Scale+1)
			}
			if fit.Quiet != QRQuietZone && (low+2*QRQuietZone)*MinQRScale <= side {
				t.Errorf("FitQR(%d bytes, %s) = quiet zone %d; %d fits", n, panel, fit.Quiet, QRQuietZone)
			}
			if fit.Level < ECHigh {
				if m := qrModules(uri, fit.Level+1); m > 0 && (m+2*fit.Quiet)*fit.Scale <= side {
					t.Errorf("FitQR(%d bytes, %s) = level %v; level %v fits at scale %d", n, panel, fit.Level, fit.Level+1, fit.Scale)
				}
			}
		}
	}
}

// TestQRModules checks the fit engine's size model against the encoder for
// every mode and level.
func TestQRModules(t *testing.T) {
	alphabets := map[string]string{
		"numeric":      "0123456789",
		"alphanumeric": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
		"byte":         "otpauth://totp/Ex:a?secret=JBSWY3DP&issuer=Ex",
	}
	for name, alphabet := range alphabets {
		for n := 1; n <= 500; n += 1 + n/5 {
			content := strings.Repeat(alphabet, 1+n/len(alphabet))[:n]
			for l := ECLow; l <= ECHigh; l++ {
				want := 0
				if c, err := qr.Encode(content, l.qr(), qr.Auto); err == nil {
					want = c.Bounds().Dx()
				}
				if got := qrModules(content, l); got != want {
					t.Errorf("qrModules(%s of %d, %v) = %d, want %d", name, n, l, got, want)
				}
			}
		}
	}
}

func TestFitQRBadInput(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		size image.Point
	}{
		{"empty", "", image.Pt(296, 128)},
		{"zero panel", "otpauth://totp/a?secret=AAAA", image.Pt(0, 0)},
		{"negative panel", "otpauth://totp/a?secret=AAAA", image.Pt(-5, -5)},
		{"over any QR code", strings.Repeat("a", 3000), image.Pt(2048, 2048)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fit, err := FitQR(tt.uri, tt.size); err == nil {
				t.Errorf("FitQR(%s) = %+v, want an error", tt.name, fit)
			}
		})
	}
}

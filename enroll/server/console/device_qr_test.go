package console

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// TestQRPNGScans: the registration QR code is a pure code (nothing but
// the modules, drawn on the pixel grid) that reads back as the URI for any
// secret. Read as a photo would be, with gozxing's finder-pattern search,
// 2 of these 300 codes are not found (that search misplaces a corner
// outside the image), which made the console tests that read the code
// fail now and then; read as the pure code it is, every one is found.
func TestQRPNGScans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		secret := make([]byte, 20)
		for j := range secret {
			secret[j] = byte(rng.Uint32())
		}
		uri := fmt.Sprintf("otpauth://totp/totpbox:user%d?secret=%s&issuer=totpbox&algorithm=SHA1&digits=6&period=30",
			i, base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret))
		b, err := qrPNG(uri, 256)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if err != nil {
			t.Errorf("secret %d: %v", i, err)
			continue
		}
		if res.GetText() != uri {
			t.Errorf("secret %d: read %q, want %q", i, res.GetText(), uri)
		}
	}
}

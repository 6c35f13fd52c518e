package display

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs under testdata/")

// sampleURI is an otpauth URI of typical length (95 bytes).
const sampleURI = "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example"

// goldenScreens are the frames checked against testdata/<panel>/<name>.png.
var goldenScreens = []struct {
	name string
	s    Screen
}{
	{"code", Screen{View: ViewCode, Issuer: "GitHub", Label: "alice@example.com", Code: "492039",
		Remaining: 17 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeSynced, Link: LinkUp}},
	{"code-next", Screen{View: ViewCode, Issuer: "GitHub", Label: "GitHub:alice", Code: "492039", NextCode: "118354",
		Remaining: 3 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeHoldover, Link: LinkDown}},
	{"code-user", Screen{View: ViewCode, Issuer: "totpbox", Label: "Front desk", User: "alice.with.a.rather.long.name@example.com", Code: "492039",
		Remaining: 17 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeSynced, Link: LinkUp}},
	{"code-8digits", Screen{View: ViewCode, Issuer: "Example Corporation VPN", Label: "j.random.hacker@corp.example.com", Code: "12345678",
		Remaining: 44 * time.Second, Period: 60 * time.Second, Count: 1, Time: TimeSynced}},
	{"untrusted", Screen{View: ViewUntrusted, Issuer: "GitHub", Label: "alice", Time: TimeUntrusted,
		Reason: "no agreeing NTP servers", Index: 0, Count: 2, Link: LinkUp}},
	{"unsynced", Screen{View: ViewCode, Issuer: "GitHub", Label: "alice", Code: "492039", Time: TimeUnsynced}},
	{"hidden", Screen{View: ViewHidden, Issuer: "Bank", Label: "Zoë Ångström", Code: "492039", Index: 2, Count: 3, Link: LinkUp}},
	{"offer", Screen{View: ViewOffer, User: "alice", DeviceName: "Front desk kiosk"}},
	{"offer-wrong", Screen{View: ViewOffer, User: "alice", DeviceName: "Front desk kiosk", TriesLeft: 2}},
	{"offer-entry", Screen{View: ViewOfferEntry, User: "alice", Entered: 2, Needed: 4, TriesLeft: 3}},
	{"offer-entry-wrong", Screen{View: ViewOfferEntry, User: "alice", Entered: 0, Needed: 4, TriesLeft: 1}},
	{"takeover", Screen{View: ViewTakeover, DeviceName: "Lobby kiosk 3", Count: 10}},
	{"takeover-one", Screen{View: ViewTakeover, DeviceName: "A rather long appliance name at the front desk", Count: 1}},
	{"qr", Screen{View: ViewQR, Issuer: "Example", Label: "alice@example.com", URI: sampleURI}},
	{"qr-short", Screen{View: ViewQR, Issuer: "Ex", Label: "al", URI: "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP"}},
	{"secret", Screen{View: ViewSecret, Issuer: "Example", Label: "alice", Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}},
	{"secret-last-page", Screen{View: ViewSecret, Issuer: "Example", Label: "alice", Secret: "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp jbsw====", Page: 99}},
	{"pairing", Screen{View: ViewPairing, Server: "https://mfa.example.com", PairingCode: "K7Q-4MZ"}},
	{"message", Screen{View: ViewMessage, Title: "Vault locked", Message: "Enter the PIN in totpctl to unlock the accounts."}},
	{"paper-code", Screen{View: ViewCode, Issuer: "GitHub", Label: "alice@example.com", Code: "492039",
		Remaining: 9 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeSynced, Link: LinkUp, Paper: true}},
	{"paper-qr", Screen{View: ViewQR, Issuer: "Example", Label: "alice@example.com", URI: sampleURI, Paper: true}},
}

func TestGolden(t *testing.T) {
	for _, panel := range SizeNames() {
		size := Sizes[panel]
		for _, g := range goldenScreens {
			t.Run(panel+"/"+g.name, func(t *testing.T) {
				got := Render(g.s, size)
				if got.Bounds() != image.Rect(0, 0, size.X, size.Y) {
					t.Fatalf("Render(%s) bounds = %v, want %v", g.name, got.Bounds(), size)
				}
				path := filepath.Join("testdata", panel, g.name+".png")
				if *update {
					if err := writePNG(path, got); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := readPNG(path)
				if err != nil {
					t.Fatalf("%v (run go test ./display -update to create it)", err)
				}
				if diff := diffPixels(got, want); diff != "" {
					t.Errorf("Render(%s, %s) differs from %s: %s (run go test ./display -update if intended)", g.name, panel, path, diff)
				}
			})
		}
	}
}

// writePNG saves img as a black and white PNG.
func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b := img.Bounds()
	pal := image.NewPaletted(b, color.Palette{color.Black, color.White})
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) == image1bit.On {
				pal.SetColorIndex(x, y, 1)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, pal); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readPNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(f)
}

// diffPixels describes how got and want differ, or returns "".
func diffPixels(got *image1bit.VerticalLSB, want image.Image) string {
	if got.Bounds() != want.Bounds() {
		return fmt.Sprintf("size %v, want %v", got.Bounds().Size(), want.Bounds().Size())
	}
	n, first := 0, image.Point{-1, -1}
	b := got.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, _, _, _ := want.At(x, y).RGBA()
			if bool(got.BitAt(x, y)) != (r >= 0x8000) {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d pixels differ, the first at %v", n, first)
}

package epaper

import (
	"fmt"
	"image"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"

	"periph.io/x/conn/v3/display"
	"periph.io/x/devices/v3/ssd1306/image1bit"
	"periph.io/x/devices/v3/waveshare2in13v2"
	"periph.io/x/devices/v3/waveshare2in13v3"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// driver is what the tests need of periph's two drivers.
type driver struct {
	display.Drawer
	init    func() error
	partial func(bool) error
	sleep   func() error
}

// corners are periph's origin corners, the same values in both drivers.
var corners = []struct {
	name string
	c    uint8
}{{"TopLeft", 0}, {"TopRight", 1}, {"BottomRight", 2}, {"BottomLeft", 3}}

// openDriver connects periph's driver for chip to a fresh emulator.
func openDriver(t *testing.T, chip Controller, corner uint8) (*Device, driver) {
	t.Helper()
	d := New(Options{Controller: chip, Logger: quiet})
	switch chip {
	case SSD1675B:
		opts := waveshare2in13v2.EPD2in13v2
		opts.Origin = waveshare2in13v2.Corner(corner)
		dev, err := waveshare2in13v2.New(d.Port(), d.DC(), d.CS(), d.RST(), d.BUSY(), &opts)
		if err != nil {
			t.Fatalf("waveshare2in13v2.New: %v", err)
		}
		return d, driver{dev, dev.Init, func(p bool) error { return dev.SetUpdateMode(waveshare2in13v2.PartialUpdate(p)) }, dev.Sleep}
	default:
		opts := waveshare2in13v3.EPD2in13v3
		opts.Origin = waveshare2in13v3.Corner(corner)
		dev, err := waveshare2in13v3.New(d.Port(), d.DC(), d.CS(), d.RST(), d.BUSY(), &opts)
		if err != nil {
			t.Fatalf("waveshare2in13v3.New: %v", err)
		}
		return d, driver{dev, dev.Init, func(p bool) error { return dev.SetUpdateMode(waveshare2in13v3.PartialUpdate(p)) }, dev.Sleep}
	}
}

// pattern returns an image of size r that no rotation or mirroring maps
// onto itself: a filled corner block, a bar along the top and a diagonal.
func pattern(r image.Rectangle, seed int) *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(r)
	w, h := r.Dx(), r.Dy()
	for y := range h {
		for x := range w {
			on := (x < 20 && y < 10) || (y < 3 && x < w/2) || x == y+seed || (x*7+y*3+seed)%11 == 0
			img.SetBit(x, y, image1bit.Bit(!on)) // ink on paper
		}
	}
	return img
}

func equal(a, b *image1bit.VerticalLSB) (bool, string) {
	if a.Rect.Size() != b.Rect.Size() {
		return false, fmt.Sprintf("size %v, want %v", a.Rect.Size(), b.Rect.Size())
	}
	diff := 0
	first := ""
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			if a.BitAt(x, y) != b.BitAt(x, y) {
				if diff == 0 {
					first = fmt.Sprintf("first at %d,%d", x, y)
				}
				diff++
			}
		}
	}
	return diff == 0, fmt.Sprintf("%d pixels differ, %s", diff, first)
}

// TestDriverOrientation runs periph's drivers for both controllers, from
// each origin corner, and reads the glass back: turned by the rotation
// each corner stands for, it equals the image drawn, pixel for pixel (no
// mirroring, no shift).
func TestDriverOrientation(t *testing.T) {
	// The glass turned clockwise by rotate shows the picture upright.
	rotate := map[string]int{"TopLeft": 0, "TopRight": 270, "BottomRight": 180, "BottomLeft": 90}
	for _, chip := range []Controller{SSD1675B, SSD1680} {
		for _, c := range corners {
			t.Run(string(chip)+"/"+c.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					d, drv := openDriver(t, chip, c.c)
					if err := drv.init(); err != nil {
						t.Fatalf("Init: %v", err)
					}
					img := pattern(drv.Bounds(), 0)
					if err := drv.Draw(img.Rect, img, image.Point{}); err != nil {
						t.Fatalf("Draw: %v", err)
					}
					got, err := Rotate(d.Frame(), rotate[c.name])
					if err != nil {
						t.Fatal(err)
					}
					if ok, why := equal(got, img); !ok {
						t.Errorf("glass turned %d° = drawn image? %s", rotate[c.name], why)
					}
					st := d.Stats()
					if st.UnknownCommands != 0 || st.ExtraBytes != 0 {
						t.Errorf("stats %+v: unknown commands or extra bytes", st)
					}
				})
			})
		}
	}
}

package epaper

import (
	"fmt"
	"image"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
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
	d := New(Config{Controller: chip, Logger: quiet})
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

// bus sends raw commands and data to the controller, as a driver would.
type bus struct {
	t  *testing.T
	d  *Device
	tx func(w, r []byte) error
}

func newBus(t *testing.T, d *Device) *bus {
	c, err := d.Port().Connect(4*physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return &bus{t: t, d: d, tx: c.Tx}
}

func (b *bus) cmd(c byte, data ...byte) {
	b.t.Helper()
	if err := b.d.DC().Out(false); err != nil {
		b.t.Fatal(err)
	}
	if err := b.tx([]byte{c}, nil); err != nil {
		b.t.Fatal(err)
	}
	if len(data) == 0 {
		return
	}
	if err := b.d.DC().Out(true); err != nil {
		b.t.Fatal(err)
	}
	if err := b.tx(data, nil); err != nil {
		b.t.Fatal(err)
	}
}

// TestDataEntryModes writes four bytes into a 2-byte by 2-line window in
// each data entry mode and checks where they land: the address counter
// moves along X or Y first, up or down, and wraps inside the window.
func TestDataEntryModes(t *testing.T) {
	for _, tc := range []struct {
		mode   byte
		x0, y0 byte // counter start
		want   [2][2]byte
	}{
		{0b011, 0, 0, [2][2]byte{{1, 2}, {3, 4}}}, // X+, Y+, X first
		{0b111, 0, 0, [2][2]byte{{1, 3}, {2, 4}}}, // X+, Y+, Y first
		{0b010, 1, 0, [2][2]byte{{2, 1}, {4, 3}}}, // X-, Y+
		{0b001, 0, 1, [2][2]byte{{3, 4}, {1, 2}}}, // X+, Y-
		{0b000, 1, 1, [2][2]byte{{4, 3}, {2, 1}}}, // X-, Y-
	} {
		t.Run(fmt.Sprintf("%03b", tc.mode), func(t *testing.T) {
			d := New(Config{Logger: quiet})
			b := newBus(t, d)
			b.cmd(cmdDataEntry, tc.mode)
			if tc.mode&1 != 0 {
				b.cmd(cmdXWindow, 0, 1)
			} else {
				b.cmd(cmdXWindow, 1, 0)
			}
			if tc.mode&2 != 0 {
				b.cmd(cmdYWindow, 0, 0, 1, 0)
			} else {
				b.cmd(cmdYWindow, 1, 0, 0, 0)
			}
			b.cmd(cmdXCounter, tc.x0)
			b.cmd(cmdYCounter, tc.y0, 0)
			b.cmd(cmdWriteBW, 1, 2, 3, 4)
			ram := d.RAM(BW)
			stride := (122 + 7) / 8
			got := [2][2]byte{{ram[0], ram[1]}, {ram[stride], ram[stride+1]}}
			if got != tc.want {
				t.Errorf("RAM rows = %v, want %v", got, tc.want)
			}
			if st := d.State(); st.X != int(tc.x0) || st.Y != int(tc.y0) {
				t.Errorf("counter after a full window = %d,%d, want it wrapped to %d,%d", st.X, st.Y, tc.x0, tc.y0)
			}
		})
	}
}

// TestUnknownCommands sends commands no SSD1675B/SSD1680 knows: they are
// counted and listed, their data ignored, and the next command works.
func TestUnknownCommands(t *testing.T) {
	d := New(Config{Logger: quiet})
	b := newBus(t, d)
	b.cmd(0xAA, 1, 2, 3)
	b.cmd(0x99)
	b.cmd(cmdBorder, 0x05)
	st := d.Stats()
	if st.UnknownCommands != 2 || string(st.Unknown) != "\xaa\x99" {
		t.Errorf("unknown commands %d %x, want 2: aa 99", st.UnknownCommands, st.Unknown)
	}
	if st.ExtraBytes != 3 {
		t.Errorf("ExtraBytes = %d, want the unknown command's 3 data bytes", st.ExtraBytes)
	}
	if got := d.State().Border; got != 0x05 {
		t.Errorf("border after unknown commands = %#x, want 0x05", got)
	}
}

// TestDeepSleep puts the controller to sleep: BUSY stays high, bytes are
// ignored, and a pulse on RST wakes it with RAM kept.
func TestDeepSleep(t *testing.T) {
	d := New(Config{Logger: quiet})
	b := newBus(t, d)
	b.cmd(cmdXCounter, 0)
	b.cmd(cmdYCounter, 0, 0)
	b.cmd(cmdWriteBW, 0x5A)
	b.cmd(cmdDeepSleep, 0x01)
	if !d.State().DeepSleep || d.BUSY().Read() != true {
		t.Fatal("not asleep with BUSY high after 0x10 0x01")
	}
	before := d.Stats()
	b.cmd(cmdBorder, 0x07)
	if got := d.Stats().Sub(before).IgnoredBytes; got != 2 {
		t.Errorf("IgnoredBytes in deep sleep = %d, want 2", got)
	}
	d.RST().Out(false)
	d.RST().Out(true)
	if d.State().DeepSleep || d.BUSY().Read() != false {
		t.Error("still asleep after a reset pulse")
	}
	if d.RAM(BW)[0] != 0x5A {
		t.Errorf("RAM lost in deep sleep mode 1: %#x", d.RAM(BW)[0])
	}
}

// TestRefreshTiming times periph's V2 driver's refreshes on the virtual
// clock: BUSY holds each for its LUT's waveform, 90 frames for a full
// refresh and 10 for a partial one, at 20 ms a frame.
func TestRefreshTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, drv := openDriver(t, SSD1675B, 1)
		if err := drv.init(); err != nil {
			t.Fatal(err)
		}
		img := pattern(drv.Bounds(), 0)
		draw := func() (time.Duration, Stats) {
			before, start := d.Stats(), time.Now()
			if err := drv.Draw(img.Rect, img, image.Point{}); err != nil {
				t.Fatal(err)
			}
			return time.Since(start), d.Stats().Sub(before)
		}
		full, fs := draw()
		if err := drv.partial(true); err != nil {
			t.Fatal(err)
		}
		img.SetBit(3, 3, !img.BitAt(3, 3))
		part, ps := draw()
		if fs.FullRefreshes != 1 || full != 90*20*time.Millisecond {
			t.Errorf("full refresh: %+v in %v, want 1 full refresh in 1.8s", fs, full)
		}
		if ps.PartialRefreshes != 1 || part != 10*20*time.Millisecond {
			t.Errorf("partial refresh: %+v in %v, want 1 partial refresh in 200ms", ps, part)
		}
		if ps.PartialsSinceFull != 1 {
			t.Errorf("PartialsSinceFull = %d, want 1", ps.PartialsSinceFull)
		}
	})
}

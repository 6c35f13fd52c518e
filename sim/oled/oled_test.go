package oled

import (
	"bytes"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"image"
	"image/png"
	"io"
	"sync"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ssd1306"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// newDriven returns an emulated panel driven by periph's ssd1306 driver over
// SPI.
func newDriven(t testing.TB, w, h int, opts ssd1306.Opts) (*Device, *ssd1306.Dev) {
	t.Helper()
	d := New(Config{W: w, H: h, Logger: testkit.Quiet()})
	opts.W, opts.H = w, h
	dev, err := ssd1306.NewSPI(d.Port(), d.DC(), &opts)
	if err != nil {
		t.Fatalf("ssd1306.NewSPI: %v", err)
	}
	return d, dev
}

// pattern returns a deterministic image with text-like structure, different
// for each seed.
func pattern(r image.Rectangle, seed uint32) *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(r)
	x := seed*2654435761 + 1
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			if x%3 == 0 || px == py {
				img.SetBit(px, py, image1bit.On)
			}
		}
	}
	return img
}

// rotate180 returns img turned upside down.
func rotate180(img *image1bit.VerticalLSB) *image1bit.VerticalLSB {
	r := img.Bounds()
	out := image1bit.NewVerticalLSB(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			out.SetBit(r.Max.X-1-x, r.Max.Y-1-y, img.BitAt(x, y))
		}
	}
	return out
}

// diff describes the first pixel where got and want differ, or "".
func diff(got, want image.Image) string {
	if got.Bounds() != want.Bounds() {
		return fmt.Sprintf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	r := got.Bounds()
	n, first := 0, ""
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			g := image1bit.BitModel.Convert(got.At(x, y))
			w := image1bit.BitModel.Convert(want.At(x, y))
			if g != w {
				if n == 0 {
					first = fmt.Sprintf("(%d,%d) = %v, want %v", x, y, g, w)
				}
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d pixels differ, first %s", n, first)
}

func TestDriverDrawsFrame(t *testing.T) {
	sizes := []image.Point{{128, 64}, {128, 32}, {96, 16}, {64, 48}, {8, 16}}
	for _, size := range sizes {
		for _, rotated := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d/rotated=%t", size.X, size.Y, rotated), func(t *testing.T) {
				opts := ssd1306.Opts{MirrorHorizontal: rotated, MirrorVertical: rotated}
				d, dev := newDriven(t, size.X, size.Y, opts)
				if !d.State().DisplayOn {
					t.Fatal("display off after the driver's init sequence")
				}
				for seed := range uint32(3) {
					img := pattern(dev.Bounds(), seed)
					if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
						t.Fatalf("Draw: %v", err)
					}
					want := img
					if rotated {
						want = rotate180(img)
					}
					if msg := diff(d.Frame(), want); msg != "" {
						t.Fatalf("seed %d: Frame() differs from the drawn image: %s", seed, msg)
					}
				}
				if s := d.Stats(); s.UnknownCommands != 0 || s.InvalidArguments != 0 || s.AbortedCommands != 0 {
					t.Errorf("Stats() = %+v, want no unknown, invalid or aborted commands", s)
				}
			})
		}
	}
}

func TestDriverDrawsGenericImage(t *testing.T) {
	// A non-VerticalLSB source goes through the driver's double buffer.
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	src := image.NewGray(image.Rect(0, 0, 128, 64))
	for i := range src.Pix {
		if i%7 == 0 || i%11 == 0 {
			src.Pix[i] = 0xFF
		}
	}
	if err := dev.Draw(dev.Bounds(), src, image.Point{}); err != nil {
		t.Fatalf("Draw: %v", err)
	}
	if msg := diff(d.Frame(), src); msg != "" {
		t.Fatalf("Frame(): %s", msg)
	}
}

func TestPartialUpdates(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	img := pattern(dev.Bounds(), 1)
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
		t.Fatalf("Draw: %v", err)
	}
	full := d.Stats()

	tests := []struct {
		name          string
		change        func(img *image1bit.VerticalLSB)
		wantData      int
		wantTransfers int
	}{
		{"unchanged", func(*image1bit.VerticalLSB) {}, 0, 0},
		{"one pixel", func(img *image1bit.VerticalLSB) {
			img.SetBit(70, 20, !img.BitAt(70, 20))
		}, 1, 2},
		{"two pixels in one page", func(img *image1bit.VerticalLSB) {
			img.SetBit(10, 40, !img.BitAt(10, 40))
			img.SetBit(19, 41, !img.BitAt(19, 41))
		}, 10, 2},
		{"rectangle over three pages", func(img *image1bit.VerticalLSB) {
			for y := 4; y < 20; y++ {
				for x := 30; x < 50; x++ {
					img.SetBit(x, y, !img.BitAt(x, y))
				}
			}
		}, 3 * 20, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change(img)
			before := d.Stats()
			if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
				t.Fatalf("Draw: %v", err)
			}
			got := d.Stats().Sub(before)
			if got.DataBytes != tt.wantData || got.Transactions != tt.wantTransfers {
				t.Errorf("Draw sent %d data bytes in %d transfers, want %d in %d", got.DataBytes, got.Transactions, tt.wantData, tt.wantTransfers)
			}
			if tt.wantData == 0 && got.Bytes != 0 {
				t.Errorf("unchanged frame sent %d bytes, want 0", got.Bytes)
			}
			if msg := diff(d.Frame(), img); msg != "" {
				t.Errorf("Frame(): %s", msg)
			}
		})
	}
	if full.DataBytes != 128*64/8 {
		t.Errorf("first Draw sent %d data bytes, want a full frame of %d", full.DataBytes, 128*64/8)
	}
}

func TestI2CDriverDrawsFrame(t *testing.T) {
	for _, size := range []image.Point{{128, 64}, {128, 32}} {
		t.Run(fmt.Sprintf("%dx%d", size.X, size.Y), func(t *testing.T) {
			d := New(Config{W: size.X, H: size.Y, Logger: testkit.Quiet()})
			dev, err := ssd1306.NewI2C(d.Bus(), &ssd1306.Opts{W: size.X, H: size.Y})
			if err != nil {
				t.Fatalf("ssd1306.NewI2C: %v", err)
			}
			img := pattern(dev.Bounds(), 7)
			if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
				t.Fatalf("Draw: %v", err)
			}
			if msg := diff(d.Frame(), img); msg != "" {
				t.Fatalf("Frame(): %s", msg)
			}
			before := d.Stats()
			if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
				t.Fatalf("Draw: %v", err)
			}
			if got := d.Stats().Sub(before); got.Bytes != 0 {
				t.Errorf("unchanged frame sent %d bytes, want 0", got.Bytes)
			}
		})
	}
}

func TestI2CWrongAddress(t *testing.T) {
	d := New(Config{Logger: testkit.Quiet()})
	if err := d.Bus().Tx(0x3D, []byte{0x00, 0xAF}, nil); err == nil {
		t.Fatal("Tx(0x3D) = nil, want an error: nothing answers at that address")
	}
	if d.State().DisplayOn {
		t.Error("a write to another address changed the controller")
	}
}

func TestI2CControlBytes(t *testing.T) {
	d := New(Config{Logger: testkit.Quiet()})
	bus := d.Bus()
	// Co set: one command, then another control byte announcing data.
	if err := bus.Tx(DefaultI2CAddress, []byte{0x80, 0xAF, 0x40, 0x01, 0x02}, nil); err != nil {
		t.Fatalf("Tx: %v", err)
	}
	st, s := d.State(), d.Stats()
	if !st.DisplayOn || s.DataBytes != 2 || s.Commands != 1 || s.Bytes != 5 {
		t.Errorf("after Co write: DisplayOn=%t, stats %+v; want on, 1 command, 2 data bytes, 5 bytes", st.DisplayOn, s)
	}
	if ram := d.RAM(); ram[0] != 0x01 || ram[1] != 0x02 {
		t.Errorf("RAM starts % x, want 01 02", ram[:2])
	}
}

func TestHaltAndResume(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	img := pattern(dev.Bounds(), 2)
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Halt(); err != nil {
		t.Fatal(err)
	}
	if d.State().DisplayOn {
		t.Fatal("display on after Halt")
	}
	if msg := diff(d.Frame(), image1bit.NewVerticalLSB(dev.Bounds())); msg != "" {
		t.Fatalf("halted glass not dark: %s", msg)
	}
	if err := dev.SetContrast(0x20); err != nil {
		t.Fatal(err)
	}
	if st := d.State(); !st.DisplayOn || st.Contrast != 0x20 {
		t.Fatalf("after SetContrast: DisplayOn=%t Contrast=%#x, want on and 0x20", st.DisplayOn, st.Contrast)
	}
	if msg := diff(d.Frame(), img); msg != "" {
		t.Fatalf("resumed glass: %s", msg)
	}
	if err := dev.Invert(true); err != nil {
		t.Fatal(err)
	}
	inv := image1bit.NewVerticalLSB(img.Rect)
	for i, b := range img.Pix {
		inv.Pix[i] = ^b
	}
	if msg := diff(d.Frame(), inv); msg != "" {
		t.Fatalf("inverted glass: %s", msg)
	}
}

func TestScrollAccepted(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	steps := []struct {
		name string
		do   func() error
		want bool
	}{
		{"left", func() error { return dev.Scroll(ssd1306.Left, ssd1306.FrameRate2, 0, -1) }, true},
		{"stop", dev.StopScroll, false},
		{"up-right", func() error { return dev.Scroll(ssd1306.UpRight, ssd1306.FrameRate25, 8, 32) }, true},
		{"stop again", dev.StopScroll, false},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := d.State().Scrolling; got != s.want {
			t.Errorf("%s: Scrolling = %t, want %t", s.name, got, s.want)
		}
	}
	if s := d.Stats(); s.UnknownCommands != 0 || s.AbortedCommands != 0 {
		t.Errorf("Stats() = %+v, want scroll commands decoded", s)
	}
}

func TestUnplugAndPlug(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	img := pattern(dev.Bounds(), 3)
	d.Unplug()
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err == nil {
		t.Fatal("Draw on an unplugged panel = nil, want a bus error")
	}
	d.Plug()
	if st := d.State(); st.DisplayOn || st.Addressing != Page {
		t.Fatalf("replugged panel state %+v, want power-on reset", st)
	}
	// A fresh driver initialises the panel again and sends a full frame.
	dev2, err := ssd1306.NewSPI(d.Port(), d.DC(), &ssd1306.DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev2.Draw(dev2.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if msg := diff(d.Frame(), img); msg != "" {
		t.Fatalf("Frame() after replug: %s", msg)
	}
}

func TestResetPin(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	img := pattern(dev.Bounds(), 4)
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	ramBefore := d.RAM()
	if err := d.RES().Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if err := dev.SetContrast(0x10); err != nil {
		t.Fatal(err)
	}
	if err := d.RES().Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	st, s := d.State(), d.Stats()
	if st.DisplayOn || st.Contrast != 0x7F {
		t.Errorf("after reset: DisplayOn=%t Contrast=%#x, want off and 0x7F", st.DisplayOn, st.Contrast)
	}
	if s.IgnoredBytes != 2 {
		t.Errorf("IgnoredBytes = %d, want 2 (the contrast command sent during reset)", s.IgnoredBytes)
	}
	if !bytes.Equal(d.RAM(), ramBefore) {
		t.Error("reset changed GDDRAM")
	}
}

func TestRegister(t *testing.T) {
	d := New(Config{Name: "TESTREG", W: 128, H: 32, Logger: testkit.Quiet()})
	if err := d.Register("TESTREG_SPI"); err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(func() {
		_ = spireg.Unregister("TESTREG_SPI")
		_ = gpioreg.Unregister("TESTREG_DC")
		_ = gpioreg.Unregister("TESTREG_RES")
	})
	if err := d.Register("TESTREG_SPI"); err == nil {
		t.Error("second Register with the same name = nil, want an error")
	}
	port, err := spireg.Open("TESTREG_SPI")
	if err != nil {
		t.Fatalf("spireg.Open: %v", err)
	}
	dc := gpioreg.ByName("TESTREG_DC")
	if dc == nil {
		t.Fatal(`gpioreg.ByName("TESTREG_DC") = nil`)
	}
	dev, err := ssd1306.NewSPI(port, dc, &ssd1306.Opts{W: 128, H: 32})
	if err != nil {
		t.Fatal(err)
	}
	img := pattern(dev.Bounds(), 5)
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if msg := diff(d.Frame(), img); msg != "" {
		t.Fatalf("Frame() through registered port: %s", msg)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Draw(dev.Bounds(), pattern(dev.Bounds(), 6), image.Point{}); err == nil {
		t.Error("Draw through a closed port = nil, want an error")
	}

	if err := d.RegisterI2C("TESTREG_I2C"); err != nil {
		t.Fatalf("RegisterI2C: %v", err)
	}
	t.Cleanup(func() { _ = i2creg.Unregister("TESTREG_I2C") })
	bus, err := i2creg.Open("TESTREG_I2C")
	if err != nil {
		t.Fatalf("i2creg.Open: %v", err)
	}
	defer bus.Close()
}

func TestConnect(t *testing.T) {
	d := New(Config{Logger: testkit.Quiet()})
	tests := []struct {
		name    string
		mode    spi.Mode
		bits    int
		wantErr bool
	}{
		{"mode0", spi.Mode0, 8, false},
		{"mode3", spi.Mode3, 8, false},
		{"mode1", spi.Mode1, 8, true},
		{"3-wire", spi.Mode0, 9, true},
		{"half duplex", spi.Mode0 | spi.HalfDuplex, 8, true},
	}
	for _, tt := range tests {
		_, err := d.Port().Connect(physic.MegaHertz, tt.mode, tt.bits)
		if (err != nil) != tt.wantErr {
			t.Errorf("Connect(%s, %d bits) = %v, want error %t", tt.mode, tt.bits, err, tt.wantErr)
		}
	}
	p := d.Port()
	if _, err := p.Connect(physic.MegaHertz, spi.Mode0, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Connect(physic.MegaHertz, spi.Mode0, 8); err == nil {
		t.Error("second Connect on one handle = nil, want an error")
	}
}

func TestPNG(t *testing.T) {
	d, dev := newDriven(t, 128, 32, ssd1306.DefaultOpts)
	img := pattern(dev.Bounds(), 8)
	if err := dev.Draw(dev.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	for _, scale := range []int{1, 3} {
		var buf bytes.Buffer
		if err := d.PNG(&buf, scale); err != nil {
			t.Fatalf("PNG(%d): %v", scale, err)
		}
		got, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("png.Decode: %v", err)
		}
		if want := image.Rect(0, 0, 128*scale, 32*scale); got.Bounds() != want {
			t.Fatalf("PNG(%d) bounds %v, want %v", scale, got.Bounds(), want)
		}
		for y := range 32 * scale {
			for x := range 128 * scale {
				r, _, _, _ := got.At(x, y).RGBA()
				if lit, want := r > 0, bool(img.BitAt(x/scale, y/scale)); lit != want {
					t.Fatalf("PNG(%d) pixel (%d,%d) lit=%t, want %t", scale, x, y, lit, want)
				}
			}
		}
	}
	for _, bad := range []int{0, -1, 33} {
		if err := d.PNG(io.Discard, bad); err == nil {
			t.Errorf("PNG(%d) = nil, want an error", bad)
		}
	}
}

func TestContrastDimsPNG(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	white := image1bit.NewVerticalLSB(dev.Bounds())
	for i := range white.Pix {
		white.Pix[i] = 0xFF
	}
	if err := dev.Draw(dev.Bounds(), white, image.Point{}); err != nil {
		t.Fatal(err)
	}
	level := func() uint8 {
		var buf bytes.Buffer
		if err := d.PNG(&buf, 1); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return img.(*image.Gray).GrayAt(5, 5).Y
	}
	bright := level()
	if err := dev.SetContrast(0); err != nil {
		t.Fatal(err)
	}
	dim := level()
	if bright != 0xFF || dim == 0 || dim >= bright {
		t.Errorf("lit pixel at contrast 0xFF = %d, at 0 = %d; want 255 and a dimmer but visible level", bright, dim)
	}
}

func TestValidSize(t *testing.T) {
	tests := []struct {
		w, h int
		ok   bool
	}{
		{128, 64, true}, {128, 32, true}, {64, 48, true}, {1, 16, true},
		{0, 64, false}, {129, 64, false}, {128, 8, false}, {128, 72, false}, {128, 20, false},
	}
	for _, tt := range tests {
		if err := ValidSize(tt.w, tt.h); (err == nil) != tt.ok {
			t.Errorf("ValidSize(%d, %d) = %v, want ok %t", tt.w, tt.h, err, tt.ok)
		}
	}
}

func TestConcurrentDrawAndRead(t *testing.T) {
	d, dev := newDriven(t, 128, 64, ssd1306.DefaultOpts)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			_ = d.Frame()
			_ = d.PNG(io.Discard, 1)
			_ = d.Stats()
		}
	})
	for seed := range uint32(20) {
		if err := dev.Draw(dev.Bounds(), pattern(dev.Bounds(), seed), image.Point{}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if msg := diff(d.Frame(), pattern(dev.Bounds(), 19)); msg != "" {
		t.Fatalf("final frame: %s", msg)
	}
}

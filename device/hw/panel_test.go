package hw

import (
	"errors"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"image"
	"strings"
	"sync/atomic"
	"testing"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ssd1306/image1bit"

	"github.com/totpbox/totpbox/sim/oled"
)

var simCount atomic.Int32

// simSSD1306 registers an emulated SSD1306 on a fresh SPI port and I²C bus
// and returns it with a config that opens it over SPI.
func simSSD1306(t testing.TB, w, h int, i2cAddr uint16) (*oled.Device, PanelConfig) {
	t.Helper()
	name := fmt.Sprintf("HWSIM%d", simCount.Add(1))
	d := oled.New(oled.Config{W: w, H: h, Name: name, I2CAddress: i2cAddr, Logger: testkit.Quiet()})
	if err := d.Register(name); err != nil {
		t.Fatal(err)
	}
	if err := d.RegisterI2C(name + "_I2C"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = spireg.Unregister(name)
		_ = i2creg.Unregister(name + "_I2C")
		_ = gpioreg.Unregister(name + "_DC")
		_ = gpioreg.Unregister(name + "_RES")
	})
	return d, PanelConfig{
		Kind:     KindSSD1306,
		Port:     name,
		DC:       name + "_DC",
		Reset:    name + "_RES",
		Width:    w,
		Height:   h,
		Contrast: 255,
	}
}

// testFrame returns a deterministic frame with structure, different per seed.
func testFrame(r image.Rectangle, seed int) *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if (x*7+y*13+seed*5)%11 < 4 || x == seed%r.Dx() {
				img.SetBit(x, y, image1bit.On)
			}
		}
	}
	return img
}

func rotated180(img *image1bit.VerticalLSB) *image1bit.VerticalLSB {
	r := img.Bounds()
	out := image1bit.NewVerticalLSB(r)
	for y := range r.Dy() {
		for x := range r.Dx() {
			out.SetBit(r.Dx()-1-x, r.Dy()-1-y, img.BitAt(x, y))
		}
	}
	return out
}

func inverted(img *image1bit.VerticalLSB) *image1bit.VerticalLSB {
	out := image1bit.NewVerticalLSB(img.Rect)
	for i, b := range img.Pix {
		out.Pix[i] = ^b
	}
	return out
}

func sameFrame(t testing.TB, what string, got, want *image1bit.VerticalLSB) {
	t.Helper()
	if got.Rect != want.Rect {
		t.Fatalf("%s: bounds %v, want %v", what, got.Rect, want.Rect)
	}
	for y := range want.Rect.Dy() {
		for x := range want.Rect.Dx() {
			if got.BitAt(x, y) != want.BitAt(x, y) {
				t.Fatalf("%s: pixel (%d,%d) = %v, want %v", what, x, y, got.BitAt(x, y), want.BitAt(x, y))
			}
		}
	}
}

func TestOpenPanelOnEmulatedBus(t *testing.T) {
	tests := []struct {
		name   string
		w, h   int
		change func(*PanelConfig)
		want   func(*image1bit.VerticalLSB) *image1bit.VerticalLSB
	}{
		{"spi 128x64", 128, 64, func(*PanelConfig) {}, nil},
		{"spi 128x32", 128, 32, func(*PanelConfig) {}, nil},
		{"spi rotated", 128, 64, func(c *PanelConfig) { c.Rotate = 180 }, rotated180},
		{"spi inverted", 128, 64, func(c *PanelConfig) { c.Invert = true }, inverted},
		{"spi without reset pin", 128, 64, func(c *PanelConfig) { c.Reset = NoPin }, nil},
		{"i2c", 128, 64, func(c *PanelConfig) {
			c.Kind, c.I2CBus, c.I2CAddress = KindSSD1306I2C, c.Port+"_I2C", 0x3D
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, cfg := simSSD1306(t, tt.w, tt.h, 0x3D)
			tt.change(&cfg)
			p, err := OpenPanel(cfg)
			if err != nil {
				t.Fatalf("OpenPanel: %v", err)
			}
			defer p.Close()
			if got := p.Bounds(); got != image.Rect(0, 0, tt.w, tt.h) {
				t.Fatalf("Bounds() = %v", got)
			}
			for seed := range 3 {
				img := testFrame(p.Bounds(), seed)
				if err := p.Draw(img); err != nil {
					t.Fatalf("Draw: %v", err)
				}
				want := img
				if tt.want != nil {
					want = tt.want(img)
				}
				sameFrame(t, fmt.Sprintf("frame %d", seed), d.Frame(), want)
			}
			if s := d.Stats(); s.UnknownCommands+s.InvalidArguments+s.AbortedCommands != 0 {
				t.Errorf("emulator stats %+v, want every command understood", s)
			}
		})
	}
}

func TestOpenPanelErrors(t *testing.T) {
	_, good := simSSD1306(t, 128, 64, 0)
	tests := []struct {
		name    string
		change  func(*PanelConfig)
		wantKey string
	}{
		{"unknown port", func(c *PanelConfig) { c.Port = "SPI9.9" }, "panel.port"},
		{"unknown dc pin", func(c *PanelConfig) { c.DC = "GPIO999" }, "panel.dc"},
		{"unknown reset pin", func(c *PanelConfig) { c.Reset = "GPIO998" }, "panel.reset"},
		{"unknown i2c bus", func(c *PanelConfig) { c.Kind, c.I2CBus = KindSSD1306I2C, "I2C9" }, "panel.i2c_bus"},
		{"bad size", func(c *PanelConfig) { c.Height = 72 }, "panel.height"},
		{"unknown kind", func(c *PanelConfig) { c.Kind = "lcd" }, "panel.kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			_, err := OpenPanel(cfg)
			var cerr *ConfigError
			if !errors.As(err, &cerr) || cerr.Key != tt.wantKey {
				t.Fatalf("OpenPanel() = %v, want a *ConfigError for %s", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestPanelHaltWakesOnSameFrame(t *testing.T) {
	d, cfg := simSSD1306(t, 128, 64, 0)
	p, err := OpenPanel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img := testFrame(p.Bounds(), 1)
	if err := p.Draw(img); err != nil {
		t.Fatal(err)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if d.State().DisplayOn {
		t.Fatal("display on after Halt")
	}
	// The same frame again: the driver sends no pixels, the panel must
	// still wake up.
	if err := p.Draw(img); err != nil {
		t.Fatal(err)
	}
	if !d.State().DisplayOn {
		t.Fatal("display still off after Draw")
	}
	sameFrame(t, "after wake", d.Frame(), img)
}

func TestPanelContrast(t *testing.T) {
	d, cfg := simSSD1306(t, 128, 64, 0)
	cfg.Contrast = 0x30
	p, err := OpenPanel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := d.State().Contrast; got != 0x30 {
		t.Errorf("contrast after open = %#x, want the configured 0x30", got)
	}
	if err := p.SetContrast(0x80); err != nil {
		t.Fatal(err)
	}
	if got := d.State().Contrast; got != 0x80 {
		t.Errorf("contrast = %#x, want 0x80", got)
	}
}

func TestRefreshRecoversSilentPowerCycle(t *testing.T) {
	d, cfg := simSSD1306(t, 128, 64, 0)
	p, err := OpenPanel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img := testFrame(p.Bounds(), 2)
	if err := p.Draw(img); err != nil {
		t.Fatal(err)
	}
	// The module loses power and comes back; SPI never tells.
	d.Unplug()
	d.Plug()
	if err := p.Draw(img); err != nil {
		t.Fatal(err)
	}
	if d.State().DisplayOn {
		t.Fatal("test premise: a power-cycled panel stays off until initialised")
	}
	if err := p.Refresh(img); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	sameFrame(t, "after Refresh", d.Frame(), img)
}

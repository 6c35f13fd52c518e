package hw

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ssd1306"
	"periph.io/x/devices/v3/ssd1306/image1bit"
	"periph.io/x/host/v3"
)

// Panel is the screen as the appliance loop sees it. Images follow
// image1bit's colour model (On is white) and are drawn with their bounds'
// minimum at the panel's origin.
type Panel interface {
	// String names the panel in logs.
	String() string
	// Bounds returns the panel's size; Min is {0, 0}.
	Bounds() image.Rectangle
	// Draw shows img, sending only what changed where the panel allows it:
	// the SSD1306 sends the changed rectangle (nothing for an unchanged
	// frame), e-paper makes a partial refresh. It wakes a halted panel.
	Draw(img image.Image) error
	// Refresh shows img by redrawing every pixel: the SSD1306 is initialised
	// again (which also recovers a module that lost power without the bus
	// noticing), e-paper makes a full refresh that clears ghosting.
	Refresh(img image.Image) error
	// SetContrast sets the OLED's brightness; e-paper ignores it.
	SetContrast(level uint8) error
	// Halt blanks the panel (OLED off, e-paper cleared and asleep) until the
	// next Draw or Refresh.
	Halt() error
	// Close releases the port. It does not blank the panel: call Halt first.
	Close() error
}

var (
	hostOnce sync.Once
	hostErr  error
)

// Init loads periph's host drivers (SPI ports, I²C buses, GPIO pins) once;
// later calls return the first call's result. The daemon calls it before
// opening hardware; the simulator registers emulated ports instead.
func Init() error {
	hostOnce.Do(func() {
		if _, err := host.Init(); err != nil {
			hostErr = fmt.Errorf("hw: loading periph host drivers: %w", err)
		}
	})
	return hostErr
}

// pinByName looks up a GPIO pin by the name under key. optional allows "none",
// for which it returns nil.
func pinByName(key, name string, optional bool) (gpio.PinIO, error) {
	if name == NoPin {
		if optional {
			return nil, nil
		}
		return nil, configErr(key, "required")
	}
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, configErr(key, "no GPIO pin named %q; allowed: %s", name, knownPins())
	}
	return p, nil
}

// knownPins lists the GPIO pin names this machine has, shortened, for
// errors: "none found" where periph found no GPIO driver.
func knownPins() string {
	var names []string
	for _, p := range gpioreg.All() {
		names = append(names, p.Name())
	}
	return listNames(names, "none found (is this a Raspberry Pi, and is /dev/gpiochip0 there?)")
}

// knownSPIPorts lists the SPI port names periph registered.
func knownSPIPorts() string {
	var names []string
	for _, r := range spireg.All() {
		names = append(names, r.Name)
	}
	return listNames(names, "none found (is SPI enabled: dtparam=spi=on?)")
}

func listNames(names []string, none string) string {
	switch {
	case len(names) == 0:
		return none
	case len(names) > 12:
		return strings.Join(names[:12], ", ") + fmt.Sprintf(" and %d more", len(names)-12)
	}
	return strings.Join(names, ", ")
}

// OpenPanel opens the panel cfg describes, on ports and pins looked up by
// name in periph's registries, and initialises it. Errors in cfg, unknown
// port and pin names included, are *ConfigError; other errors come from the
// bus. It does not load host drivers: see Init. The panel is not safe for
// concurrent use; wrap it in a Resilient panel, which is.
func OpenPanel(cfg PanelConfig) (Panel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	switch cfg.Kind {
	case KindSSD1306, KindSSD1306I2C:
		return openOLED(cfg)
	default:
		return openEPD(cfg)
	}
}

// oledPanel is an SSD1306 driven by periph's driver.
type oledPanel struct {
	cfg      PanelConfig
	dev      *ssd1306.Dev
	closer   io.Closer
	contrast uint8
	halted   bool
	closed   bool
}

func openOLED(cfg PanelConfig) (*oledPanel, error) {
	p := &oledPanel{cfg: cfg, contrast: uint8(cfg.Contrast)}
	if err := p.init(); err != nil {
		return nil, err
	}
	return p, nil
}

// init opens the port and initialises the controller, replacing any
// previous driver.
func (p *oledPanel) init() error {
	if p.closer != nil {
		p.closer.Close()
		p.closer = nil
	}
	cfg := p.cfg
	opts := ssd1306.Opts{
		W:                cfg.Width,
		H:                cfg.Height,
		Sequential:       cfg.Sequential,
		MirrorHorizontal: cfg.Rotate == 180,
		MirrorVertical:   cfg.Rotate == 180,
	}
	var (
		dev    *ssd1306.Dev
		closer io.Closer
	)
	switch cfg.Kind {
	case KindSSD1306:
		dc, err := pinByName("panel.dc", cfg.DC, false)
		if err != nil {
			return err
		}
		rst, err := pinByName("panel.reset", cfg.Reset, true)
		if err != nil {
			return err
		}
		port, err := spireg.Open(cfg.Port)
		if err != nil {
			return configErr("panel.port", "no SPI port %q; allowed: %s", cfg.Port, knownSPIPorts())
		}
		if rst != nil {
			if err := pulseReset(rst); err != nil {
				port.Close()
				return fmt.Errorf("ssd1306 on %s: reset: %w", cfg.Port, err)
			}
		}
		dev, err = ssd1306.NewSPI(port, dc, &opts)
		if err != nil {
			port.Close()
			return fmt.Errorf("ssd1306 on %s: %w", cfg.Port, err)
		}
		closer = port
	case KindSSD1306I2C:
		bus, err := i2creg.Open(cfg.I2CBus)
		if err != nil {
			return configErr("panel.i2c_bus", "%v", err)
		}
		dev, err = ssd1306.NewI2C(&addrBus{Bus: bus, addr: uint16(cfg.I2CAddress)}, &opts)
		if err != nil {
			bus.Close()
			return fmt.Errorf("ssd1306 at %#x on %s: %w", cfg.I2CAddress, bus, err)
		}
		closer = bus
	}
	err := dev.SetContrast(p.contrast)
	if err == nil && cfg.Invert {
		err = dev.Invert(true)
	}
	if err != nil {
		closer.Close()
		return fmt.Errorf("%s: %w", p, err)
	}
	p.dev, p.closer, p.halted = dev, closer, false
	return nil
}

// pulseReset holds the SSD1306's reset line low for longer than the 3 µs
// the datasheet asks, then lets it come out of reset.
func pulseReset(rst gpio.PinOut) error {
	if err := rst.Out(gpio.Low); err != nil {
		return err
	}
	time.Sleep(time.Millisecond)
	if err := rst.Out(gpio.High); err != nil {
		return err
	}
	time.Sleep(time.Millisecond)
	return nil
}

func (p *oledPanel) String() string {
	if p.cfg.Kind == KindSSD1306I2C {
		return fmt.Sprintf("ssd1306 %dx%d at %#x on I2C %q", p.cfg.Width, p.cfg.Height, p.cfg.I2CAddress, p.cfg.I2CBus)
	}
	return fmt.Sprintf("ssd1306 %dx%d on %s", p.cfg.Width, p.cfg.Height, p.cfg.Port)
}

func (p *oledPanel) Bounds() image.Rectangle { return image.Rect(0, 0, p.cfg.Width, p.cfg.Height) }

var errClosed = errors.New("panel closed")

func (p *oledPanel) Draw(img image.Image) error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if p.closer == nil {
		// A Refresh failed half way: initialise again.
		if err := p.init(); err != nil {
			return err
		}
	}
	if p.halted {
		// The driver skips an unchanged frame, so wake the panel with a
		// command: any command after Halt turns the display back on.
		if err := p.dev.SetContrast(p.contrast); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		p.halted = false
	}
	if err := p.dev.Draw(p.Bounds(), img, img.Bounds().Min); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func (p *oledPanel) Refresh(img image.Image) error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if err := p.init(); err != nil {
		return err
	}
	return p.Draw(img)
}

func (p *oledPanel) SetContrast(level uint8) error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if err := p.dev.SetContrast(level); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	p.contrast, p.halted = level, false
	return nil
}

func (p *oledPanel) Halt() error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if err := p.dev.Halt(); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	p.halted = true
	return nil
}

func (p *oledPanel) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	if p.closer == nil {
		return nil
	}
	return p.closer.Close()
}

// addrBus sends what periph's SSD1306 driver addresses to 0x3C to the
// configured address instead.
type addrBus struct {
	i2c.Bus
	addr uint16
}

func (b *addrBus) Tx(addr uint16, w, r []byte) error {
	if addr == SSD1306Address {
		addr = b.addr
	}
	return b.Bus.Tx(addr, w, r)
}

// toFrame copies img into dst (allocated on first use) at the origin, with
// a fast path for an image1bit frame of the same size.
func toFrame(dst **image1bit.VerticalLSB, bounds image.Rectangle, img image.Image) *image1bit.VerticalLSB {
	if *dst == nil {
		*dst = image1bit.NewVerticalLSB(bounds)
	}
	f := *dst
	if src, ok := img.(*image1bit.VerticalLSB); ok && src.Rect == f.Rect {
		copy(f.Pix, src.Pix)
		return f
	}
	clear(f.Pix)
	draw.Src.Draw(f, f.Rect, img, img.Bounds().Min)
	return f
}

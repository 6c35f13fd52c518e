package hw

import (
	"fmt"
	"image"
	"io"
	"time"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ssd1306/image1bit"
	"periph.io/x/devices/v3/waveshare2in13v2"
	"periph.io/x/devices/v3/waveshare2in13v3"
)

// epdDriver is what epdPanel needs of periph's Waveshare 2.13" drivers,
// whose update-mode types differ between versions.
type epdDriver struct {
	dev     display.Drawer
	init    func() error
	setMode func(partial bool) error
	sleep   func() error
}

// EPDBusyTimeout bounds how long an e-paper panel waits for its BUSY line
// to fall. A full refresh holds it about 2 s (2.5 s for one waveform of the
// V3's LUT); a line still high after this is a controller that hangs or a
// broken wire, and the operation fails (so a Resilient panel reopens it)
// instead of waiting for ever as periph's drivers would.
const EPDBusyTimeout = 10 * time.Second

// busyWatch is the BUSY pin as periph's drivers see it: it reads low, ending
// the driver's wait, once the line has stayed high for longer than limit,
// and remembers that it did.
type busyWatch struct {
	gpio.PinIn
	limit time.Duration
	since time.Time // when this wait first saw the line high; zero when low
	stuck bool
}

// Read implements gpio.PinIn.
func (b *busyWatch) Read() gpio.Level {
	if b.stuck {
		return gpio.Low
	}
	if b.PinIn.Read() == gpio.Low {
		b.since = time.Time{}
		return gpio.Low
	}
	now := time.Now()
	switch {
	case b.since.IsZero():
		b.since = now
	case now.Sub(b.since) >= b.limit:
		b.stuck = true
		return gpio.Low
	}
	return gpio.High
}

// WaitForEdge implements gpio.PinIn, waiting no longer than the time left.
func (b *busyWatch) WaitForEdge(timeout time.Duration) bool {
	if b.stuck {
		return true
	}
	if !b.since.IsZero() {
		left := b.limit - time.Since(b.since)
		if left <= 0 {
			return true
		}
		if timeout < 0 || timeout > left {
			timeout = left
		}
	}
	return b.PinIn.WaitForEdge(timeout)
}

// check turns a wait that gave up into an error; err, from the driver,
// comes first.
func (b *busyWatch) check(err error) error {
	stuck := b.stuck
	b.stuck, b.since = false, time.Time{}
	if err != nil {
		return err
	}
	if stuck {
		return fmt.Errorf("busy line %s still high after %v: the controller does not answer", b.PinIn, b.limit)
	}
	return nil
}

// epdPanel is a Waveshare 2.13" e-paper. It sends only the rectangle that
// changed, refreshes partially, and makes a full refresh on first draw,
// after waking, and every FullRefreshEvery partial refreshes.
type epdPanel struct {
	cfg    PanelConfig
	drv    epdDriver
	busy   *busyWatch
	closer io.Closer

	last     *image1bit.VerticalLSB // what the panel shows; nil when unknown
	next     *image1bit.VerticalLSB
	partial  bool // the driver's current update mode
	partials int  // partial refreshes since the last full one
	asleep   bool
	closed   bool
}

// epdCorner maps rotate to the driver's origin corner: 0 and 180 landscape,
// 90 and 270 portrait.
func epdCorner(rotate int) uint8 {
	switch rotate {
	case 90:
		return uint8(waveshare2in13v2.BottomRight)
	case 180:
		return uint8(waveshare2in13v2.BottomLeft)
	case 270:
		return uint8(waveshare2in13v2.TopLeft)
	}
	return uint8(waveshare2in13v2.TopRight)
}

func openEPD(cfg PanelConfig) (*epdPanel, error) {
	dc, err := pinByName("panel.dc", cfg.DC, false)
	if err != nil {
		return nil, err
	}
	csPin, err := pinByName("panel.cs", cfg.CS, true)
	if err != nil {
		return nil, err
	}
	var cs gpio.PinOut = noPin{}
	if csPin != nil {
		cs = csPin
	}
	rst, err := pinByName("panel.reset", cfg.Reset, false)
	if err != nil {
		return nil, err
	}
	busyPin, err := pinByName("panel.busy", cfg.Busy, false)
	if err != nil {
		return nil, err
	}
	busy := &busyWatch{PinIn: busyPin, limit: EPDBusyTimeout}
	port, err := spireg.Open(cfg.Port)
	if err != nil {
		return nil, configErr("panel.port", "no SPI port %q; allowed: %s", cfg.Port, knownSPIPorts())
	}
	var drv epdDriver
	switch cfg.Kind {
	case KindEPD2in13v2:
		opts := waveshare2in13v2.EPD2in13v2
		opts.Origin = waveshare2in13v2.Corner(epdCorner(cfg.Rotate))
		dev, err := waveshare2in13v2.New(port, dc, cs, rst, busy, &opts)
		if err != nil {
			port.Close()
			return nil, fmt.Errorf("%s on %s: %w", cfg.Kind, cfg.Port, err)
		}
		drv = epdDriver{
			dev:  dev,
			init: dev.Init,
			setMode: func(partial bool) error {
				return dev.SetUpdateMode(waveshare2in13v2.PartialUpdate(partial))
			},
			sleep: dev.Sleep,
		}
	case KindEPD2in13v3:
		opts := waveshare2in13v3.EPD2in13v3
		opts.Origin = waveshare2in13v3.Corner(epdCorner(cfg.Rotate))
		dev, err := waveshare2in13v3.New(port, dc, cs, rst, busy, &opts)
		if err != nil {
			port.Close()
			return nil, fmt.Errorf("%s on %s: %w", cfg.Kind, cfg.Port, err)
		}
		drv = epdDriver{
			dev:  dev,
			init: dev.Init,
			setMode: func(partial bool) error {
				return dev.SetUpdateMode(waveshare2in13v3.PartialUpdate(partial))
			},
			sleep: dev.Sleep,
		}
	}
	p := &epdPanel{cfg: cfg, drv: drv, busy: busy, closer: port, asleep: true}
	if got, want := drv.dev.Bounds(), cfg.Bounds(); got != want {
		port.Close()
		return nil, configErr("panel.width", "%s draws %v, config says %v", cfg.Kind, got.Max, want.Max)
	}
	if err := p.wake(); err != nil {
		port.Close()
		return nil, err
	}
	return p, nil
}

func (p *epdPanel) String() string {
	return fmt.Sprintf("%s %dx%d on %s", p.cfg.Kind, p.cfg.Width, p.cfg.Height, p.cfg.Port)
}

func (p *epdPanel) Bounds() image.Rectangle { return image.Rect(0, 0, p.cfg.Width, p.cfg.Height) }

// wake resets and initialises the controller, which starts in full update
// mode and shows nothing known.
func (p *epdPanel) wake() error {
	if err := p.busy.check(p.drv.init()); err != nil {
		return fmt.Errorf("%s: init: %w", p, err)
	}
	p.asleep, p.partial, p.last = false, false, nil
	return nil
}

// frame copies img into p.next, inverted when the config asks.
func (p *epdPanel) frame(img image.Image) *image1bit.VerticalLSB {
	f := toFrame(&p.next, p.Bounds(), img)
	if p.cfg.Invert {
		for i := range f.Pix {
			f.Pix[i] = ^f.Pix[i]
		}
	}
	return f
}

func (p *epdPanel) Draw(img image.Image) error {
	return p.draw(img, false)
}

func (p *epdPanel) Refresh(img image.Image) error {
	return p.draw(img, true)
}

func (p *epdPanel) draw(img image.Image, full bool) error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if p.asleep {
		if err := p.wake(); err != nil {
			return err
		}
	}
	f := p.frame(img)
	full = full || p.last == nil || p.partials >= p.cfg.FullRefreshEvery
	r := p.Bounds()
	if !full {
		r = changed(p.last, f)
		if r.Empty() {
			return nil
		}
	}
	if p.partial == full {
		if err := p.busy.check(p.drv.setMode(!full)); err != nil {
			p.last = nil
			return fmt.Errorf("%s: update mode: %w", p, err)
		}
		p.partial = !full
	}
	if err := p.busy.check(p.drv.dev.Draw(r, f, r.Min)); err != nil {
		p.last = nil
		return fmt.Errorf("%s: %w", p, err)
	}
	if full {
		p.partials = 0
	} else {
		p.partials++
	}
	if p.last == nil {
		p.last = image1bit.NewVerticalLSB(f.Rect)
	}
	copy(p.last.Pix, f.Pix)
	return nil
}

// SetContrast does nothing: e-paper has no contrast.
func (p *epdPanel) SetContrast(uint8) error { return nil }

// Halt clears the panel to white and puts the controller in deep sleep.
func (p *epdPanel) Halt() error {
	if p.closed {
		return fmt.Errorf("%s: %w", p, errClosed)
	}
	if p.asleep {
		return nil
	}
	white := image1bit.NewVerticalLSB(p.Bounds())
	for i := range white.Pix {
		white.Pix[i] = 0xFF
	}
	if p.cfg.Invert {
		// frame inverts again: the paper ends up white either way.
		clear(white.Pix)
	}
	if err := p.draw(white, true); err != nil {
		return err
	}
	if err := p.busy.check(p.drv.sleep()); err != nil {
		return fmt.Errorf("%s: sleep: %w", p, err)
	}
	p.asleep = true
	return nil
}

func (p *epdPanel) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	return p.closer.Close()
}

// changed returns the rectangle covering every pixel that differs between
// two frames of the same size, in whole 8-row bands.
func changed(a, b *image1bit.VerticalLSB) image.Rectangle {
	var r image.Rectangle
	w := a.Rect.Dx()
	for i := range a.Pix {
		if a.Pix[i] == b.Pix[i] {
			continue
		}
		x, y := i%w, i/w*8
		band := image.Rect(x, y, x+1, min(y+8, a.Rect.Max.Y))
		r = r.Union(band)
	}
	return r
}

// noPin stands for an optional output pin that is not wired.
type noPin struct{}

var _ gpio.PinOut = noPin{}

func (noPin) String() string                        { return "none" }
func (noPin) Name() string                          { return NoPin }
func (noPin) Out(gpio.Level) error                  { return nil }
func (noPin) PWM(gpio.Duty, physic.Frequency) error { return nil }
func (noPin) Halt() error                           { return nil }
func (noPin) Number() int                           { return -1 }
func (noPin) Function() string                      { return "" }

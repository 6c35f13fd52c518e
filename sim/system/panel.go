package system

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"strings"
	"time"

	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/sim/epaper"
	"github.com/totpbox/totpbox/sim/oled"
)

// epdGlassTurn is how far the e-paper glass, read back in its native
// portrait orientation, is turned clockwise to show the picture the way
// panel.rotate 0 mounts it (docs/hardware.md; device/hw's TestEPDOrientation
// checks it through periph's drivers).
const epdGlassTurn = 270

// simPanel is an appliance's panel as the simulator opens it: the hw.Panel
// the loop draws on, opened by name through hw.OpenPanel on an emulated
// controller (an SSD1306, or the 2.13" e-paper's SSD1675B), and the
// controller the glass is read back from. Sizes no emulated controller
// drives (the 2.9" e-paper, which periph has no driver for) are kept in
// memory.
type simPanel struct {
	hw.Panel
	paper bool
	oled  *oled.Device
	epd   *epaper.Device
	mem   *memPanel
}

// fastEPD is the e-paper timing of one-off snapshots, where nobody watches
// the refresh: BUSY falls almost at once.
var fastEPD = epaper.Timing{FramePeriod: time.Microsecond, OTPFull: time.Microsecond, OTPPartial: time.Microsecond,
	SoftReset: time.Microsecond, Analog: time.Microsecond}

// openPanel opens the display size name. timing sets the e-paper
// controller's BUSY durations; its zero value is the real panel's.
func openPanel(name string, size image.Point, timing epaper.Timing) (*simPanel, error) {
	switch {
	case strings.HasPrefix(name, "ssd1306"):
		bus := nextBusName("SIM")
		em := oled.New(oled.Config{W: size.X, H: size.Y, Name: bus})
		if err := em.Register(bus); err != nil {
			return nil, fmt.Errorf("simulator: registering emulated bus: %w", err)
		}
		cfg := hw.PanelConfig{
			Kind: hw.KindSSD1306, Port: bus, DC: em.DC().Name(), Reset: em.RES().Name(),
			Width: size.X, Height: size.Y, Contrast: 255,
		}
		p, err := hw.OpenPanel(cfg)
		if err != nil {
			return nil, err
		}
		return &simPanel{Panel: p, paper: cfg.Paper(), oled: em}, nil
	case size == image.Pt(250, 122):
		bus := nextBusName("SIMEPD")
		em := epaper.New(epaper.Config{Controller: epaper.SSD1675B, Name: bus, Timing: timing})
		if err := em.Register(bus); err != nil {
			return nil, fmt.Errorf("simulator: registering emulated bus: %w", err)
		}
		cfg := hw.PanelConfig{
			Kind: hw.KindEPD2in13v2, Port: bus, DC: em.DC().Name(), CS: em.CS().Name(),
			Reset: em.RST().Name(), Busy: em.BUSY().Name(),
		}
		p, err := hw.OpenPanel(cfg)
		if err != nil {
			return nil, err
		}
		return &simPanel{Panel: p, paper: cfg.Paper(), epd: em}, nil
	}
	m := &memPanel{img: image.NewGray(image.Rectangle{Max: size})}
	return &simPanel{Panel: m, paper: true, mem: m}, nil
}

// frame returns what the glass shows now, read back from the emulated
// controller's RAM (the OLED's GDDRAM, the e-paper's glass as its last
// refresh left it), in the orientation the appliance draws.
func (p *simPanel) frame() image.Image {
	switch {
	case p.oled != nil:
		return p.oled.Frame()
	case p.epd != nil:
		img, _ := epaper.Rotate(p.epd.Frame(), epdGlassTurn)
		return img
	}
	return p.mem.frame()
}

// png writes the frame as PNG, each pixel scale×scale.
func (p *simPanel) png(w io.Writer, scale int) error {
	switch {
	case p.oled != nil:
		return p.oled.PNG(w, scale)
	case p.epd != nil:
		return p.epd.PNG(w, scale, epdGlassTurn)
	}
	return png.Encode(w, scaleImage(p.mem.frame(), scale))
}

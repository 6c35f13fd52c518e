package epaper

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"

	"github.com/totpbox/totpbox/sim/spiport"
)

// Port returns a new handle to the SPI port the controller sits on, in
// 4-wire mode: each transfer is decoded as commands when DC is low and as
// parameters or RAM data when it is high. Like a spidev handle, it can be
// connected once; open another one to connect again.
func (d *Device) Port() spi.PortCloser { return spiport.New(d.spiSpec()) }

// spiSpec is the controller's SPI port: mode 0, 8 bits per word in 4-wire
// mode, at up to 20 MHz for writes; reads are not emulated.
func (d *Device) spiSpec() spiport.Spec {
	return spiport.Spec{
		Prefix: "epaper", Name: d.name,
		Modes: []spi.Mode{spi.Mode0}, ModeNames: "Mode0", MaxSpeed: 20 * physic.MegaHertz,
		Duplex: conn.Half, Transfer: d.spiTransfer,
	}
}

// spiTransfer decodes one SPI transfer as commands or data, by DC, when
// CS selects the controller; unselected, the bytes are counted and
// ignored.
func (d *Device) spiTransfer(w []byte) error {
	data := d.dc.Read() == gpio.High
	selected := d.cs.Read() == gpio.Low
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unplug {
		return fmt.Errorf("epaper: %s: %w", d.name, errUnplugged)
	}
	d.stats.Transactions++
	if !selected {
		d.stats.Bytes += len(w)
		d.stats.IgnoredBytes += len(w)
		return nil
	}
	d.decode(w, data)
	return nil
}

// Register registers the controller's SPI port under name with spireg, and
// its DC, CS, RST and BUSY pins under their names with gpioreg, so that code
// opening ports and pins by name (spireg.Open, gpioreg.ByName) finds the
// emulator.
func (d *Device) Register(name string) error {
	return spiport.Register(name, d.spiSpec(), d.dc, d.cs, d.rst, d.busy)
}

// Unregister removes what Register registered.
func (d *Device) Unregister(name string) error {
	err := spireg.Unregister(name)
	for _, p := range []gpio.PinIO{d.dc, d.cs, d.rst, d.busy} {
		err = errors.Join(err, gpioreg.Unregister(p.Name()))
	}
	return err
}

// errUnplugged is the bus error while the panel is unplugged.
var errUnplugged = errors.New("no panel on the bus")

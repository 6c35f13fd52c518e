package oled

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/totpbox/totpbox/sim/spiport"
)

// Port returns a new handle to the SPI port the controller sits on, in
// 4-wire mode: each transfer is decoded as commands when DC is low and as
// GDDRAM data when it is high. Like a spidev handle, it can be connected
// once; open another one to connect again.
func (d *Device) Port() spi.PortCloser { return spiport.New(d.spiSpec()) }

// spiSpec is the SSD1306's SPI port: mode 0 or 3, 8 bits per word in
// 4-wire mode, full duplex (MISO reads zeros).
func (d *Device) spiSpec() spiport.Spec {
	return spiport.Spec{
		Prefix: "oled", Name: d.name,
		Modes: []spi.Mode{spi.Mode0, spi.Mode3}, ModeNames: "Mode0, Mode3",
		NoHalfDuplex: true, Duplex: conn.Full, ReadHint: "; full duplex needs equal lengths",
		Transfer: d.spiTransfer,
	}
}

// spiTransfer decodes one SPI transfer as commands or data, by DC.
func (d *Device) spiTransfer(w []byte) error {
	data := d.dc.Read() == gpio.High
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unplug {
		return fmt.Errorf("oled: %s: %w", d.name, errUnplugged)
	}
	d.stats.Transactions++
	d.decode(w, data)
	return nil
}

// Register registers the controller's SPI port under name with spireg, and
// its DC and RES pins under their names with gpioreg, so that code opening
// ports and pins by name (spireg.Open, gpioreg.ByName) finds the emulator.
func (d *Device) Register(name string) error {
	return spiport.Register(name, d.spiSpec(), d.dc, d.res)
}

// RegisterI2C registers the controller's I²C bus under name with i2creg, and
// its DC and RES pins with gpioreg.
func (d *Device) RegisterI2C(name string) error {
	if err := i2creg.Register(name, nil, -1, func() (i2c.BusCloser, error) { return d.Bus(), nil }); err != nil {
		return err
	}
	return spiport.RegisterPins(d.dc, d.res)
}

// errUnplugged is the bus error while the panel is unplugged.
var errUnplugged = errors.New("no panel on the bus")

// Bus returns a new handle to the I²C bus the controller sits on. Each write
// starts with a control byte: 0x00 for a stream of commands, 0x40 for a
// stream of GDDRAM data (Co, bit 7, set means one byte then another control
// byte).
func (d *Device) Bus() i2c.BusCloser {
	return &i2cBus{d: d}
}

type i2cBus struct {
	d *Device

	mu     sync.Mutex
	closed bool
}

func (b *i2cBus) String() string { return b.d.name }

// Close implements io.Closer.
func (b *i2cBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("oled: %s: bus already closed", b.d.name)
	}
	b.closed = true
	return nil
}

// SetSpeed implements i2c.Bus.
func (b *i2cBus) SetSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("oled: %s: invalid speed %s", b.d.name, f)
	}
	return nil
}

// Tx implements i2c.Bus.
func (b *i2cBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	d := b.d
	if closed {
		return fmt.Errorf("oled: %s: bus closed", d.name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unplug || addr != d.i2cAddr {
		return fmt.Errorf("oled: %s: no device answers at address %#x", d.name, addr)
	}
	if len(r) != 0 {
		// Status read: bit 6 is set while the display is off.
		clear(r)
		if !d.st.DisplayOn {
			r[0] = 0x40
		}
	}
	if len(w) == 0 {
		return nil
	}
	d.stats.Transactions++
	d.stats.Bytes++ // the first control byte
	rest := w
	for len(rest) > 0 {
		ctrl := rest[0]
		rest = rest[1:]
		data := ctrl&0x40 != 0
		if ctrl&0x80 == 0 {
			// Co clear: everything that follows is of this kind.
			d.decode(rest, data)
			return nil
		}
		// Co set: one byte, then another control byte.
		if len(rest) == 0 {
			return nil
		}
		d.decode(rest[:1], data)
		rest = rest[1:]
		if len(rest) > 0 {
			d.stats.Bytes++ // the next control byte
		}
	}
	return nil
}

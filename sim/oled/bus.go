package oled

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
)

// Port returns a new handle to the SPI port the controller sits on, in
// 4-wire mode: each transfer is decoded as commands when DC is low and as
// GDDRAM data when it is high. Like a spidev handle, it can be connected
// once; open another one to connect again.
func (d *Device) Port() spi.PortCloser {
	return &spiPort{d: d}
}

// Register registers the controller's SPI port under name with spireg, and
// its DC and RES pins under their names with gpioreg, so that code opening
// ports and pins by name (spireg.Open, gpioreg.ByName) finds the emulator.
func (d *Device) Register(name string) error {
	if err := spireg.Register(name, nil, -1, func() (spi.PortCloser, error) { return d.Port(), nil }); err != nil {
		return err
	}
	return d.registerPins()
}

// RegisterI2C registers the controller's I²C bus under name with i2creg, and
// its DC and RES pins with gpioreg.
func (d *Device) RegisterI2C(name string) error {
	if err := i2creg.Register(name, nil, -1, func() (i2c.BusCloser, error) { return d.Bus(), nil }); err != nil {
		return err
	}
	return d.registerPins()
}

func (d *Device) registerPins() error {
	for _, p := range []gpio.PinIO{d.dc, d.res} {
		if gpioreg.ByName(p.Name()) == p {
			continue
		}
		if err := gpioreg.Register(p); err != nil {
			return err
		}
	}
	return nil
}

// errUnplugged is the bus error while the panel is unplugged.
var errUnplugged = errors.New("no panel on the bus")

type spiPort struct {
	d *Device

	mu        sync.Mutex
	connected bool
	closed    bool
	limit     physic.Frequency
}

func (p *spiPort) String() string { return p.d.name }

// Close implements io.Closer.
func (p *spiPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("oled: %s: port already closed", p.d.name)
	}
	p.closed = true
	return nil
}

// LimitSpeed implements spi.PortCloser.
func (p *spiPort) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("oled: %s: invalid speed %s", p.d.name, f)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = f
	return nil
}

// Connect implements spi.Port. The SSD1306 speaks SPI mode 0 or 3 with 8
// bits per word in 4-wire mode; 3-wire mode (9 bits) is not emulated.
func (p *spiPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, fmt.Errorf("oled: %s: port closed", p.d.name)
	case p.connected:
		return nil, fmt.Errorf("oled: %s: Connect called twice", p.d.name)
	case bits != 8:
		return nil, fmt.Errorf("oled: %s: %d bits per word not supported; allowed: 8 (4-wire SPI)", p.d.name, bits)
	case mode&spi.Mode3 != spi.Mode0 && mode&spi.Mode3 != spi.Mode3:
		return nil, fmt.Errorf("oled: %s: %s not supported; allowed: Mode0, Mode3", p.d.name, mode)
	case mode&spi.HalfDuplex != 0:
		return nil, fmt.Errorf("oled: %s: half duplex not supported", p.d.name)
	}
	p.connected = true
	return &spiConn{p: p}, nil
}

type spiConn struct {
	p *spiPort
}

func (c *spiConn) String() string { return c.p.d.name }

// Duplex implements conn.Conn.
func (c *spiConn) Duplex() conn.Duplex { return conn.Full }

// Tx implements conn.Conn. The controller never drives MISO: r, when given,
// reads back zeros.
func (c *spiConn) Tx(w, r []byte) error {
	if len(r) != 0 && len(r) != len(w) {
		return fmt.Errorf("oled: %s: read buffer of %d bytes for %d bytes written; full duplex needs equal lengths", c.p.d.name, len(r), len(w))
	}
	c.p.mu.Lock()
	closed := c.p.closed
	c.p.mu.Unlock()
	if closed {
		return fmt.Errorf("oled: %s: port closed", c.p.d.name)
	}
	clear(r)
	d := c.p.d
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

// TxPackets implements spi.Conn: each packet is one transfer.
func (c *spiConn) TxPackets(pkts []spi.Packet) error {
	for _, p := range pkts {
		if p.BitsPerWord != 0 && p.BitsPerWord != 8 {
			return fmt.Errorf("oled: %s: %d bits per word not supported; allowed: 8", c.p.d.name, p.BitsPerWord)
		}
		if err := c.Tx(p.W, p.R); err != nil {
			return err
		}
	}
	return nil
}

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

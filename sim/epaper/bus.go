package epaper

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
)

// Port returns a new handle to the SPI port the controller sits on, in
// 4-wire mode: each transfer is decoded as commands when DC is low and as
// parameters or RAM data when it is high. Like a spidev handle, it can be
// connected once; open another one to connect again.
func (d *Device) Port() spi.PortCloser {
	return &spiPort{d: d}
}

// Register registers the controller's SPI port under name with spireg, and
// its DC, CS, RST and BUSY pins under their names with gpioreg, so that code
// opening ports and pins by name (spireg.Open, gpioreg.ByName) finds the
// emulator.
func (d *Device) Register(name string) error {
	if err := spireg.Register(name, nil, -1, func() (spi.PortCloser, error) { return d.Port(), nil }); err != nil {
		return err
	}
	for _, p := range []gpio.PinIO{d.dc, d.cs, d.rst, d.busy} {
		if gpioreg.ByName(p.Name()) == p {
			continue
		}
		if err := gpioreg.Register(p); err != nil {
			return err
		}
	}
	return nil
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

type spiPort struct {
	d *Device

	mu        sync.Mutex
	connected bool
	closed    bool
}

func (p *spiPort) String() string { return p.d.name }

// Close implements io.Closer.
func (p *spiPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("epaper: %s: port already closed", p.d.name)
	}
	p.closed = true
	return nil
}

// LimitSpeed implements spi.PortCloser.
func (p *spiPort) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("epaper: %s: invalid speed %s", p.d.name, f)
	}
	return nil
}

// Connect implements spi.Port. The controller speaks SPI mode 0 with 8
// bits per word in 4-wire mode, at up to 20 MHz for writes; 3-wire mode (9
// bits) is not emulated.
func (p *spiPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, fmt.Errorf("epaper: %s: port closed", p.d.name)
	case p.connected:
		return nil, fmt.Errorf("epaper: %s: Connect called twice", p.d.name)
	case bits != 8:
		return nil, fmt.Errorf("epaper: %s: %d bits per word not supported; allowed: 8 (4-wire SPI)", p.d.name, bits)
	case mode&spi.Mode3 != spi.Mode0:
		return nil, fmt.Errorf("epaper: %s: %s not supported; allowed: Mode0", p.d.name, mode)
	case f > 20*physic.MegaHertz:
		return nil, fmt.Errorf("epaper: %s: %s too fast; allowed: up to 20MHz", p.d.name, f)
	}
	p.connected = true
	return &spiConn{p: p}, nil
}

type spiConn struct {
	p *spiPort
}

func (c *spiConn) String() string { return c.p.d.name }

// Duplex implements conn.Conn.
func (c *spiConn) Duplex() conn.Duplex { return conn.Half }

// Tx implements conn.Conn. Reads are not emulated: r, when given, reads
// back zeros.
func (c *spiConn) Tx(w, r []byte) error {
	if len(r) != 0 && len(r) != len(w) {
		return fmt.Errorf("epaper: %s: read buffer of %d bytes for %d bytes written", c.p.d.name, len(r), len(w))
	}
	c.p.mu.Lock()
	closed := c.p.closed
	c.p.mu.Unlock()
	if closed {
		return fmt.Errorf("epaper: %s: port closed", c.p.d.name)
	}
	clear(r)
	d := c.p.d
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

// TxPackets implements spi.Conn: each packet is one transfer.
func (c *spiConn) TxPackets(pkts []spi.Packet) error {
	for _, p := range pkts {
		if p.BitsPerWord != 0 && p.BitsPerWord != 8 {
			return fmt.Errorf("epaper: %s: %d bits per word not supported; allowed: 8", c.p.d.name, p.BitsPerWord)
		}
		if err := c.Tx(p.W, p.R); err != nil {
			return err
		}
	}
	return nil
}

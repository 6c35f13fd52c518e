// Package spiport is the host side of a 4-wire SPI port as periph's
// spi.PortCloser, under both panel emulators (sim/oled, sim/epaper): it
// checks what the controller accepts (8 bits per word, its modes and
// speed), connects once per handle like spidev, refuses transfers once
// closed, reads back zeros, and hands each transfer's bytes to the
// controller's decoder.
package spiport

import (
	"fmt"
	"slices"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
)

// Spec is what a controller accepts on its SPI port.
type Spec struct {
	// Prefix and Name begin every error: "oled: panel0: …".
	Prefix, Name string
	// Modes are the SPI modes (clock polarity and phase) it speaks; their
	// names, as the error lists them, are in ModeNames.
	Modes     []spi.Mode
	ModeNames string
	// MaxSpeed is the fastest clock it accepts; zero means any.
	MaxSpeed physic.Frequency
	// NoHalfDuplex refuses a connection asking for half duplex.
	NoHalfDuplex bool
	// Duplex is what the connection reports.
	Duplex conn.Duplex
	// ReadHint ends the error of a read buffer that does not match the
	// write ("; full duplex needs equal lengths"); may be empty.
	ReadHint string
	// Transfer decodes the bytes of one transfer; its error is the
	// transfer's.
	Transfer func(w []byte) error
}

// New returns a new handle to the port s describes. Like a spidev handle,
// it can be connected once; open another one to connect again.
func New(s Spec) spi.PortCloser { return &port{s: s} }

// Register registers the port under name with spireg, opening a new
// handle each time, and pins under their names with gpioreg (a pin
// already registered as itself is left as it is).
func Register(name string, s Spec, pins ...gpio.PinIO) error {
	if err := spireg.Register(name, nil, -1, func() (spi.PortCloser, error) { return New(s), nil }); err != nil {
		return err
	}
	return RegisterPins(pins...)
}

// RegisterPins registers pins under their names with gpioreg, leaving a
// pin already registered as itself as it is.
func RegisterPins(pins ...gpio.PinIO) error {
	for _, p := range pins {
		if gpioreg.ByName(p.Name()) == p {
			continue
		}
		if err := gpioreg.Register(p); err != nil {
			return err
		}
	}
	return nil
}

type port struct {
	s Spec

	mu        sync.Mutex
	connected bool
	closed    bool
}

func (p *port) String() string { return p.s.Name }

func (p *port) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s: "+format, append([]any{p.s.Prefix, p.s.Name}, args...)...)
}

// Close implements io.Closer.
func (p *port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.errorf("port already closed")
	}
	p.closed = true
	return nil
}

// LimitSpeed implements spi.PortCloser.
func (p *port) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return p.errorf("invalid speed %s", f)
	}
	return nil
}

// Connect implements spi.Port: 8 bits per word in 4-wire mode (3-wire
// mode, 9 bits, is not emulated), in one of the Spec's modes and no
// faster than its MaxSpeed.
func (p *port) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, p.errorf("port closed")
	case p.connected:
		return nil, p.errorf("Connect called twice")
	case bits != 8:
		return nil, p.errorf("%d bits per word not supported; allowed: 8 (4-wire SPI)", bits)
	case !slices.Contains(p.s.Modes, mode&spi.Mode3):
		return nil, p.errorf("%s not supported; allowed: %s", mode, p.s.ModeNames)
	case p.s.NoHalfDuplex && mode&spi.HalfDuplex != 0:
		return nil, p.errorf("half duplex not supported")
	case p.s.MaxSpeed > 0 && f > p.s.MaxSpeed:
		return nil, p.errorf("%s too fast; allowed: up to %s", f, p.s.MaxSpeed)
	}
	p.connected = true
	return &connection{p: p}, nil
}

type connection struct{ p *port }

func (c *connection) String() string { return c.p.s.Name }

// Duplex implements conn.Conn.
func (c *connection) Duplex() conn.Duplex { return c.p.s.Duplex }

// Tx implements conn.Conn. The controller never drives MISO: r, when
// given, reads back zeros.
func (c *connection) Tx(w, r []byte) error {
	if len(r) != 0 && len(r) != len(w) {
		return c.p.errorf("read buffer of %d bytes for %d bytes written%s", len(r), len(w), c.p.s.ReadHint)
	}
	c.p.mu.Lock()
	closed := c.p.closed
	c.p.mu.Unlock()
	if closed {
		return c.p.errorf("port closed")
	}
	clear(r)
	return c.p.s.Transfer(w)
}

// TxPackets implements spi.Conn: each packet is one transfer.
func (c *connection) TxPackets(pkts []spi.Packet) error {
	for _, p := range pkts {
		if p.BitsPerWord != 0 && p.BitsPerWord != 8 {
			return c.p.errorf("%d bits per word not supported; allowed: 8", p.BitsPerWord)
		}
		if err := c.Tx(p.W, p.R); err != nil {
			return err
		}
	}
	return nil
}

package hw

import (
	"fmt"
	"image"
	"sync"
	"testing"
	"testing/synctest"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// epdBus records what a driver sends to an e-paper controller: each command
// with the data that follows it.
type epdBus struct {
	dc *gpiotest.Pin

	mu   sync.Mutex
	cmds []epdCmd
}

type epdCmd struct {
	op   byte
	data []byte
}

func (b *epdBus) String() string                                            { return "epdbus" }
func (b *epdBus) Close() error                                              { return nil }
func (b *epdBus) LimitSpeed(physic.Frequency) error                         { return nil }
func (b *epdBus) Duplex() conn.Duplex                                       { return conn.Full }
func (b *epdBus) TxPackets(p []spi.Packet) error                            { return fmt.Errorf("not used") }
func (b *epdBus) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) { return b, nil }
func (b *epdBus) Tx(w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dc.Read() == gpio.Low {
		for _, op := range w {
			b.cmds = append(b.cmds, epdCmd{op: op})
		}
		return nil
	}
	if len(b.cmds) == 0 {
		return fmt.Errorf("data before any command")
	}
	last := &b.cmds[len(b.cmds)-1]
	last.data = append(last.data, w...)
	return nil
}

// take returns the commands recorded since the last call.
func (b *epdBus) take() []epdCmd {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cmds
	b.cmds = nil
	return c
}

// summary condenses a command log: the VCOM value (0x55 full, 0x24 partial)
// when the update mode is set, the bytes written to the black/white RAM,
// and whether the panel was reset, refreshed or put to sleep.
type summary struct {
	reset     bool
	mode      string // "full", "partial" or "" when unchanged
	ramBytes  int
	refreshed bool
	slept     bool
}

func summarize(cmds []epdCmd) summary {
	var s summary
	for _, c := range cmds {
		switch c.op {
		case 0x12:
			s.reset = true
		case 0x2C:
			switch c.data[0] {
			case 0x55:
				s.mode = "full"
			case 0x24:
				s.mode = "partial"
			}
		case 0x24:
			s.ramBytes += len(c.data)
		case 0x22:
			if c.data[0]&0x04 != 0 {
				s.refreshed = true
			}
		case 0x10:
			s.slept = true
		}
	}
	return s
}

var epdCount int

// simEPD registers a recording SPI port and gpiotest pins, and returns a
// config for an e-paper on them.
func simEPD(t *testing.T, kind string) (*epdBus, PanelConfig) {
	t.Helper()
	epdCount++
	name := fmt.Sprintf("EPD%d", epdCount)
	pin := func(suffix string) *gpiotest.Pin {
		p := &gpiotest.Pin{N: name + suffix, Num: -1, EdgesChan: make(chan gpio.Level, 1)}
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gpioreg.Unregister(p.N) })
		return p
	}
	bus := &epdBus{dc: pin("_DC")}
	pin("_CS")
	pin("_RST")
	pin("_BUSY") // low: never busy
	if err := spireg.Register(name, nil, -1, func() (spi.PortCloser, error) { return bus, nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spireg.Unregister(name) })
	return bus, PanelConfig{
		Kind: kind, Port: name, DC: name + "_DC", CS: name + "_CS", Reset: name + "_RST", Busy: name + "_BUSY",
		FullRefreshEvery: 2,
	}
}

func TestEPDRefreshModes(t *testing.T) {
	for _, kind := range []string{KindEPD2in13v2, KindEPD2in13v3} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bus, cfg := simEPD(t, kind)
				p, err := OpenPanel(cfg)
				if err != nil {
					t.Fatalf("OpenPanel: %v", err)
				}
				defer p.Close()
				if got := p.Bounds(); got != image.Rect(0, 0, 250, 122) {
					t.Fatalf("Bounds() = %v, want 250x122", got)
				}
				if s := summarize(bus.take()); !s.reset {
					t.Errorf("open: %+v, want a reset", s)
				}

				img := testFrame(p.Bounds(), 1)
				small := image1bit.NewVerticalLSB(img.Rect)
				copy(small.Pix, img.Pix)
				for y := 10; y < 20; y++ {
					small.SetBit(100, y, !small.BitAt(100, y))
				}
				fullRAM := 16 * 250 // 122 bits rounded up to 16 bytes, 250 lines

				type want struct {
					summary
					ramMax int // bytes written to RAM: between 1 and ramMax, or 0
				}
				one := 3 // one RAM line: the 16 rows that changed span 2 or 3 bytes
				steps := []struct {
					name string
					do   func() error
					want want
				}{
					{"first draw", func() error { return p.Draw(img) }, want{summary{refreshed: true}, fullRAM}},
					{"unchanged", func() error { return p.Draw(img) }, want{summary{}, 0}},
					{"small change", func() error { return p.Draw(small) }, want{summary{mode: "partial", refreshed: true}, one}},
					{"change back", func() error { return p.Draw(img) }, want{summary{refreshed: true}, one}},
					{"full every 2", func() error { return p.Draw(small) }, want{summary{mode: "full", refreshed: true}, fullRAM}},
					{"refresh", func() error { return p.Refresh(small) }, want{summary{refreshed: true}, fullRAM}},
					{"halt", p.Halt, want{summary{refreshed: true, slept: true}, fullRAM}},
					{"draw wakes", func() error { return p.Draw(img) }, want{summary{reset: true, mode: "full", refreshed: true}, fullRAM}},
				}
				for _, s := range steps {
					if err := s.do(); err != nil {
						t.Fatalf("%s: %v", s.name, err)
					}
					got := summarize(bus.take())
					ram := got.ramBytes
					got.ramBytes = 0
					if got != s.want.summary {
						t.Errorf("%s: %+v, want %+v", s.name, got, s.want.summary)
					}
					switch {
					case s.want.ramMax == fullRAM && ram != fullRAM:
						t.Errorf("%s: wrote %d bytes of RAM, want the full %d", s.name, ram, fullRAM)
					case s.want.ramMax == 0 && ram != 0:
						t.Errorf("%s: wrote %d bytes of RAM, want none", s.name, ram)
					case s.want.ramMax > 0 && (ram < 1 || ram > s.want.ramMax):
						t.Errorf("%s: wrote %d bytes of RAM, want 1 to %d", s.name, ram, s.want.ramMax)
					}
				}
			})
		})
	}
}

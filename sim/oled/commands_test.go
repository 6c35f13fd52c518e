package oled

import (
	"github.com/totpbox/totpbox/internal/testkit"
	"reflect"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// bus drives the emulator the way a 4-wire SPI driver does.
type bus struct {
	t *testing.T
	d *Device
	c spi.Conn
}

func newBus(t *testing.T, opts Config) *bus {
	t.Helper()
	opts.Logger = testkit.Quiet()
	d := New(opts)
	c, err := d.Port().Connect(3300*physic.KiloHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return &bus{t: t, d: d, c: c}
}

func (b *bus) cmd(w ...byte) {
	b.t.Helper()
	if err := b.d.DC().Out(gpio.Low); err != nil {
		b.t.Fatal(err)
	}
	if err := b.c.Tx(w, nil); err != nil {
		b.t.Fatalf("Tx(% x): %v", w, err)
	}
}

func (b *bus) data(w ...byte) {
	b.t.Helper()
	if err := b.d.DC().Out(gpio.High); err != nil {
		b.t.Fatal(err)
	}
	if err := b.c.Tx(w, nil); err != nil {
		b.t.Fatalf("Tx(% x): %v", w, err)
	}
}

// periphInit is the init sequence periph's ssd1306 driver sends for a 128x64
// panel with DefaultOpts, as recorded from the bus.
var periphInit = []byte{
	0xAE, 0xD3, 0x00, 0x40, 0xA1, 0xC8, 0xDA, 0x12, 0x81, 0xFF, 0xA4, 0xA6,
	0xD5, 0xF0, 0x8D, 0x14, 0xD9, 0xF1, 0xDB, 0x40, 0x2E, 0xA8, 0x3F,
	0x20, 0x00, 0x21, 0x00, 0x7F, 0x22, 0x00, 0x07, 0xAF,
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name string
		cmds [][]byte // each slice is one transfer with D/C low
		want func(st *State)
		// Counters expected in Stats.
		commands, unknown, invalid int
	}{
		{"periph init", [][]byte{periphInit}, func(st *State) {
			st.DisplayOn = true
			st.SegmentRemap = true
			st.COMScanReversed = true
			st.COMPins = 0x12
			st.Contrast = 0xFF
			st.ClockDivide = 0xF0
			st.ChargePump = true
			st.Precharge = 0xF1
			st.VCOMHDeselect = 0x40
			st.Multiplex = 64
			st.Addressing = Horizontal
			st.ColumnStart, st.ColumnEnd = 0, 127
			st.PageStart, st.PageEnd = 0, 7
		}, 19, 0, 0},
		{"display on", [][]byte{{0xAF}}, func(st *State) { st.DisplayOn = true }, 1, 0, 0},
		{"display on then off", [][]byte{{0xAF, 0xAE}}, func(st *State) {}, 2, 0, 0},
		{"contrast", [][]byte{{0x81, 0x42}}, func(st *State) { st.Contrast = 0x42 }, 1, 0, 0},
		{"contrast split across transfers", [][]byte{{0x81}, {0x42}}, func(st *State) { st.Contrast = 0x42 }, 1, 0, 0},
		{"invert", [][]byte{{0xA7}}, func(st *State) { st.Inverted = true }, 1, 0, 0},
		{"invert then normal", [][]byte{{0xA7, 0xA6}}, func(st *State) {}, 2, 0, 0},
		{"entire display on", [][]byte{{0xA5}}, func(st *State) { st.EntireDisplayOn = true }, 1, 0, 0},
		{"segment remap", [][]byte{{0xA1}}, func(st *State) { st.SegmentRemap = true }, 1, 0, 0},
		{"COM scan reversed", [][]byte{{0xC8}}, func(st *State) { st.COMScanReversed = true }, 1, 0, 0},
		{"multiplex 32", [][]byte{{0xA8, 0x1F}}, func(st *State) { st.Multiplex = 32 }, 1, 0, 0},
		{"multiplex too low", [][]byte{{0xA8, 0x07}}, func(st *State) {}, 1, 0, 1},
		{"start line", [][]byte{{0x48}}, func(st *State) { st.StartLine = 8 }, 1, 0, 0},
		{"display offset", [][]byte{{0xD3, 0x10}}, func(st *State) { st.DisplayOffset = 16 }, 1, 0, 0},
		{"COM pins", [][]byte{{0xDA, 0x02}}, func(st *State) { st.COMPins = 0x02 }, 1, 0, 0},
		{"clock divide", [][]byte{{0xD5, 0xF0}}, func(st *State) { st.ClockDivide = 0xF0 }, 1, 0, 0},
		{"precharge", [][]byte{{0xD9, 0xF1}}, func(st *State) { st.Precharge = 0xF1 }, 1, 0, 0},
		{"VCOMH", [][]byte{{0xDB, 0x40}}, func(st *State) { st.VCOMHDeselect = 0x40 }, 1, 0, 0},
		{"charge pump on", [][]byte{{0x8D, 0x14}}, func(st *State) { st.ChargePump = true }, 1, 0, 0},
		{"charge pump off", [][]byte{{0x8D, 0x14, 0x8D, 0x10}}, func(st *State) {}, 2, 0, 0},
		{"horizontal addressing", [][]byte{{0x20, 0x00}}, func(st *State) { st.Addressing = Horizontal }, 1, 0, 0},
		{"vertical addressing", [][]byte{{0x20, 0x01}}, func(st *State) { st.Addressing = Vertical }, 1, 0, 0},
		{"addressing mode 3 rejected", [][]byte{{0x20, 0x03}}, func(st *State) {}, 1, 0, 1},
		{"column window", [][]byte{{0x21, 0x10, 0x20}}, func(st *State) {
			st.ColumnStart, st.ColumnEnd, st.Column = 16, 32, 16
		}, 1, 0, 0},
		{"page window", [][]byte{{0x22, 0x02, 0x05}}, func(st *State) {
			st.PageStart, st.PageEnd, st.Page = 2, 5, 2
		}, 1, 0, 0},
		{"page start", [][]byte{{0xB3}}, func(st *State) { st.Page = 3 }, 1, 0, 0},
		{"column nibbles", [][]byte{{0x05, 0x14}}, func(st *State) { st.Column = 0x45 }, 2, 0, 0},
		{"horizontal scroll", [][]byte{{0x26, 0x00, 0x00, 0x07, 0x07, 0x00, 0xFF, 0x2F}}, func(st *State) { st.Scrolling = true }, 2, 0, 0},
		{"vertical scroll", [][]byte{{0xA3, 0x00, 0x40, 0x29, 0x00, 0x00, 0x07, 0x07, 0x01, 0x2F}}, func(st *State) { st.Scrolling = true }, 3, 0, 0},
		{"content scroll", [][]byte{{0x2C, 0x00, 0x00, 0x01, 0x07, 0x00, 0xFF}}, func(st *State) {}, 1, 0, 0},
		{"scroll stopped", [][]byte{{0x2F, 0x2E}}, func(st *State) {}, 2, 0, 0},
		{"NOP", [][]byte{{0xE3}}, func(st *State) {}, 1, 0, 0},
		{"unknown", [][]byte{{0x30, 0xFF, 0xAF}}, func(st *State) { st.DisplayOn = true }, 1, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, Config{})
			want := b.d.State()
			for _, c := range tt.cmds {
				b.cmd(c...)
			}
			tt.want(&want)
			if got := b.d.State(); !reflect.DeepEqual(got, want) {
				t.Errorf("State() = %+v\nwant       %+v", got, want)
			}
			s := b.d.Stats()
			if s.Commands != tt.commands || s.UnknownCommands != tt.unknown || s.InvalidArguments != tt.invalid {
				t.Errorf("Stats() commands=%d unknown=%d invalid=%d, want %d %d %d", s.Commands, s.UnknownCommands, s.InvalidArguments, tt.commands, tt.unknown, tt.invalid)
			}
		})
	}
}

func TestUnknownCommandsReported(t *testing.T) {
	b := newBus(t, Config{})
	for i := range 20 {
		b.cmd(0x30 + byte(i%16))
	}
	s := b.d.Stats()
	if s.UnknownCommands != 20 {
		t.Errorf("UnknownCommands = %d, want 20", s.UnknownCommands)
	}
	want := []byte{0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x30, 0x31, 0x32, 0x33}
	if !reflect.DeepEqual(s.Unknown, want) {
		t.Errorf("Unknown = % x, want the last 16: % x", s.Unknown, want)
	}
}

func TestAbortedCommand(t *testing.T) {
	b := newBus(t, Config{})
	b.cmd(0x21, 0x10) // one argument of two
	b.data(0xAA)
	s := b.d.Stats()
	if s.AbortedCommands != 1 || s.Commands != 0 {
		t.Errorf("Stats() aborted=%d commands=%d, want 1 and 0", s.AbortedCommands, s.Commands)
	}
	if st := b.d.State(); st.ColumnStart != 0 {
		t.Errorf("ColumnStart = %d, want the cut-short window ignored", st.ColumnStart)
	}
	b.cmd(0x81, 0x33) // the decoder is back in sync
	if got := b.d.State().Contrast; got != 0x33 {
		t.Errorf("Contrast = %#x after resync, want 0x33", got)
	}
}

// at returns the GDDRAM byte at page p, column c.
func at(ram []byte, p, c int) byte { return ram[p*ramColumns+c] }

func TestAddressing(t *testing.T) {
	type cell struct {
		page, col int
		val       byte
	}
	tests := []struct {
		name string
		cmds []byte
		data []byte
		want []cell
	}{
		{
			"horizontal wraps to the next page and back to the window start",
			[]byte{0x20, 0x00, 0x21, 0x10, 0x12, 0x22, 0x01, 0x02},
			[]byte{1, 2, 3, 4, 5, 6, 7},
			[]cell{{1, 17, 2}, {1, 18, 3}, {2, 16, 4}, {2, 17, 5}, {2, 18, 6}, {1, 16, 7}},
		},
		{
			"vertical walks pages first",
			[]byte{0x20, 0x01, 0x21, 0x05, 0x06, 0x22, 0x03, 0x05},
			[]byte{1, 2, 3, 4, 5, 6, 7},
			[]cell{{4, 5, 2}, {5, 5, 3}, {3, 6, 4}, {4, 6, 5}, {5, 6, 6}, {3, 5, 7}},
		},
		{
			"page mode stays on its page",
			[]byte{0x20, 0x02, 0xB6, 0x0E, 0x17},
			[]byte{1, 2, 3},
			[]cell{{6, 127, 2}, {6, 126, 3}},
		},
		{
			"page start and column nibbles in horizontal mode",
			append(append([]byte{}, periphInit...), 0xB4, 0x02, 0x13),
			[]byte{9, 8},
			[]cell{{4, 50, 9}, {4, 51, 8}},
		},
		{
			"column nibbles in vertical mode",
			[]byte{0x20, 0x01, 0x22, 0x00, 0x07, 0xB2, 0x0A, 0x10},
			[]byte{1, 2},
			[]cell{{2, 10, 1}, {3, 10, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, Config{})
			b.cmd(tt.cmds...)
			b.data(tt.data...)
			ram := b.d.RAM()
			for _, c := range tt.want {
				if got := at(ram, c.page, c.col); got != c.val {
					t.Errorf("GDDRAM page %d column %d = %d, want %d", c.page, c.col, got, c.val)
				}
			}
			if s := b.d.Stats(); s.DataBytes != len(tt.data) {
				t.Errorf("DataBytes = %d, want %d", s.DataBytes, len(tt.data))
			}
		})
	}
}

func TestGlass(t *testing.T) {
	// One lit pixel at GDDRAM row 1, column 2 (page 0, bit 1).
	const w, h = 16, 16
	tests := []struct {
		name string
		cmds []byte
		lit  []struct{ x, y int } // nil with all: every pixel
		all  bool
	}{
		{"upright", []byte{0xA1, 0xC8, 0xAF}, []struct{ x, y int }{{2, 1}}, false},
		{"segment not remapped mirrors", []byte{0xA0, 0xC8, 0xAF}, []struct{ x, y int }{{w - 1 - 2, 1}}, false},
		{"COM scan normal mirrors", []byte{0xA1, 0xC0, 0xA8, 0x0F, 0xAF}, []struct{ x, y int }{{2, h - 1 - 1}}, false},
		{"start line", []byte{0xA1, 0xC8, 0x41, 0xAF}, []struct{ x, y int }{{2, 0}}, false},
		{"display offset", []byte{0xA1, 0xC8, 0xD3, 0x01, 0xAF}, []struct{ x, y int }{{2, 0}}, false},
		{"display off", []byte{0xA1, 0xC8, 0xAE}, nil, false},
		{"entire display on", []byte{0xA1, 0xC8, 0xA5, 0xAF}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, Config{W: w, H: h})
			b.cmd(0x20, 0x00, 0x21, 0x00, w-1, 0x22, 0x00, 0x07)
			buf := make([]byte, 8*ramColumns)
			b.cmd(0x21, 0x00, 0x7F)
			buf[2] = 0x02
			b.data(buf...)
			b.cmd(tt.cmds...)
			want := image1bit.NewVerticalLSB(b.d.Bounds())
			for _, p := range tt.lit {
				want.SetBit(p.x, p.y, image1bit.On)
			}
			if tt.all {
				for i := range want.Pix {
					want.Pix[i] = 0xFF
				}
			}
			if msg := diff(b.d.Frame(), want); msg != "" {
				t.Errorf("Frame(): %s", msg)
			}
		})
	}
}

func TestMultiplexDarkensRows(t *testing.T) {
	b := newBus(t, Config{W: 8, H: 32})
	b.cmd(0x20, 0x00, 0x21, 0x00, 0x07, 0x22, 0x00, 0x03, 0xA1, 0xC8, 0xA8, 0x0F, 0xAF)
	full := make([]byte, 8*4)
	for i := range full {
		full[i] = 0xFF
	}
	b.data(full...)
	f := b.d.Frame()
	if !f.BitAt(0, 15) || f.BitAt(0, 16) {
		t.Errorf("with multiplex 16 row 15 lit=%v and row 16 lit=%v, want lit and dark", f.BitAt(0, 15), f.BitAt(0, 16))
	}
}

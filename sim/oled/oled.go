// Package oled emulates an SSD1306 OLED controller on the bus, so the
// appliance's real display driver (periph's ssd1306) runs unchanged in the
// simulator and in CI.
//
// A Device is the controller with its glass. The driver talks to it through
// Port (4-wire SPI: the D/C pin returned by DC selects command or data) or
// Bus (I²C: a control byte selects command or data). Every byte is decoded
// the way the SSD1306 datasheet describes: fundamental, addressing,
// hardware-configuration, timing and scrolling commands, and GDDRAM writes in
// horizontal, vertical and page addressing modes. Frame reads back what the
// glass would show.
//
// What is not modelled: scrolling is accepted and recorded but not animated;
// the COM pin configuration (0xDA) is recorded but the emulated glass is
// always wired the way the configuration says; contrast only dims the PNG.
package oled

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// GDDRAM geometry of the SSD1306: 128 columns by 8 pages of 8 rows, whatever
// the size of the glass.
const (
	ramColumns = 128
	ramPages   = 8
	ramRows    = ramPages * 8
)

// DefaultI2CAddress is the SSD1306's I²C address with SA0 low.
const DefaultI2CAddress = 0x3C

// maxUnknown bounds Stats.Unknown.
const maxUnknown = 16

// Config describes the emulated panel.
type Config struct {
	// W is the glass width in pixels: 1 to 128. Zero means 128.
	W int
	// H is the glass height in pixels: a multiple of 8 from 16 to 64. Zero
	// means 64.
	H int
	// Name names the controller in errors and prefixes its pins: the D/C pin
	// is "<Name>_DC" and the reset pin "<Name>_RES". Empty means "SSD1306".
	Name string
	// I2CAddress is the address Bus answers to. Zero means DefaultI2CAddress.
	I2CAddress uint16
	// Logger receives a warning for each unknown command and argument the
	// controller rejects. Nil means slog.Default().
	Logger *slog.Logger
}

// AddressingMode is the GDDRAM addressing mode set by command 0x20.
type AddressingMode uint8

// Addressing modes, with the values command 0x20 takes.
const (
	Horizontal AddressingMode = 0
	Vertical   AddressingMode = 1
	Page       AddressingMode = 2
)

func (m AddressingMode) String() string {
	switch m {
	case Horizontal:
		return "horizontal"
	case Vertical:
		return "vertical"
	case Page:
		return "page"
	}
	return fmt.Sprintf("AddressingMode(%d)", uint8(m))
}

// State is the controller's register state, as decoded from the bus.
type State struct {
	// DisplayOn reports whether the panel is on (0xAF) rather than asleep
	// (0xAE, the power-on state).
	DisplayOn bool
	// EntireDisplayOn reports whether every pixel is forced on (0xA5)
	// regardless of GDDRAM.
	EntireDisplayOn bool
	// Inverted reports inverse display (0xA7): a 0 bit lights the pixel.
	Inverted bool
	// Contrast is the contrast level set by 0x81; 0x7F at power-on.
	Contrast uint8
	// SegmentRemap reports 0xA1: column 127 is mapped to SEG0. The emulated
	// glass shows column 0 on the left with the remap, mirrored without it.
	SegmentRemap bool
	// COMScanReversed reports 0xC8: COMs are scanned from COM[N-1] to COM0.
	// The emulated glass shows row 0 on top when reversed, mirrored otherwise.
	COMScanReversed bool
	// Multiplex is the number of rows driven (0xA8 argument + 1), 16 to 64.
	Multiplex int
	// StartLine is the RAM row shown on the first display row (0x40-0x7F).
	StartLine int
	// DisplayOffset is the vertical shift by COM (0xD3).
	DisplayOffset int
	// COMPins is the COM pins hardware configuration byte (0xDA).
	COMPins uint8
	// ClockDivide is the display clock divide ratio and oscillator frequency
	// byte (0xD5).
	ClockDivide uint8
	// Precharge is the pre-charge period byte (0xD9).
	Precharge uint8
	// VCOMHDeselect is the VCOMH deselect level byte (0xDB).
	VCOMHDeselect uint8
	// ChargePump reports whether the internal charge pump is enabled (0x8D
	// 0x14).
	ChargePump bool
	// Addressing is the GDDRAM addressing mode (0x20); page at power-on.
	Addressing AddressingMode
	// ColumnStart and ColumnEnd are the column window (0x21), inclusive.
	ColumnStart, ColumnEnd int
	// PageStart and PageEnd are the page window (0x22), inclusive.
	PageStart, PageEnd int
	// Column and Page are the GDDRAM write pointer.
	Column, Page int
	// Scrolling reports whether scrolling was activated (0x2F) and not
	// deactivated (0x2E) since.
	Scrolling bool
}

// Stats counts the traffic the controller received.
type Stats struct {
	// Transactions counts SPI transfers (one Tx call or packet) and I²C
	// writes addressed to the controller.
	Transactions int
	// Bytes counts every byte received, I²C control bytes included.
	Bytes int
	// CommandBytes counts bytes received as commands or their arguments.
	CommandBytes int
	// DataBytes counts bytes written to GDDRAM.
	DataBytes int
	// Commands counts complete commands decoded, unknown ones excluded.
	Commands int
	// UnknownCommands counts command bytes that are no SSD1306 command.
	UnknownCommands int
	// InvalidArguments counts commands whose argument the controller rejects
	// (for example a multiplex ratio below 16 or addressing mode 3).
	InvalidArguments int
	// AbortedCommands counts commands cut short by data before all their
	// arguments arrived.
	AbortedCommands int
	// IgnoredBytes counts bytes received while the reset pin was held low.
	IgnoredBytes int
	// Unknown holds the most recent unknown command bytes, oldest first, at
	// most 16.
	Unknown []byte
}

// Sub returns the traffic counted since an earlier snapshot old. Unknown is
// the one from s.
func (s Stats) Sub(old Stats) Stats {
	return Stats{
		Transactions:     s.Transactions - old.Transactions,
		Bytes:            s.Bytes - old.Bytes,
		CommandBytes:     s.CommandBytes - old.CommandBytes,
		DataBytes:        s.DataBytes - old.DataBytes,
		Commands:         s.Commands - old.Commands,
		UnknownCommands:  s.UnknownCommands - old.UnknownCommands,
		InvalidArguments: s.InvalidArguments - old.InvalidArguments,
		AbortedCommands:  s.AbortedCommands - old.AbortedCommands,
		IgnoredBytes:     s.IgnoredBytes - old.IgnoredBytes,
		Unknown:          s.Unknown,
	}
}

// Device is an emulated SSD1306 with its glass. It is safe for concurrent
// use: a driver may write while another goroutine reads frames.
type Device struct {
	name    string
	w, h    int
	i2cAddr uint16
	log     *slog.Logger
	dc      *gpiotest.Pin
	res     *resetPin

	mu       sync.Mutex
	ram      [ramPages][ramColumns]byte
	st       State
	pageCol  int    // column start for page addressing mode (0x00-0x1F)
	pending  []byte // command whose arguments are still arriving
	stats    Stats
	unplug   bool
	inReset  bool
	powerups uint32 // seeds the power-on GDDRAM noise
}

// New returns a powered-up controller in its power-on reset state: display
// off and GDDRAM holding noise, as after a real power-up. It panics on sizes
// the SSD1306 cannot drive; check them with ValidSize first when they come
// from input.
func New(opts Config) *Device {
	if opts.W == 0 {
		opts.W = 128
	}
	if opts.H == 0 {
		opts.H = 64
	}
	if err := ValidSize(opts.W, opts.H); err != nil {
		panic(err)
	}
	if opts.Name == "" {
		opts.Name = "SSD1306"
	}
	if opts.I2CAddress == 0 {
		opts.I2CAddress = DefaultI2CAddress
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Device{
		name:    opts.Name,
		w:       opts.W,
		h:       opts.H,
		i2cAddr: opts.I2CAddress,
		log:     opts.Logger.With("panel", opts.Name),
		dc:      &gpiotest.Pin{N: opts.Name + "_DC", Num: -1, Fn: "OUT", L: gpio.Low},
	}
	d.res = &resetPin{Pin: gpiotest.Pin{N: opts.Name + "_RES", Num: -1, Fn: "OUT", L: gpio.High}, d: d}
	d.powerUp()
	return d
}

// ValidSize reports, as an error naming the allowed values, whether an
// SSD1306 can drive glass of w by h pixels.
func ValidSize(w, h int) error {
	if w < 1 || w > ramColumns {
		return fmt.Errorf("oled: width %d not supported; allowed: 1 to %d", w, ramColumns)
	}
	if h < 16 || h > ramRows || h%8 != 0 {
		return fmt.Errorf("oled: height %d not supported; allowed: 16 to %d in steps of 8", h, ramRows)
	}
	return nil
}

// String returns the controller's name.
func (d *Device) String() string { return d.name }

// Bounds returns the glass size.
func (d *Device) Bounds() image.Rectangle { return image.Rect(0, 0, d.w, d.h) }

// DC returns the data/command pin the driver toggles: low for commands, high
// for GDDRAM data. It is a gpiotest pin named "<Name>_DC".
func (d *Device) DC() gpio.PinIO { return d.dc }

// RES returns the reset pin, named "<Name>_RES". Driving it low resets the
// controller's registers (GDDRAM is kept); bytes sent while it is low are
// ignored.
func (d *Device) RES() gpio.PinIO { return d.res }

// State returns the controller's register state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// Stats returns the traffic counted since the controller was created.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Unknown = append([]byte(nil), d.stats.Unknown...)
	return s
}

// RAM returns a copy of GDDRAM: 8 pages of 128 columns, one byte per column
// and page, least significant bit on top.
func (d *Device) RAM() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]byte, 0, ramPages*ramColumns)
	for p := range d.ram {
		out = append(out, d.ram[p][:]...)
	}
	return out
}

// Unplug disconnects the panel: bus transfers fail until Plug, as they would
// on an I²C bus with nothing answering.
func (d *Device) Unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unplug = true
}

// Plug reconnects the panel. It comes back powered up from scratch: registers
// at their reset values, display off and GDDRAM holding noise, so the driver
// has to initialise it again.
func (d *Device) Plug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unplug = false
	d.powerUpLocked()
}

// Plugged reports whether the panel is connected.
func (d *Device) Plugged() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.unplug
}

// Frame returns what the glass shows: On is a lit pixel. It applies the
// segment remap, COM scan direction, multiplex ratio, start line, display
// offset, inverse display, entire-display-on and display on/off.
func (d *Device) Frame() *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(d.Bounds())
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &d.st
	if !st.DisplayOn {
		return img
	}
	for y := range d.h {
		row, lit := d.rowFor(y)
		if !lit {
			continue
		}
		page, bit := row/8, uint(row%8)
		for x := range d.w {
			col := x
			if !st.SegmentRemap {
				col = d.w - 1 - x
			}
			on := d.ram[page][col]>>bit&1 == 1
			if st.Inverted {
				on = !on
			}
			if st.EntireDisplayOn {
				on = true
			}
			if on {
				img.SetBit(x, y, image1bit.On)
			}
		}
	}
	return img
}

// rowFor returns the GDDRAM row glass row y shows, and whether that row is
// driven at all (rows beyond the multiplex ratio stay dark).
func (d *Device) rowFor(y int) (int, bool) {
	st := &d.st
	if y >= st.Multiplex {
		return 0, false
	}
	r := y
	if !st.COMScanReversed {
		r = st.Multiplex - 1 - y
	}
	return (r + st.StartLine + st.DisplayOffset) % ramRows, true
}

// PNG writes the frame as a grayscale PNG, each pixel scale by scale (1 to
// 32). Lit pixels are white dimmed by the contrast level, as on the glass.
func (d *Device) PNG(w io.Writer, scale int) error {
	if scale < 1 || scale > 32 {
		return fmt.Errorf("oled: scale %d out of range; allowed: 1 to 32", scale)
	}
	frame := d.Frame()
	contrast := d.State().Contrast
	lit := color.Gray{Y: uint8(0x60 + int(contrast)*(0xFF-0x60)/0xFF)}
	out := image.NewGray(image.Rect(0, 0, d.w*scale, d.h*scale))
	for y := range d.h {
		for x := range d.w {
			if !frame.BitAt(x, y) {
				continue
			}
			for dy := range scale {
				row := out.Pix[(y*scale+dy)*out.Stride:]
				for dx := range scale {
					row[x*scale+dx] = lit.Y
				}
			}
		}
	}
	bw := bufio.NewWriter(w)
	if err := pngEncoder.Encode(bw, out); err != nil {
		return fmt.Errorf("oled: encoding PNG: %w", err)
	}
	return bw.Flush()
}

// pngEncoder reuses its compressor between frames: the simulator serves a
// frame per request, and a fresh zlib writer costs most of a megabyte.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngPool{}}

type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// powerUp brings the controller to its power-on state.
func (d *Device) powerUp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.powerUpLocked()
}

func (d *Device) powerUpLocked() {
	d.resetLocked()
	// GDDRAM content is undefined at power-on: fill it with noise so a
	// driver that forgets to write a byte is seen.
	d.powerups++
	x := 0x9E3779B9 ^ d.powerups
	for p := range d.ram {
		for c := range d.ram[p] {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			d.ram[p][c] = byte(x)
		}
	}
}

// resetLocked sets the registers to their reset values (datasheet section
// 8.9); GDDRAM is kept.
func (d *Device) resetLocked() {
	d.st = State{
		Contrast:      0x7F,
		Multiplex:     ramRows,
		COMPins:       0x12,
		ClockDivide:   0x80,
		Precharge:     0x22,
		VCOMHDeselect: 0x20,
		Addressing:    Page,
		ColumnEnd:     ramColumns - 1,
		PageEnd:       ramPages - 1,
	}
	d.pageCol = 0
	d.pending = nil
}

// resetPin is the controller's RES pin: low resets the registers.
type resetPin struct {
	gpiotest.Pin
	d *Device
}

// Out implements gpio.PinOut.
func (p *resetPin) Out(l gpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	if l == gpio.Low {
		p.d.resetLocked()
	}
	p.d.inReset = l == gpio.Low
	return nil
}

var _ gpio.PinIO = (*resetPin)(nil)

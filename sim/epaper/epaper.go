// Package epaper emulates the e-paper controller of Waveshare's 2.13"
// panels (the SSD1675B of the V2 HAT, the SSD1680 of the V3) on the SPI bus,
// so periph's real drivers (waveshare2in13v2, waveshare2in13v3) run
// unchanged in the simulator and in CI.
//
// A Device is the controller with its glass. The driver talks to it through
// Port (4-wire SPI: the D/C pin returned by DC selects command or data),
// resets it with RST and waits on BUSY. Every byte is decoded the way the
// SSD1675B/SSD1680 datasheets describe the commands periph's drivers send:
// driver output control, data entry mode, RAM X/Y windows and address
// counters, the two RAM banks (black/white and red, which the drivers keep
// as the previous frame), border waveform, VCOM, LUT loading, display update
// control 1 and 2, master activation, software reset and deep sleep.
// Commands outside that set are counted and reported in Stats, with their
// data ignored.
//
// Master activation with the display bit set copies the black/white RAM
// onto the glass and holds BUSY high for the waveform's length: the sum of
// the loaded LUT's phase lengths times their repeat counts, at the frame
// period (50 Hz). A LUT that drives every pixel (a full refresh) is longer
// than one that drives only the pixels that change (a partial refresh).
// Frame returns what the glass shows, in its native portrait orientation:
// source 0 on the left, gate 0 on top. The glass keeps its picture when
// nothing drives it (power off, deep sleep, unplugged), as paper does.
//
// What is not modelled: temperature sensing, OTP and the LUTs stored there
// (a refresh asking for them takes Timing.OTPFull or OTPPartial), the
// waveforms' optical effect (ghosting is counted, not drawn), and source
// shift direction options.
package epaper

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// RAM geometry: the SSD1680's 176 sources (22 bytes of X address) by 296
// gates. The glass uses the top-left part of it.
const (
	ramColumns = 22 // bytes
	ramRows    = 296
)

// Controller names the emulated chip.
type Controller string

// Controllers of Waveshare's 2.13" HATs.
const (
	// SSD1675B drives the 2.13" V2 HAT; its LUT is 70 bytes.
	SSD1675B Controller = "SSD1675B"
	// SSD1680 drives the 2.13" V3 HAT; its LUT is 153 bytes.
	SSD1680 Controller = "SSD1680"
)

// lutLen returns the LUT register's length and the layout of its phase
// timing: where the groups start, how many there are and how long each is.
func (c Controller) lut() (size, tpStart, groups, groupLen int) {
	if c == SSD1675B {
		// 5 voltage sources x 7 phases, then 7 groups of TP A-D and RP.
		return 70, 35, 7, 5
	}
	// 5 voltage sources x 12 groups, then 12 groups of TP A, TP B, SR AB,
	// TP C, TP D, SR CD, RP; then frame rates and gate timing.
	return 153, 60, 12, 7
}

// Timing sets how long the controller holds BUSY high.
type Timing struct {
	// FramePeriod is one waveform frame; a refresh lasts the loaded LUT's
	// frame count times this. Zero means 20ms (50 Hz).
	FramePeriod time.Duration
	// OTPFull and OTPPartial are a refresh's length when no LUT was loaded
	// into the register (the controller would use its OTP waveform), full
	// (display mode 1) or partial (display mode 2). Zero means 2s and 300ms,
	// Waveshare's figures for the 2.13" panels.
	OTPFull, OTPPartial time.Duration
	// SoftReset is how long a software reset (0x12) keeps BUSY high. Zero
	// means 2ms.
	SoftReset time.Duration
	// Analog is how long master activation takes when it only switches the
	// clock and analog circuits (no display bit). Zero means 10ms.
	Analog time.Duration
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.FramePeriod, 20*time.Millisecond)
	def(&t.OTPFull, 2*time.Second)
	def(&t.OTPPartial, 300*time.Millisecond)
	def(&t.SoftReset, 2*time.Millisecond)
	def(&t.Analog, 10*time.Millisecond)
	return t
}

// maxUnknown bounds Stats.Unknown.
const maxUnknown = 16

// Config describes the emulated panel.
type Config struct {
	// Controller is the chip. Empty means SSD1680.
	Controller Controller
	// Sources and Gates are the glass size in its native portrait
	// orientation: Sources pixels wide (1 to 176), Gates tall (1 to 296).
	// Zero means the 2.13" glass: 122 by 250.
	Sources, Gates int
	// Name names the controller in errors and prefixes its pins: "<Name>_DC",
	// "<Name>_CS", "<Name>_RST" and "<Name>_BUSY". Empty means the controller's name.
	Name string
	// Timing sets the BUSY durations; the zero value means realistic ones.
	Timing Timing
	// Logger receives a warning for each unknown command. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// State is the controller's register state, as decoded from the bus.
type State struct {
	// Gates is the number of gate lines driven (0x01 MUX + 1).
	Gates int
	// GateScan is the third byte of driver output control (0x01): bit 0
	// (TB) scans the gates from the last to the first.
	GateScan uint8
	// DataEntry is the data entry mode (0x11): bit 0 increments X, bit 1
	// increments Y, bit 2 moves the Y counter first.
	DataEntry uint8
	// XStart, XEnd (bytes of 8 sources) and YStart, YEnd (gates) are the RAM
	// window (0x44, 0x45), inclusive.
	XStart, XEnd, YStart, YEnd int
	// X and Y are the RAM address counter (0x4E, 0x4F).
	X, Y int
	// Border is the border waveform control byte (0x3C).
	Border uint8
	// VCOM is the VCOM register (0x2C).
	VCOM uint8
	// UpdateControl1 holds the RAM content options (0x21): in the first
	// byte, bits 7-4 for the red RAM and 3-0 for the black/white RAM
	// (0 normal, 4 bypass as 0, 8 inverse).
	UpdateControl1 [2]uint8
	// UpdateControl2 is the display update sequence (0x22) master activation
	// runs.
	UpdateControl2 uint8
	// LUT is the waveform register (0x32); LUTBytes counts the bytes loaded
	// since reset (a driver may load fewer than the register holds).
	LUT      []byte
	LUTBytes int
	// DeepSleep reports whether the controller is in deep sleep (0x10):
	// only a hardware reset wakes it.
	DeepSleep bool
	// Busy reports whether BUSY is high now.
	Busy bool
}

// Stats counts the traffic the controller received and the work it did.
type Stats struct {
	// Transactions counts SPI transfers.
	Transactions int
	// Bytes counts every byte received.
	Bytes int
	// CommandBytes counts command bytes and their parameters.
	CommandBytes int
	// RAMBytes counts bytes written to either RAM bank.
	RAMBytes int
	// Commands counts the commands decoded, unknown ones excluded.
	Commands int
	// UnknownCommands counts command bytes that are no command the
	// controller knows; their data is ignored.
	UnknownCommands int
	// ExtraBytes counts parameter bytes beyond what a command takes.
	ExtraBytes int
	// IgnoredBytes counts bytes received in deep sleep, while RST is low
	// or while CS is high.
	IgnoredBytes int
	// HardwareResets and SoftResets count RST pulses and 0x12 commands.
	HardwareResets, SoftResets int
	// FullRefreshes and PartialRefreshes count master activations that
	// drove the glass, by waveform: a partial one (display mode 2, or a LUT
	// that leaves unchanged pixels alone) only touches what changed.
	FullRefreshes, PartialRefreshes int
	// PartialsSinceFull counts partial refreshes since the last full one:
	// the ghosting the glass has collected.
	PartialsSinceFull int
	// BusyTime is how long BUSY was held high by resets and activations.
	BusyTime time.Duration
	// Unknown holds the most recent unknown command bytes, oldest first, at
	// most 16.
	Unknown []byte
}

// Sub returns the traffic counted since an earlier snapshot old. Unknown
// and PartialsSinceFull are those of s.
func (s Stats) Sub(old Stats) Stats {
	return Stats{
		Transactions:      s.Transactions - old.Transactions,
		Bytes:             s.Bytes - old.Bytes,
		CommandBytes:      s.CommandBytes - old.CommandBytes,
		RAMBytes:          s.RAMBytes - old.RAMBytes,
		Commands:          s.Commands - old.Commands,
		UnknownCommands:   s.UnknownCommands - old.UnknownCommands,
		ExtraBytes:        s.ExtraBytes - old.ExtraBytes,
		IgnoredBytes:      s.IgnoredBytes - old.IgnoredBytes,
		HardwareResets:    s.HardwareResets - old.HardwareResets,
		SoftResets:        s.SoftResets - old.SoftResets,
		FullRefreshes:     s.FullRefreshes - old.FullRefreshes,
		PartialRefreshes:  s.PartialRefreshes - old.PartialRefreshes,
		PartialsSinceFull: s.PartialsSinceFull,
		BusyTime:          s.BusyTime - old.BusyTime,
		Unknown:           s.Unknown,
	}
}

// Bank selects a RAM bank.
type Bank int

// The two RAM banks: 0x24 writes the black/white one (the picture), 0x26
// the red one (on a black and white panel, the previous picture that a
// partial waveform compares against).
const (
	BW Bank = iota
	Red
)

// Device is an emulated e-paper controller with its glass. It is safe for
// concurrent use: a driver may write while another goroutine reads frames.
type Device struct {
	name   string
	chip   Controller
	w, h   int
	timing Timing
	log    *slog.Logger
	dc     *gpiotest.Pin
	cs     *gpiotest.Pin
	rst    *resetPin
	busy   *busyPin

	mu        sync.Mutex
	ram       [2][ramRows][ramColumns]byte
	glass     *image1bit.VerticalLSB
	st        State
	cmd       int    // current command, -1 for none
	params    []byte // its parameters so far
	busyUntil time.Time
	holdBusy  bool
	stats     Stats
	unplug    bool
	inReset   bool
	powerups  uint32
}

// New returns a powered-up controller: registers at their reset values, RAM
// holding noise, the glass showing noise (whatever the paper last showed).
// It panics on a glass the controller cannot drive; check it with
// ValidSize first when it comes from input.
func New(opts Config) *Device {
	if opts.Controller == "" {
		opts.Controller = SSD1680
	}
	if opts.Sources == 0 && opts.Gates == 0 {
		opts.Sources, opts.Gates = 122, 250
	}
	if err := ValidSize(opts.Sources, opts.Gates); err != nil {
		panic(err)
	}
	if opts.Name == "" {
		opts.Name = string(opts.Controller)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Device{
		name:   opts.Name,
		chip:   opts.Controller,
		w:      opts.Sources,
		h:      opts.Gates,
		timing: opts.Timing.withDefaults(),
		log:    opts.Logger.With("panel", opts.Name),
		dc:     &gpiotest.Pin{N: opts.Name + "_DC", Num: -1, Fn: "OUT", L: gpio.Low},
		cs:     &gpiotest.Pin{N: opts.Name + "_CS", Num: -1, Fn: "OUT", L: gpio.Low},
		glass:  image1bit.NewVerticalLSB(image.Rect(0, 0, opts.Sources, opts.Gates)),
		cmd:    -1,
	}
	d.rst = &resetPin{Pin: gpiotest.Pin{N: opts.Name + "_RST", Num: -1, Fn: "OUT", L: gpio.High}, d: d}
	d.busy = &busyPin{Pin: gpiotest.Pin{N: opts.Name + "_BUSY", Num: -1, Fn: "IN", L: gpio.Low}, d: d}
	d.mu.Lock()
	d.powerUpLocked()
	x := uint32(0x2545F491)
	for i := range d.glass.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		d.glass.Pix[i] = byte(x)
	}
	d.mu.Unlock()
	return d
}

// ValidSize reports, as an error naming the allowed values, whether the
// controller can drive glass of sources by gates pixels.
func ValidSize(sources, gates int) error {
	if sources < 1 || sources > ramColumns*8 {
		return fmt.Errorf("epaper: %d sources not supported; allowed: 1 to %d", sources, ramColumns*8)
	}
	if gates < 1 || gates > ramRows {
		return fmt.Errorf("epaper: %d gates not supported; allowed: 1 to %d", gates, ramRows)
	}
	return nil
}

// String returns the controller's name.
func (d *Device) String() string { return d.name }

// Bounds returns the glass size in its native portrait orientation.
func (d *Device) Bounds() image.Rectangle { return image.Rect(0, 0, d.w, d.h) }

// DC returns the data/command pin: low for commands, high for parameters
// and RAM data. It is a gpiotest pin named "<Name>_DC".
func (d *Device) DC() gpio.PinIO { return d.dc }

// CS returns the chip-select pin, "<Name>_CS": bytes sent while it is high
// are ignored. It starts low, so a port whose own chip select is enough
// need not touch it.
func (d *Device) CS() gpio.PinIO { return d.cs }

// RST returns the reset pin, "<Name>_RST": driving it low resets the
// registers and wakes the controller from deep sleep; RAM and glass are
// kept, and bytes sent while it is low are ignored.
func (d *Device) RST() gpio.PinIO { return d.rst }

// BUSY returns the busy pin, "<Name>_BUSY": high while the controller
// resets or refreshes the glass, and all through deep sleep.
func (d *Device) BUSY() gpio.PinIO { return d.busy }

// HoldBusy holds BUSY high (a controller that hangs, a broken wire pulled
// up) until HoldBusy(false).
func (d *Device) HoldBusy(hold bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.holdBusy = hold
}

// State returns the controller's register state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.LUT = append([]byte(nil), d.st.LUT...)
	s.Busy = d.busyLocked(time.Now())
	return s
}

// Stats returns the traffic counted since the controller was created.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Unknown = append([]byte(nil), d.stats.Unknown...)
	return s
}

// RAM returns a copy of a RAM bank's part the glass shows: Gates rows of
// (Sources+7)/8 bytes, most significant bit leftmost, a 1 bit white.
func (d *Device) RAM(b Bank) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	stride := (d.w + 7) / 8
	out := make([]byte, 0, stride*d.h)
	for y := range d.h {
		out = append(out, d.ram[b][y][:stride]...)
	}
	return out
}

// Unplug disconnects the panel: bus transfers fail until Plug. The glass
// keeps its picture.
func (d *Device) Unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unplug = true
}

// Plug reconnects the panel. The controller comes back powered up from
// scratch (registers reset, RAM holding noise); the glass still shows what
// it showed.
func (d *Device) Plug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unplug = false
	d.powerUpLocked()
}

// Frame returns what the glass shows in its native orientation (Sources
// wide, Gates tall, source 0 on the left, gate 0 on top). On is white
// (bare paper), as in image1bit's model.
func (d *Device) Frame() *image1bit.VerticalLSB {
	d.mu.Lock()
	defer d.mu.Unlock()
	img := image1bit.NewVerticalLSB(d.glass.Rect)
	copy(img.Pix, d.glass.Pix)
	return img
}

// PNG writes the frame as a grayscale PNG, each pixel scale by scale (1 to
// 32), turned by rotate degrees clockwise (0, 90, 180 or 270) so it shows
// the way the glass is mounted. Ink is dark grey on paper white.
func (d *Device) PNG(w io.Writer, scale, rotate int) error {
	if scale < 1 || scale > 32 {
		return fmt.Errorf("epaper: scale %d out of range; allowed: 1 to 32", scale)
	}
	img, err := Rotate(d.Frame(), rotate)
	if err != nil {
		return err
	}
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	paper, ink := color.Gray{Y: 0xEE}, color.Gray{Y: 0x22}
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := ink
			if img.BitAt(x, y) {
				c = paper
			}
			for dy := range scale {
				row := out.Pix[(y*scale+dy)*out.Stride:]
				for dx := range scale {
					row[x*scale+dx] = c.Y
				}
			}
		}
	}
	bw := bufio.NewWriter(w)
	if err := png.Encode(bw, out); err != nil {
		return fmt.Errorf("epaper: encoding PNG: %w", err)
	}
	return bw.Flush()
}

// Rotate returns img turned by deg degrees clockwise: 0, 90, 180 or 270.
func Rotate(img *image1bit.VerticalLSB, deg int) (*image1bit.VerticalLSB, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	var out *image1bit.VerticalLSB
	var at func(x, y int) (int, int) // source pixel for output pixel x, y
	switch deg {
	case 0:
		out = image1bit.NewVerticalLSB(image.Rect(0, 0, w, h))
		at = func(x, y int) (int, int) { return x, y }
	case 90:
		out = image1bit.NewVerticalLSB(image.Rect(0, 0, h, w))
		at = func(x, y int) (int, int) { return y, h - 1 - x }
	case 180:
		out = image1bit.NewVerticalLSB(image.Rect(0, 0, w, h))
		at = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 270:
		out = image1bit.NewVerticalLSB(image.Rect(0, 0, h, w))
		at = func(x, y int) (int, int) { return w - 1 - y, x }
	default:
		return nil, fmt.Errorf("epaper: rotation %d not supported; allowed: 0, 90, 180, 270", deg)
	}
	ob := out.Rect
	for y := range ob.Dy() {
		for x := range ob.Dx() {
			sx, sy := at(x, y)
			if img.BitAt(img.Rect.Min.X+sx, img.Rect.Min.Y+sy) {
				out.SetBit(x, y, image1bit.On)
			}
		}
	}
	return out, nil
}

// powerUpLocked brings the controller to its power-on state: registers
// reset, RAM noise. The glass is left alone.
func (d *Device) powerUpLocked() {
	d.resetLocked()
	d.powerups++
	x := 0x9E3779B9 ^ d.powerups
	for b := range d.ram {
		for r := range d.ram[b] {
			for c := range d.ram[b][r] {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				d.ram[b][r][c] = byte(x)
			}
		}
	}
}

// resetLocked sets the registers to their reset values; RAM is kept.
func (d *Device) resetLocked() {
	size, _, _, _ := d.chip.lut()
	d.st = State{
		Gates:     ramRows,
		DataEntry: 0b011,
		XEnd:      ramColumns - 1,
		YEnd:      ramRows - 1,
		Border:    0xC0,
		LUT:       make([]byte, size),
	}
	d.cmd, d.params = -1, nil
	d.busyUntil = time.Time{}
}

// busyLocked reports whether BUSY is high at now.
func (d *Device) busyLocked(now time.Time) bool {
	return d.holdBusy || d.st.DeepSleep || now.Before(d.busyUntil)
}

// busyFor holds BUSY high for dur from now (or from the end of the current
// busy period) and counts it.
func (d *Device) busyFor(dur time.Duration) {
	now := time.Now()
	start := now
	if d.busyUntil.After(now) {
		start = d.busyUntil
	}
	d.busyUntil = start.Add(dur)
	d.stats.BusyTime += dur
}

// resetPin is the controller's RST pin: low resets the registers and ends
// deep sleep.
type resetPin struct {
	gpiotest.Pin
	d *Device
}

// Out implements gpio.PinOut.
func (p *resetPin) Out(l gpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if l == gpio.Low && !d.inReset {
		d.resetLocked()
		d.stats.HardwareResets++
	}
	d.inReset = l == gpio.Low
	return nil
}

// busyPin is the controller's BUSY output.
type busyPin struct {
	gpiotest.Pin
	d *Device
}

// In implements gpio.PinIn: any pull and edge setting is accepted, the
// level comes from the controller.
func (p *busyPin) In(gpio.Pull, gpio.Edge) error { return nil }

// Read implements gpio.PinIn.
func (p *busyPin) Read() gpio.Level {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	return gpio.Level(p.d.busyLocked(time.Now()))
}

// WaitForEdge implements gpio.PinIn: it returns true when BUSY falls within
// timeout (a negative timeout waits for ever).
func (p *busyPin) WaitForEdge(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		now := time.Now()
		p.d.mu.Lock()
		busy := p.d.busyLocked(now)
		until := p.d.busyUntil
		held := p.d.holdBusy || p.d.st.DeepSleep
		p.d.mu.Unlock()
		if !busy {
			return true
		}
		wait := until.Sub(now)
		if held || wait <= 0 {
			wait = 10 * time.Millisecond // poll the held line
		}
		if timeout >= 0 {
			left := deadline.Sub(now)
			if left <= 0 {
				return false
			}
			wait = min(wait, left)
		}
		time.Sleep(wait)
	}
}

var (
	_ gpio.PinIO = (*resetPin)(nil)
	_ gpio.PinIO = (*busyPin)(nil)
)

package epaper

import (
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// Commands of the SSD1675B/SSD1680 the emulator decodes, with the most
// parameter bytes each takes (-1: as many as the register holds).
const (
	cmdDriverOutput  = 0x01
	cmdGateVoltage   = 0x03
	cmdSourceVoltage = 0x04
	cmdSoftStart     = 0x0C
	cmdDeepSleep     = 0x10
	cmdDataEntry     = 0x11
	cmdSoftReset     = 0x12
	cmdTempSensor    = 0x18
	cmdActivate      = 0x20
	cmdUpdate1       = 0x21
	cmdUpdate2       = 0x22
	cmdWriteBW       = 0x24
	cmdWriteRed      = 0x26
	cmdVCOM          = 0x2C
	cmdWriteLUT      = 0x32
	cmdDisplayOption = 0x37
	cmdDummyLine     = 0x3A
	cmdGateTime      = 0x3B
	cmdBorder        = 0x3C
	cmdEndOption     = 0x3F
	cmdXWindow       = 0x44
	cmdYWindow       = 0x45
	cmdXCounter      = 0x4E
	cmdYCounter      = 0x4F
	cmdAnalogBlock   = 0x74
	cmdDigitalBlock  = 0x7E
)

// paramLen returns how many parameter bytes command c takes, -1 for the
// LUT and RAM writes (as many as are sent), and whether the controller
// knows it.
func (d *Device) paramLen(c byte) (int, bool) {
	switch c {
	case cmdDriverOutput, cmdSourceVoltage:
		return 3, true
	case cmdSoftStart:
		return 4, true
	case cmdXWindow:
		return 2, true
	case cmdYWindow:
		return 4, true
	case cmdYCounter, cmdUpdate1:
		return 2, true
	case cmdGateVoltage, cmdDeepSleep, cmdDataEntry, cmdTempSensor, cmdUpdate2, cmdVCOM,
		cmdDummyLine, cmdGateTime, cmdBorder, cmdEndOption, cmdXCounter, cmdAnalogBlock, cmdDigitalBlock:
		return 1, true
	case cmdDisplayOption:
		if d.chip == SSD1675B {
			return 7, true
		}
		return 10, true
	case cmdSoftReset, cmdActivate:
		return 0, true
	case cmdWriteBW, cmdWriteRed, cmdWriteLUT:
		return -1, true
	}
	return 0, false
}

// decode handles one transfer: command bytes when data is false, the
// current command's parameters or RAM data when true. d.mu is held.
func (d *Device) decode(w []byte, data bool) {
	d.stats.Bytes += len(w)
	if d.inReset || d.st.DeepSleep {
		d.stats.IgnoredBytes += len(w)
		return
	}
	if !data {
		d.stats.CommandBytes += len(w)
		for _, c := range w {
			d.command(c)
		}
		return
	}
	if d.cmd < 0 {
		d.stats.ExtraBytes += len(w)
		return
	}
	c := byte(d.cmd)
	switch c {
	case cmdWriteBW, cmdWriteRed:
		bank := BW
		if c == cmdWriteRed {
			bank = Red
		}
		for _, b := range w {
			d.writeRAM(bank, b)
		}
		d.stats.RAMBytes += len(w)
		return
	case cmdWriteLUT:
		d.stats.CommandBytes += len(w)
		for _, b := range w {
			if len(d.params) < len(d.st.LUT) {
				d.st.LUT[len(d.params)] = b
				d.st.LUTBytes = max(d.st.LUTBytes, len(d.params)+1)
			} else {
				d.stats.ExtraBytes++
			}
			d.params = append(d.params, b)
		}
		return
	}
	d.stats.CommandBytes += len(w)
	n, _ := d.paramLen(c)
	for _, b := range w {
		if len(d.params) >= n {
			d.stats.ExtraBytes++
			continue
		}
		d.params = append(d.params, b)
		d.apply(c, d.params)
	}
}

// command starts command c, running it at once when it takes no
// parameters.
func (d *Device) command(c byte) {
	n, ok := d.paramLen(c)
	if !ok {
		d.stats.UnknownCommands++
		if len(d.stats.Unknown) == maxUnknown {
			d.stats.Unknown = d.stats.Unknown[1:]
		}
		d.stats.Unknown = append(d.stats.Unknown, c)
		d.log.Warn("unknown e-paper command", "cmd", c)
		d.cmd, d.params = -1, nil
		return
	}
	d.stats.Commands++
	d.cmd, d.params = int(c), d.params[:0]
	switch {
	case c == cmdWriteLUT:
		d.st.LUTBytes = 0
	case n == 0:
		d.apply(c, nil)
	}
}

// apply latches the parameters of command c received so far, p, into the
// registers; it runs after each byte.
func (d *Device) apply(c byte, p []byte) {
	var last []byte
	if len(p) > 0 {
		last = p[len(p)-1:]
	}
	switch c {
	case cmdDriverOutput:
		switch len(p) {
		case 2:
			d.st.Gates = (int(p[1]&1)<<8 | int(p[0])) + 1
		case 3:
			d.st.GateScan = p[2]
		}
	case cmdDataEntry:
		d.st.DataEntry = last[0] & 0b111
	case cmdXWindow:
		switch len(p) {
		case 1:
			d.st.XStart = int(p[0] & 0x3F)
		case 2:
			d.st.XEnd = int(p[1] & 0x3F)
		}
	case cmdYWindow:
		switch len(p) {
		case 2:
			d.st.YStart = int(p[1]&1)<<8 | int(p[0])
		case 4:
			d.st.YEnd = int(p[3]&1)<<8 | int(p[2])
		}
	case cmdXCounter:
		d.st.X = int(last[0] & 0x3F)
	case cmdYCounter:
		if len(p) == 2 {
			d.st.Y = int(p[1]&1)<<8 | int(p[0])
		} else {
			d.st.Y = int(p[0])
		}
	case cmdBorder:
		d.st.Border = last[0]
	case cmdVCOM:
		d.st.VCOM = last[0]
	case cmdUpdate1:
		d.st.UpdateControl1[len(p)-1] = last[0]
	case cmdUpdate2:
		d.st.UpdateControl2 = last[0]
	case cmdDeepSleep:
		if last[0]&0b11 != 0 {
			d.st.DeepSleep = true
			if last[0]&0b11 == 0b11 {
				// Mode 2 loses RAM: the next power-up noise stands for it.
				d.powerups++
			}
		}
	case cmdSoftReset:
		st := d.st
		d.resetLocked()
		d.st.DeepSleep = st.DeepSleep
		d.stats.SoftResets++
		d.busyFor(d.timing.SoftReset)
	case cmdActivate:
		d.activate()
	}
}

// writeRAM stores one byte at the address counter and moves the counter
// as the data entry mode says, wrapping inside the window.
func (d *Device) writeRAM(bank Bank, b byte) {
	st := &d.st
	if st.X >= 0 && st.X < ramColumns && st.Y >= 0 && st.Y < ramRows {
		d.ram[bank][st.Y][st.X] = b
	}
	xInc, yInc, yFirst := st.DataEntry&1 != 0, st.DataEntry&2 != 0, st.DataEntry&4 != 0
	stepX := func() bool { // reports a wrap
		if xInc {
			if st.X >= st.XEnd {
				st.X = st.XStart
				return true
			}
			st.X++
			return false
		}
		if st.X <= st.XEnd {
			st.X = st.XStart
			return true
		}
		st.X--
		return false
	}
	stepY := func() bool {
		if yInc {
			if st.Y >= st.YEnd {
				st.Y = st.YStart
				return true
			}
			st.Y++
			return false
		}
		if st.Y <= st.YEnd {
			st.Y = st.YStart
			return true
		}
		st.Y--
		return false
	}
	if yFirst {
		if stepY() {
			stepX()
		}
		return
	}
	if stepX() {
		stepY()
	}
}

// Display update control 2 (0x22) bits.
const (
	upDisableClock  = 0x01
	upDisableAnalog = 0x02
	upDisplay       = 0x04
	upMode2         = 0x08
	upLoadLUT       = 0x10
)

// activate runs the display update sequence (master activation, 0x20).
func (d *Device) activate() {
	seq := d.st.UpdateControl2
	if seq&upDisplay == 0 {
		d.busyFor(d.timing.Analog)
		return
	}
	frames, partial := d.waveform()
	partial = partial || seq&upMode2 != 0
	var dur time.Duration
	switch {
	case seq&upLoadLUT != 0 || frames == 0:
		dur = d.timing.OTPFull
		if partial {
			dur = d.timing.OTPPartial
		}
	default:
		dur = time.Duration(frames) * d.timing.FramePeriod
	}
	if seq&(upDisableClock|upDisableAnalog) == 0 {
		dur += d.timing.Analog
	}
	d.busyFor(dur)
	if partial {
		d.stats.PartialRefreshes++
		d.stats.PartialsSinceFull++
	} else {
		d.stats.FullRefreshes++
		d.stats.PartialsSinceFull = 0
	}
	d.drive()
}

// waveform returns the loaded LUT's length in frames and whether it is a
// partial one: one whose first voltage group (the transition from black to
// black, on the SSD1675B) drives nothing, so pixels that stay put are left
// alone.
func (d *Device) waveform() (frames int, partial bool) {
	size, tp, groups, glen := d.chip.lut()
	lut := d.st.LUT
	if len(lut) < size {
		return 0, false
	}
	for g := range groups {
		grp := lut[tp+g*glen : tp+(g+1)*glen]
		var phases int
		if d.chip == SSD1675B {
			phases = int(grp[0]) + int(grp[1]) + int(grp[2]) + int(grp[3])
		} else {
			phases = int(grp[0]) + int(grp[1]) + int(grp[3]) + int(grp[4])
		}
		frames += phases * (int(grp[glen-1]) + 1)
	}
	if d.chip == SSD1675B {
		partial = true
		for _, v := range lut[:7] {
			if v != 0 {
				partial = false
			}
		}
	}
	return frames, partial
}

// drive shows the black/white RAM on the glass, through the RAM option of
// display update control 1, on the gates driven. Rows beyond them keep
// what they showed.
func (d *Device) drive() {
	opt := d.st.UpdateControl1[0] & 0x0F
	rows := min(d.h, d.st.Gates)
	for y := range rows {
		gate := y
		if d.st.GateScan&1 != 0 {
			gate = d.st.Gates - 1 - y
		}
		for x := range d.w {
			bit := d.ram[BW][gate][x/8]>>(7-x%8)&1 == 1
			switch {
			case opt&0x04 != 0:
				bit = false
			case opt&0x08 != 0:
				bit = !bit
			}
			d.glass.SetBit(x, y, image1bit.Bit(bit))
		}
	}
}

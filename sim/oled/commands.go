package oled

// argCount returns how many argument bytes follow command op, and whether op
// is an SSD1306 command at all.
func argCount(op byte) (int, bool) {
	switch {
	case op <= 0x1F: // column start nibbles for page addressing
		return 0, true
	case op >= 0x40 && op <= 0x7F: // display start line
		return 0, true
	case op >= 0xB0 && op <= 0xB7: // page start for page addressing
		return 0, true
	}
	switch op {
	case 0x20, // memory addressing mode
		0x81, // contrast
		0x8D, // charge pump
		0xA8, // multiplex ratio
		0xAD, // internal IREF selection (SSD1306B)
		0xD3, // display offset
		0xD5, // display clock divide ratio / oscillator frequency
		0xD6, // zoom in (SSD1306B)
		0xD9, // pre-charge period
		0xDA, // COM pins hardware configuration
		0xDB: // VCOMH deselect level
		return 1, true
	case 0x21, // column address window
		0x22, // page address window
		0xA3: // vertical scroll area
		return 2, true
	case 0x26, 0x27: // continuous horizontal scroll setup
		return 6, true
	case 0x29, 0x2A: // continuous vertical and horizontal scroll setup
		return 5, true
	case 0x2C, 0x2D: // one-column horizontal content scroll (SSD1306B)
		return 6, true
	case 0x2E, 0x2F, // deactivate / activate scroll
		0xA0, 0xA1, // segment remap
		0xA4, 0xA5, // entire display on: resume / force
		0xA6, 0xA7, // normal / inverse display
		0xAE, 0xAF, // display off / on
		0xC0, 0xC8, // COM output scan direction
		0xE3: // no operation
		return 0, true
	}
	return 0, false
}

// commandByte feeds one byte received with D/C low. d.mu is held.
func (d *Device) commandByte(b byte) {
	d.stats.CommandBytes++
	if len(d.pending) == 0 {
		n, ok := argCount(b)
		if !ok {
			d.stats.UnknownCommands++
			if len(d.stats.Unknown) == maxUnknown {
				d.stats.Unknown = append(d.stats.Unknown[:0], d.stats.Unknown[1:]...)
			}
			d.stats.Unknown = append(d.stats.Unknown, b)
			d.log.Warn("unknown SSD1306 command", "command", hexByte(b))
			return
		}
		if n > 0 {
			d.pending = append(d.pending[:0], b)
			return
		}
		d.execute(b, nil)
		return
	}
	d.pending = append(d.pending, b)
	n, _ := argCount(d.pending[0])
	if len(d.pending) == n+1 {
		op, args := d.pending[0], d.pending[1:]
		d.execute(op, args)
		d.pending = d.pending[:0]
	}
}

// abortPending drops a command whose arguments did not all arrive before data
// did. d.mu is held.
func (d *Device) abortPending() {
	if len(d.pending) == 0 {
		return
	}
	d.stats.AbortedCommands++
	d.log.Warn("SSD1306 command cut short by data", "command", hexByte(d.pending[0]), "args", len(d.pending)-1)
	d.pending = d.pending[:0]
}

// invalid counts an argument the controller rejects. d.mu is held.
func (d *Device) invalid(op, arg byte) {
	d.stats.InvalidArguments++
	d.log.Warn("invalid SSD1306 argument", "command", hexByte(op), "arg", hexByte(arg))
}

// execute applies a complete command. d.mu is held.
func (d *Device) execute(op byte, args []byte) {
	d.stats.Commands++
	st := &d.st
	switch {
	case op <= 0x0F:
		d.pageCol = d.pageCol&0xF0 | int(op&0x0F)
		st.Column = d.pageCol
		return
	case op <= 0x1F:
		// The high nibble has 3 bits: columns 0 to 127.
		d.pageCol = d.pageCol&0x0F | int(op&0x07)<<4
		st.Column = d.pageCol
		return
	case op >= 0x40 && op <= 0x7F:
		st.StartLine = int(op & 0x3F)
		return
	case op >= 0xB0 && op <= 0xB7:
		st.Page = int(op & 0x07)
		return
	}
	switch op {
	case 0x20:
		if args[0]&0x03 == 3 {
			d.invalid(op, args[0])
			return
		}
		st.Addressing = AddressingMode(args[0] & 0x03)
	case 0x21:
		st.ColumnStart, st.ColumnEnd = int(args[0]&0x7F), int(args[1]&0x7F)
		st.Column = st.ColumnStart
	case 0x22:
		st.PageStart, st.PageEnd = int(args[0]&0x07), int(args[1]&0x07)
		st.Page = st.PageStart
	case 0x81:
		st.Contrast = args[0]
	case 0x8D:
		st.ChargePump = args[0]&0x04 != 0
	case 0xA8:
		if args[0]&0x3F < 15 {
			d.invalid(op, args[0])
			return
		}
		st.Multiplex = int(args[0]&0x3F) + 1
	case 0xD3:
		st.DisplayOffset = int(args[0] & 0x3F)
	case 0xD5:
		st.ClockDivide = args[0]
	case 0xD9:
		st.Precharge = args[0]
	case 0xDA:
		st.COMPins = args[0]
	case 0xDB:
		st.VCOMHDeselect = args[0]
	case 0x2E:
		st.Scrolling = false
	case 0x2F:
		st.Scrolling = true
	case 0xA0, 0xA1:
		st.SegmentRemap = op == 0xA1
	case 0xA4, 0xA5:
		st.EntireDisplayOn = op == 0xA5
	case 0xA6, 0xA7:
		st.Inverted = op == 0xA7
	case 0xAE, 0xAF:
		st.DisplayOn = op == 0xAF
	case 0xC0, 0xC8:
		st.COMScanReversed = op == 0xC8
	}
	// The remaining commands (scroll setup, vertical scroll area, IREF, zoom,
	// NOP) are accepted and have no effect on the emulated glass.
}

// dataByte writes one byte to GDDRAM at the pointer and advances it the way
// the addressing mode says. d.mu is held.
func (d *Device) dataByte(b byte) {
	d.stats.DataBytes++
	st := &d.st
	d.ram[st.Page][st.Column] = b
	switch st.Addressing {
	case Horizontal:
		st.Column++
		if st.Column > st.ColumnEnd || st.Column >= ramColumns {
			st.Column = st.ColumnStart
			st.Page++
			if st.Page > st.PageEnd || st.Page >= ramPages {
				st.Page = st.PageStart
			}
		}
	case Vertical:
		st.Page++
		if st.Page > st.PageEnd || st.Page >= ramPages {
			st.Page = st.PageStart
			st.Column++
			if st.Column > st.ColumnEnd || st.Column >= ramColumns {
				st.Column = st.ColumnStart
			}
		}
	case Page:
		st.Column++
		if st.Column >= ramColumns {
			st.Column = d.pageCol
		}
	}
}

// decode decodes received bytes, as commands or as data. d.mu is held.
func (d *Device) decode(w []byte, data bool) {
	d.stats.Bytes += len(w)
	if d.inReset {
		d.stats.IgnoredBytes += len(w)
		return
	}
	if data {
		d.abortPending()
		for _, b := range w {
			d.dataByte(b)
		}
		return
	}
	for _, b := range w {
		d.commandByte(b)
	}
}

func hexByte(b byte) string {
	const digits = "0123456789ABCDEF"
	return "0x" + string([]byte{digits[b>>4], digits[b&0x0F]})
}

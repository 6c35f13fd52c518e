package system

import (
	"fmt"
	"io"
	"time"

	"github.com/totpbox/totpbox/display"
	"github.com/totpbox/totpbox/enroll"
)

// SnapshotConfig describes one frame to render.
type SnapshotConfig struct {
	// Panel is a display size name.
	Panel string
	// View is code, qr or secret (or any display view name).
	View string
	// URI is the account's otpauth URI.
	URI string
	// At is the time the code is computed for.
	At time.Time
	// Scale multiplies each pixel.
	Scale int
	// Server and PairingCode fill the pairing view.
	Server, PairingCode string
}

// Snapshot renders one frame of an account through the same path the
// appliance uses — display.Render, then periph's driver on the emulated SPI
// bus (ssd1306 on an SSD1306, waveshare2in13v2 on the 2.13" e-paper's
// SSD1675B) — and writes the frame read back from the emulated controller
// as PNG. The 2.9" e-paper size, which no periph driver drives, is written
// from memory.
func Snapshot(w io.Writer, o SnapshotConfig) error {
	size, err := display.SizeByName(o.Panel)
	if err != nil {
		return err
	}
	view, err := display.ParseView(o.View)
	if err != nil {
		return err
	}
	if view == display.ViewPairing && (o.Server == "" || o.PairingCode == "") {
		return fmt.Errorf("the pairing view needs a server address and a pairing code")
	}
	if view == display.ViewPairing && o.URI == "" {
		o.URI = "otpauth://totp/pairing?secret=AAAAAAAAAAAAAAAA" // the view shows no account
	}
	k, err := enroll.ParseURI(o.URI)
	if err != nil {
		return err
	}
	if o.Scale < 1 || o.Scale > 16 {
		return fmt.Errorf("scale %d must be from 1 to 16", o.Scale)
	}
	step := enroll.Step(k, o.At)
	left := enroll.StepStart(k, step+1).Sub(o.At)
	scr := display.Screen{
		View: view, Issuer: k.Issuer, Label: k.Account,
		Code: enroll.CodeAt(k, step), Remaining: left.Round(time.Second), Period: k.Period,
		Index: 0, Count: 1, Time: display.TimeSynced,
		URI: k.URI(), Secret: k.SecretBase32(),
		Reason: "no NTP reply yet", User: k.Account, DeviceName: k.Issuer,
		Title: k.Issuer, Message: k.Account,
		Server: o.Server, PairingCode: o.PairingCode,
	}
	if left <= 5*time.Second {
		scr.NextCode = enroll.CodeAt(k, step+1)
	}
	panel, err := openPanel(o.Panel, size, fastEPD)
	if err != nil {
		return err
	}
	defer panel.Close()
	scr.Paper = panel.paper
	if err := panel.Draw(display.Render(scr, size)); err != nil {
		return err
	}
	return panel.png(w, o.Scale)
}

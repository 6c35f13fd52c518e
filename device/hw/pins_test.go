package hw

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestCheckPins: with no GPIO pins registered (not a Pi) nothing is
// checked and nothing fails; once the host has pins, every pin the panel
// and buttons name that it lacks is reported, each under its key.
func TestCheckPins(t *testing.T) {
	panel := PanelConfig{Kind: KindEPD2in13v2, DC: "CP_DC", CS: NoPin, Reset: "CP_RST", Busy: "CP_NOBUSY"}
	buttons := ButtonsConfig{Next: "CP_NEXT", OK: "CP_NOOK", Back: NoPin}
	if len(gpioreg.All()) == 0 {
		if checked, err := CheckPins(panel, buttons); checked || err != nil {
			t.Fatalf("CheckPins on a host without GPIO = %v, %v; want not checked and no error", checked, err)
		}
	}
	for _, n := range []string{"CP_DC", "CP_RST", "CP_NEXT"} {
		if err := gpioreg.Register(&gpiotest.Pin{N: n, Num: -1}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gpioreg.Unregister(n) })
	}
	checked, err := CheckPins(panel, buttons)
	if !checked || err == nil {
		t.Fatalf("CheckPins = %v, %v; want checked and two missing pins", checked, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `panel.busy: no GPIO pin named "CP_NOBUSY"`) ||
		!strings.HasPrefix(lines[1], `buttons.ok: no GPIO pin named "CP_NOOK"`) {
		t.Errorf("CheckPins = %v, want panel.busy and buttons.ok named", err)
	}
	panel.Busy, buttons.OK = "CP_DC", "CP_NEXT" // present (shared pins are Validate's business)
	if checked, err := CheckPins(panel, buttons); !checked || err != nil {
		t.Errorf("CheckPins with every pin present = %v, %v", checked, err)
	}
}

package hw

import (
	"strings"
	"testing"
)

// TestCheckSharedPins: a pin that the panel and a button both use is
// reported, naming both keys (issue 22, item 7); distinct pins pass.
func TestCheckSharedPins(t *testing.T) {
	panel := PanelConfig{DC: "GPIO25", Reset: "GPIO24", Busy: "GPIO17"}
	ok := ButtonsConfig{Next: "GPIO20", OK: "GPIO21", Back: NoPin}
	if err := CheckSharedPins(panel, ok); err != nil {
		t.Errorf("CheckSharedPins(distinct pins) = %v", err)
	}
	bad := ButtonsConfig{Next: "GPIO25", OK: "gpio17", Back: NoPin}
	err := CheckSharedPins(panel, bad)
	for _, want := range []string{`buttons.next: pin "GPIO25" already used by panel.dc`, `buttons.ok: pin "gpio17" already used by panel.busy`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSharedPins(shared pins) = %v, want %q", err, want)
		}
	}
}

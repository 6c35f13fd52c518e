package system

import (
	"image"
	"testing"
	"time"

	"github.com/totpbox/totpbox/display"
)

// TestEPaperFrameFromBus draws a rendered screen on the simulator's 2.13"
// e-paper (periph's waveshare2in13v2 driver on the emulated SSD1675B) and
// reads the frame back from the emulated glass: it is the rendered image,
// pixel for pixel, and the controller understood every command.
func TestEPaperFrameFromBus(t *testing.T) {
	size, err := display.SizeByName("epd-250x122")
	if err != nil {
		t.Fatal(err)
	}
	p, err := openPanel("epd-250x122", size, fastEPD)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.epd == nil || !p.paper {
		t.Fatalf("epd-250x122 opened as %s (paper %v), want the emulated e-paper controller", p, p.paper)
	}
	for i, scr := range []display.Screen{
		{View: display.ViewCode, Issuer: "ACME", Label: "alice", Code: "123456", Remaining: 20 * time.Second, Period: 30 * time.Second, Count: 1, Time: display.TimeSynced, Paper: true},
		{View: display.ViewCode, Issuer: "ACME", Label: "alice", Code: "123456", Remaining: 19 * time.Second, Period: 30 * time.Second, Count: 1, Time: display.TimeSynced, Paper: true},
	} {
		img := display.Render(scr, size)
		if err := p.Draw(img); err != nil {
			t.Fatalf("Draw %d: %v", i, err)
		}
		got := p.frame()
		if got.Bounds() != img.Bounds() {
			t.Fatalf("frame %d is %v, want %v", i, got.Bounds(), img.Bounds())
		}
		diff := 0
		for y := range size.Y {
			for x := range size.X {
				if lit(got, x, y) != lit(img, x, y) {
					diff++
				}
			}
		}
		if diff != 0 {
			t.Errorf("frame %d read back from the glass differs from the rendered image in %d pixels", i, diff)
		}
	}
	st := p.epd.Stats()
	if st.UnknownCommands != 0 || st.FullRefreshes != 1 || st.PartialRefreshes != 1 {
		t.Errorf("controller stats %+v, want no unknown command, 1 full and 1 partial refresh", st)
	}
}

func lit(img image.Image, x, y int) bool {
	r, _, _, _ := img.At(x, y).RGBA()
	return r >= 0x8000
}

package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/internal/testkit"
	"github.com/totpbox/totpbox/sim/epaper"
)

// TestRunOnEmulatedEPaper runs totpd with a Waveshare 2.13" V3 e-paper:
// periph's waveshare2in13v3 driver, opened by name from the config, on the
// SSD1680 emulated on the SPI bus. The code view reaches the glass, drawn
// as dark ink on paper, and on shutdown the panel is cleared to white and
// put in deep sleep.
func TestRunOnEmulatedEPaper(t *testing.T) {
	e := newEmulated(t, "TOTPDEPD")
	em := epaper.New(epaper.Config{
		Controller: epaper.SSD1680, Name: "TOTPDEPDV3", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// BUSY falls at once: this test is about the wiring, not the timing.
		Timing: epaper.Timing{FramePeriod: time.Microsecond, SoftReset: time.Microsecond, Analog: time.Microsecond},
	})
	if err := em.Register("TOTPDEPDV3"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Unregister("TOTPDEPDV3") })
	i, j := strings.Index(e.yaml, "panel:\n"), strings.Index(e.yaml, "buttons:\n")
	e.yaml = e.yaml[:i] + "panel:\n  kind: " + hw.KindEPD2in13v3 + "\n  port: TOTPDEPDV3\n  dc: " + em.DC().Name() +
		"\n  cs: " + em.CS().Name() + "\n  reset: " + em.RST().Name() + "\n  busy: " + em.BUSY().Name() + "\n" + e.yaml[j:]
	cfg := e.config(t, "")
	if !cfg.Panel.Paper() {
		t.Fatalf("config %+v is not e-paper", cfg.Panel)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, cfg.NewLogger(os.Stderr)) }()

	// Ink on paper: a code view leaves most of the glass white.
	testkit.WaitFor(t, 20*time.Second, "a frame on the e-paper glass", func() bool {
		ink := inkPixels(em)
		return em.Stats().FullRefreshes >= 1 && ink > 400 && ink < 122*250/2
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the stop signal")
	}
	if ink := inkPixels(em); ink != 0 {
		t.Errorf("%d pixels of ink left on the glass after shutdown; want it cleared", ink)
	}
	st := em.State()
	if !st.DeepSleep {
		t.Error("controller not in deep sleep after shutdown")
	}
	if s := em.Stats(); s.UnknownCommands != 0 || s.ExtraBytes != 0 {
		t.Errorf("controller saw unknown commands %x or extra bytes: %+v", s.Unknown, s)
	}
}

func inkPixels(em *epaper.Device) int {
	f := em.Frame()
	n := 0
	for y := range f.Rect.Dy() {
		for x := range f.Rect.Dx() {
			if !f.BitAt(x, y) {
				n++
			}
		}
	}
	return n
}

package hw

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"

	"github.com/totpbox/totpbox/sim/epaper"
)

var (
	emuMu  sync.Mutex
	emuSeq int
)

// emulatedEPD registers an emulated e-paper controller for kind (the V2's
// SSD1675B or the V3's SSD1680) on periph's registries, and returns it with
// a config that opens it by name, as the daemon opens the HAT.
func emulatedEPD(t *testing.T, kind string) (*epaper.Device, PanelConfig) {
	t.Helper()
	emuMu.Lock()
	emuSeq++
	name := fmt.Sprintf("EMUEPD%d", emuSeq)
	emuMu.Unlock()
	chip := epaper.SSD1680
	if kind == KindEPD2in13v2 {
		chip = epaper.SSD1675B
	}
	em := epaper.New(epaper.Config{Controller: chip, Name: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := em.Register(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Unregister(name) })
	return em, PanelConfig{
		Kind: kind, Port: name, DC: em.DC().Name(), CS: em.CS().Name(), Reset: em.RST().Name(), Busy: em.BUSY().Name(),
	}
}

// glassTurn is the orientation docs/hardware.md promises: with panel.rotate
// r, the glass, turned clockwise by glassTurn[r] from its native portrait
// (the controller's gate 0 on top, source 0 on the left), shows the
// picture upright and unmirrored.
var glassTurn = map[int]int{0: 270, 90: 180, 180: 90, 270: 0}

// asymmetric returns a picture that no turn or mirror maps onto itself.
func asymmetric(r image.Rectangle) *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(r)
	w := r.Dx()
	for y := range r.Dy() {
		for x := range w {
			ink := (x < 24 && y < 12) || (y < 3 && x < w/2) || x == 2*y || (x*5+y*3)%13 == 0
			img.SetBit(x, y, image1bit.Bit(!ink))
		}
	}
	return img
}

func sameImage(got, want *image1bit.VerticalLSB) error {
	if got.Rect.Size() != want.Rect.Size() {
		return fmt.Errorf("size %v, want %v", got.Rect.Size(), want.Rect.Size())
	}
	n, first := 0, image.Point{}
	for y := range want.Rect.Dy() {
		for x := range want.Rect.Dx() {
			if got.BitAt(x, y) != want.BitAt(x, y) {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	if n > 0 {
		return fmt.Errorf("%d pixels differ, the first at %v", n, first)
	}
	return nil
}

// TestEPDOrientation draws through periph's driver on the emulated
// controller, for both panel versions, landscape and portrait, and reads
// the glass back: turned as docs/hardware.md says, it is the picture drawn.
func TestEPDOrientation(t *testing.T) {
	for _, kind := range []string{KindEPD2in13v2, KindEPD2in13v3} {
		for _, rotate := range []int{0, 90, 180, 270} {
			t.Run(fmt.Sprintf("%s/rotate%d", kind, rotate), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					em, cfg := emulatedEPD(t, kind)
					cfg.Rotate = rotate
					p, err := OpenPanel(cfg)
					if err != nil {
						t.Fatalf("OpenPanel: %v", err)
					}
					defer p.Close()
					img := asymmetric(p.Bounds())
					if err := p.Draw(img); err != nil {
						t.Fatalf("Draw: %v", err)
					}
					got, err := epaper.Rotate(em.Frame(), glassTurn[rotate])
					if err != nil {
						t.Fatal(err)
					}
					if err := sameImage(got, img); err != nil {
						t.Errorf("glass turned %d°: %v", glassTurn[rotate], err)
					}
					if st := em.Stats(); st.UnknownCommands != 0 || st.ExtraBytes != 0 {
						t.Errorf("controller saw unknown commands %x or extra bytes: %+v", st.Unknown, st)
					}
				})
			})
		}
	}
}

// TestEPDFullRefreshEvery counts, on the controller, the refreshes a run
// of changing frames causes: a full one first, then partial ones, and a
// full one after every FullRefreshEvery partial ones against ghosting.
func TestEPDFullRefreshEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		em, cfg := emulatedEPD(t, KindEPD2in13v2)
		cfg.FullRefreshEvery = 3
		p, err := OpenPanel(cfg)
		if err != nil {
			t.Fatalf("OpenPanel: %v", err)
		}
		defer p.Close()
		var kinds []string
		for i := range 9 {
			img := asymmetric(p.Bounds())
			img.SetBit(100+i, 60, !img.BitAt(100+i, 60))
			before := em.Stats()
			start := time.Now()
			if err := p.Draw(img); err != nil {
				t.Fatalf("Draw %d: %v", i, err)
			}
			d := em.Stats().Sub(before)
			switch {
			case d.FullRefreshes == 1 && d.PartialRefreshes == 0:
				kinds = append(kinds, "full")
			case d.FullRefreshes == 0 && d.PartialRefreshes == 1:
				kinds = append(kinds, "partial")
			default:
				kinds = append(kinds, fmt.Sprintf("%d+%d", d.FullRefreshes, d.PartialRefreshes))
			}
			if held := time.Since(start); held < d.BusyTime {
				t.Errorf("Draw %d returned after %v, before BUSY fell (%v)", i, held, d.BusyTime)
			}
			if got, err := epaper.Rotate(em.Frame(), glassTurn[0]); err != nil || sameImage(got, img) != nil {
				t.Errorf("Draw %d: glass does not show the frame", i)
			}
		}
		want := "full partial partial partial full partial partial partial full"
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("refreshes = %s, want %s", got, want)
		}
	})
}

// TestEPDBusyStuck holds BUSY high: a draw fails with an error naming the
// line after EPDBusyTimeout instead of hanging, a Resilient panel goes
// down and keeps reopening, and once the line works again it is back with
// the latest frame on the glass.
func TestEPDBusyStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		em, cfg := emulatedEPD(t, KindEPD2in13v3)
		var mu sync.Mutex
		events := map[PanelEvent]int{}
		r, err := OpenResilient(cfg, ResilientConfig{
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnEvent: func(e PanelEvent) { mu.Lock(); events[e]++; mu.Unlock() },
		})
		if err != nil {
			t.Fatalf("OpenResilient: %v", err)
		}
		defer r.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		// Let Run settle on its channel: a goroutine waiting on the panel's
		// lock while a draw waits on BUSY would stop the bubble's clock.
		synctest.Wait()

		img := asymmetric(r.Bounds())
		if err := r.Draw(img); err != nil {
			t.Fatalf("Draw: %v", err)
		}
		em.HoldBusy(true)
		start := time.Now()
		next := asymmetric(r.Bounds())
		next.SetBit(5, 100, !next.BitAt(5, 100))
		err = r.Draw(next)
		if err == nil || !strings.Contains(err.Error(), "still high after 10s") {
			t.Fatalf("Draw with BUSY stuck = %v, want an error saying the busy line is still high after 10s", err)
		}
		if waited := time.Since(start); waited > 2*EPDBusyTimeout {
			t.Errorf("Draw gave up after %v, want about %v", waited, EPDBusyTimeout)
		}
		if r.Up() {
			t.Fatal("panel still up after BUSY stuck")
		}
		if err := r.Draw(next); !errors.Is(err, ErrPanelDown) {
			t.Errorf("Draw while down = %v, want ErrPanelDown", err)
		}
		time.Sleep(time.Minute) // Run keeps trying; each open times out
		if r.Up() {
			t.Fatal("panel reopened while BUSY is still stuck")
		}
		em.HoldBusy(false)
		time.Sleep(time.Minute)
		if !r.Up() {
			t.Fatal("panel not back a minute after BUSY works again")
		}
		got, _ := epaper.Rotate(em.Frame(), glassTurn[0])
		if err := sameImage(got, next); err != nil {
			t.Errorf("after reopening, the glass does not show the latest frame: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if events[PanelFailed] != 1 || events[PanelOpenFailed] < 1 || events[PanelReopened] != 1 {
			t.Errorf("events %v, want 1 failed, some open_failed, 1 reopened", events)
		}
		cancel()
		<-done
	})
}

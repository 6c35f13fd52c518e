package system

import (
	"context"
	"image"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/sim/epaper"
)

// timedPanel measures how long each draw holds the loop.
type timedPanel struct {
	hw.Panel
	mu    sync.Mutex
	draws int
	held  time.Duration
	max   time.Duration
	after func() // called after each draw
}

func (p *timedPanel) Draw(img image.Image) error {
	start := time.Now()
	err := p.Panel.Draw(img)
	d := time.Since(start)
	p.mu.Lock()
	p.draws++
	p.held += d
	p.max = max(p.max, d)
	p.mu.Unlock()
	if p.after != nil {
		p.after()
	}
	return err
}

type oneAccount []vault.Account

func (a oneAccount) List() []vault.Account { return a }

// TestEPaperCodeViewHour runs the appliance loop for an hour of virtual
// time on the code view of a 2.13" e-paper (periph's driver on the emulated
// controller, with its real BUSY timing), and counts what the bus and the
// glass do: refreshes, full and partial, bytes, and how long BUSY holds the
// loop. The figures are in docs/BENCHMARKS.md (measured without -race,
// under which it runs ten minutes). It checks that no more than
// full_refresh_every partial refreshes ever pass without a full one.
func TestEPaperCodeViewHour(t *testing.T) {
	for _, tc := range []struct {
		kind string
		chip epaper.Controller
	}{{hw.KindEPD2in13v2, epaper.SSD1675B}, {hw.KindEPD2in13v3, epaper.SSD1680}} {
		t.Run(tc.kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
				name := nextBusName("HOUREPD")
				em := epaper.New(epaper.Config{Controller: tc.chip, Name: name, Logger: quiet})
				if err := em.Register(name); err != nil {
					t.Fatal(err)
				}
				defer em.Unregister(name)
				cfg := hw.PanelConfig{Kind: tc.kind, Port: name, DC: em.DC().Name(), CS: em.CS().Name(),
					Reset: em.RST().Name(), Busy: em.BUSY().Name()}.WithDefaults()
				r, err := hw.OpenResilient(cfg, hw.ResilientConfig{Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var worst int
				p := &timedPanel{Panel: r, after: func() {
					worst = max(worst, em.Stats().PartialsSinceFull)
				}}
				k, err := enroll.NewKey("ACME", "alice")
				if err != nil {
					t.Fatal(err)
				}
				app, err := device.New(device.Config{
					Panel: p, Clock: clock.System{}, Accounts: oneAccount{{ID: "a", Issuer: "ACME", Label: "alice", Key: k, State: vault.Active}},
					Paper: cfg.Paper(), Logger: quiet,
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				var wg sync.WaitGroup
				wg.Go(func() { r.Run(ctx) })
				synctest.Wait() // Run waits on its channel before the first draw
				start, before := time.Now(), em.Stats()
				wg.Go(func() { app.Run(ctx) })
				run := time.Hour
				if raceEnabled {
					run = 10 * time.Minute // the figures are per hour either way
				}
				time.Sleep(run)
				cancel()
				wg.Wait()
				elapsed := time.Since(start)
				st := em.Stats().Sub(before)
				p.mu.Lock()
				defer p.mu.Unlock()
				perHour := func(n int) float64 { return float64(n) * float64(time.Hour) / float64(elapsed) }
				t.Logf("%s (%s), code view, %v: %d frames drawn; %.0f refreshes/h (%.0f full, %.0f partial); %.0f bytes/h on the bus (%.0f to RAM); BUSY high %v/h; the loop held %v in draws (%.0f%%), %v at most",
					tc.kind, tc.chip, elapsed.Round(time.Second), p.draws,
					perHour(st.FullRefreshes+st.PartialRefreshes), perHour(st.FullRefreshes), perHour(st.PartialRefreshes),
					perHour(st.Bytes), perHour(st.RAMBytes), time.Duration(perHour(int(st.BusyTime))).Round(time.Second),
					p.held.Round(time.Second), 100*float64(p.held)/float64(elapsed), p.max.Round(time.Millisecond))
				if p.draws < 60 || st.FullRefreshes < 1 || st.PartialRefreshes < 1 {
					t.Errorf("%d draws, %d full and %d partial refreshes in an hour; want a frame per second or so, and both kinds", p.draws, st.FullRefreshes, st.PartialRefreshes)
				}
				if st.UnknownCommands != 0 {
					t.Errorf("unknown commands %x", st.Unknown)
				}
				if tc.chip == epaper.SSD1675B && worst > cfg.FullRefreshEvery {
					t.Errorf("%d partial refreshes without a full one; want at most full_refresh_every = %d", worst, cfg.FullRefreshEvery)
				}
			})
		})
	}
}

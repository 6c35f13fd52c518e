package hw

import (
	"context"
	"errors"
	"github.com/totpbox/totpbox/internal/testkit"
	"image"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

func TestResilientSurvivesUnplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, cfg := simSSD1306(t, 128, 64, 0)
		r, err := OpenResilient(cfg, ResilientConfig{Logger: testkit.Quiet()})
		if err != nil {
			t.Fatalf("OpenResilient: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		img1 := testFrame(r.Bounds(), 1)
		if err := r.Draw(img1); err != nil {
			t.Fatalf("Draw: %v", err)
		}
		sameFrame(t, "first frame", d.Frame(), img1)

		d.Unplug()
		if err := r.Draw(testFrame(r.Bounds(), 2)); err == nil || errors.Is(err, ErrPanelDown) {
			t.Fatalf("Draw on an unplugged bus = %v, want the bus error", err)
		}
		img3 := testFrame(r.Bounds(), 3)
		start := time.Now()
		if err := r.Draw(img3); !errors.Is(err, ErrPanelDown) {
			t.Fatalf("Draw while down = %v, want ErrPanelDown", err)
		}
		if err := r.SetContrast(0x40); !errors.Is(err, ErrPanelDown) {
			t.Fatalf("SetContrast while down = %v, want ErrPanelDown", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("calls while down took %s, want no wait", time.Since(start))
		}

		// Reopen attempts fail while unplugged.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if r.Up() {
			t.Fatal("Up() = true while unplugged")
		}

		d.Plug()
		time.Sleep(time.Minute)
		synctest.Wait()
		if !r.Up() {
			t.Fatal("Up() = false a minute after replug")
		}
		sameFrame(t, "frame after replug", d.Frame(), img3)
		if got := d.State().Contrast; got != 0x40 {
			t.Errorf("contrast after replug = %#x, want the 0x40 set while down", got)
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
}

func TestOpenResilientConfigErrors(t *testing.T) {
	_, cfg := simSSD1306(t, 128, 64, 0)
	cfg.DC = "NOSUCHPIN"
	_, err := OpenResilient(cfg, ResilientConfig{Logger: testkit.Quiet()})
	var cerr *ConfigError
	if !errors.As(err, &cerr) || cerr.Key != "panel.dc" {
		t.Fatalf("OpenResilient() = %v, want a *ConfigError for panel.dc", err)
	}
}

func TestOpenResilientStartsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, cfg := simSSD1306(t, 128, 32, 0)
		d.Unplug()
		r, err := OpenResilient(cfg, ResilientConfig{Logger: testkit.Quiet()})
		if err != nil {
			t.Fatalf("OpenResilient with the panel unplugged = %v, want nil: it is not a config error", err)
		}
		if r.Up() {
			t.Fatal("Up() = true with the panel unplugged")
		}
		if got := r.Bounds(); got != image.Rect(0, 0, 128, 32) {
			t.Errorf("Bounds() while down = %v, want the configured 128x32", got)
		}
		img := testFrame(r.Bounds(), 4)
		if err := r.Draw(img); !errors.Is(err, ErrPanelDown) {
			t.Fatalf("Draw = %v, want ErrPanelDown", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			<-done
		}()
		d.Plug()
		time.Sleep(time.Second)
		synctest.Wait()
		sameFrame(t, "frame once plugged", d.Frame(), img)
	})
}

// fakePanel records calls and fails when told to.
type fakePanel struct {
	mu     sync.Mutex
	fail   error
	draws  int
	halts  int
	closed bool
}

func (p *fakePanel) String() string          { return "fake" }
func (p *fakePanel) Bounds() image.Rectangle { return image.Rect(0, 0, 8, 16) }
func (p *fakePanel) call(n *int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	if n != nil {
		*n++
	}
	return nil
}
func (p *fakePanel) Draw(image.Image) error    { return p.call(&p.draws) }
func (p *fakePanel) Refresh(image.Image) error { return p.call(&p.draws) }
func (p *fakePanel) SetContrast(uint8) error   { return p.call(nil) }
func (p *fakePanel) Halt() error               { return p.call(&p.halts) }
func (p *fakePanel) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

func TestResilientBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			delays []time.Duration
			opens  int
			panels []*fakePanel
		)
		opened := make(chan struct{}, 10)
		open := func() (Panel, error) {
			mu.Lock()
			defer mu.Unlock()
			opens++
			if opens <= 5 {
				return nil, errors.New("bus error")
			}
			p := &fakePanel{}
			panels = append(panels, p)
			opened <- struct{}{}
			return p, nil
		}
		sleep := func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, d)
			return ctx.Err()
		}
		r := NewResilient(image.Rect(0, 0, 8, 16), open, ResilientConfig{
			Logger: testkit.Quiet(), MinBackoff: time.Second, MaxBackoff: 4 * time.Second, Sleep: sleep,
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.Run(ctx)
		}()
		<-opened
		synctest.Wait() // Run has installed the panel

		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
		mu.Lock()
		if !slices.Equal(delays, want) {
			t.Errorf("backoff delays %v, want %v", delays, want)
		}
		delays = nil
		mu.Unlock()

		// A halted panel stays halted across a reopen, and gets the latest frame.
		if err := r.Draw(image1bit.NewVerticalLSB(image.Rect(0, 0, 8, 16))); err != nil {
			t.Fatal(err)
		}
		if err := r.Halt(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		first := panels[0]
		mu.Unlock()
		first.mu.Lock()
		first.fail = errors.New("bus error")
		first.mu.Unlock()
		if err := r.SetContrast(3); err == nil {
			t.Fatal("SetContrast on a failing panel = nil, want its error")
		}
		<-opened
		synctest.Wait() // Run has installed the panel
		mu.Lock()
		if !slices.Equal(delays, []time.Duration{time.Second}) {
			t.Errorf("delays after a failure on an open panel %v, want the minimum again", delays)
		}
		second := panels[1]
		mu.Unlock()
		if !first.closed {
			t.Error("failed panel not closed")
		}
		second.mu.Lock()
		if second.draws != 1 || second.halts != 1 {
			t.Errorf("reopened panel got %d draws and %d halts, want 1 and 1", second.draws, second.halts)
		}
		second.mu.Unlock()

		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		<-done // Run stops once the panel is closed
		cancel()
		if err := r.Draw(image.NewGray(image.Rect(0, 0, 8, 16))); err == nil || errors.Is(err, ErrPanelDown) {
			t.Errorf("Draw after Close = %v, want a closed error", err)
		}
	})
}

func TestResilientReportsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			events []PanelEvent
			opens  int
		)
		panel := &fakePanel{}
		open := func() (Panel, error) {
			mu.Lock()
			defer mu.Unlock()
			opens++
			if opens == 1 || opens == 3 {
				return nil, errors.New("bus error")
			}
			panel.mu.Lock()
			panel.fail = nil
			panel.mu.Unlock()
			return panel, nil
		}
		r := NewResilient(image.Rect(0, 0, 8, 16), open, ResilientConfig{
			Logger: testkit.Quiet(), MinBackoff: time.Second,
			OnEvent: func(e PanelEvent) {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			},
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.Run(ctx)
		}()
		time.Sleep(2 * time.Second) // first reopen after 1 s succeeds
		synctest.Wait()
		panel.mu.Lock()
		panel.fail = errors.New("bus error")
		panel.mu.Unlock()
		if err := r.Draw(image.NewGray(r.Bounds())); err == nil {
			t.Fatal("Draw on a failing panel = nil, want its error")
		}
		time.Sleep(10 * time.Second) // one failed reopen, then a good one
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := []PanelEvent{PanelOpenFailed, PanelReopened, PanelFailed, PanelOpenFailed, PanelReopened}
		if !slices.Equal(events, want) {
			t.Errorf("events %v, want %v", events, want)
		}
	})
}

func TestPanelEventString(t *testing.T) {
	for _, tc := range []struct {
		e    PanelEvent
		want string
	}{{PanelFailed, "failed"}, {PanelOpenFailed, "open_failed"}, {PanelReopened, "reopened"}, {0, "unknown"}} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("PanelEvent(%d).String() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

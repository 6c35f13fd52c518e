package hw

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/totpbox/totpbox/internal/wallclock"
	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// ErrPanelDown is returned, wrapped, by a Resilient panel's methods while the
// panel is being reopened. The call was remembered and is applied once the
// panel is back.
var ErrPanelDown = errors.New("panel down")

// PanelEvent is something that happened to a Resilient panel, reported to
// ResilientConfig.OnEvent for metrics.
type PanelEvent int

const (
	// PanelFailed means a bus error took an open panel down.
	PanelFailed PanelEvent = iota + 1
	// PanelOpenFailed means an attempt to open or reopen the panel failed.
	PanelOpenFailed
	// PanelReopened means the panel was reopened and its state restored.
	PanelReopened
)

// String returns "failed", "open_failed" or "reopened".
func (e PanelEvent) String() string {
	switch e {
	case PanelFailed:
		return "failed"
	case PanelOpenFailed:
		return "open_failed"
	case PanelReopened:
		return "reopened"
	}
	return "unknown"
}

// ResilientConfig tunes a Resilient panel; the zero value is ready to use.
type ResilientConfig struct {
	// Logger receives bus errors and reopen attempts. Nil means
	// slog.Default().
	Logger *slog.Logger
	// MinBackoff is the wait before the first reopen attempt; it doubles
	// after each failed attempt up to MaxBackoff. Zero means 250ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Sleep waits for d or until ctx is done, returning ctx.Err() then. Nil
	// means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnEvent, when set, is called on each PanelEvent. It runs on the
	// goroutine that saw the event, possibly with the panel's lock held,
	// so it must be quick and must not call the panel. Nil means none.
	OnEvent func(PanelEvent)
}

// Resilient is a Panel that survives its hardware: a bus error is logged,
// the panel closed and reopened by Run with exponential backoff, and the
// latest frame, contrast and halt state restored. While the panel is down
// its methods return at once with ErrPanelDown, so the appliance never stops
// because a panel was unplugged. It is safe for concurrent use.
type Resilient struct {
	bounds image.Rectangle
	open   func() (Panel, error)
	log    *slog.Logger
	min    time.Duration
	max    time.Duration
	sleep  func(ctx context.Context, d time.Duration) error
	event  func(PanelEvent)
	down   chan struct{} // signalled when the panel goes down

	mu          sync.Mutex
	p           Panel // nil while down
	name        string
	latest      *image1bit.VerticalLSB // nil until the first Draw
	contrast    uint8
	hasContrast bool
	halted      bool
	closed      bool
}

// NewResilient returns a panel of the given bounds that opens itself with
// open. It tries once at once; if that fails the panel starts down and Run
// keeps trying.
func NewResilient(bounds image.Rectangle, open func() (Panel, error), opts ResilientConfig) *Resilient {
	r := newResilient(bounds, open, opts)
	r.adopt(open())
	return r
}

// OpenResilient opens the panel cfg describes as a Resilient panel. It
// returns an error only for mistakes in cfg (a *ConfigError, unknown port
// and pin names included); a panel that does not answer starts down and Run
// keeps trying.
func OpenResilient(cfg PanelConfig, opts ResilientConfig) (*Resilient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := OpenPanel(cfg)
	if cerr := (*ConfigError)(nil); errors.As(err, &cerr) {
		return nil, err
	}
	r := newResilient(cfg.Bounds(), func() (Panel, error) { return OpenPanel(cfg) }, opts)
	r.adopt(p, err)
	return r, nil
}

func newResilient(bounds image.Rectangle, open func() (Panel, error), opts ResilientConfig) *Resilient {
	r := &Resilient{
		bounds: bounds,
		open:   open,
		log:    opts.Logger,
		min:    opts.MinBackoff,
		max:    opts.MaxBackoff,
		sleep:  opts.Sleep,
		event:  opts.OnEvent,
		down:   make(chan struct{}, 1),
		name:   "panel",
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.min <= 0 {
		r.min = 250 * time.Millisecond
	}
	if r.max <= 0 {
		r.max = 30 * time.Second
	}
	if r.max < r.min {
		r.max = r.min
	}
	if r.sleep == nil {
		r.sleep = wallclock.Sleep
	}
	if r.event == nil {
		r.event = func(PanelEvent) {}
	}
	return r
}

// adopt installs the result of the first open.
func (r *Resilient) adopt(p Panel, err error) {
	if err != nil {
		r.log.Warn("panel not ready; will retry", "err", err)
		r.event(PanelOpenFailed)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p, r.name = p, p.String()
}

// Run reopens the panel whenever it is down, waiting MinBackoff, then twice
// as long after each failure, up to MaxBackoff. It returns nil when ctx is
// done or the panel closed; it does not close the panel itself.
func (r *Resilient) Run(ctx context.Context) error {
	delay := r.min
	for {
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			return nil
		}
		if r.Up() {
			select {
			case <-ctx.Done():
				return nil
			case <-r.down:
			}
			delay = r.min
			continue
		}
		if r.sleep(ctx, delay) != nil {
			return nil
		}
		if err := r.reopen(); err != nil {
			delay = min(delay*2, r.max)
			r.log.Warn("panel still down", "err", err, "retry_in", delay)
			r.event(PanelOpenFailed)
			continue
		}
		r.log.Info("panel back", "panel", r.String())
		r.event(PanelReopened)
		delay = r.min
	}
}

// reopen opens the panel and restores its state.
func (r *Resilient) reopen() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("%s: %w", r.name, errClosed)
	}
	if r.p != nil {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()

	// Opening may take long (an e-paper's reset takes most of a second), so
	// it happens without the lock; only Run and NewResilient open.
	p, err := r.open()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		p.Close()
		return fmt.Errorf("%s: %w", r.name, errClosed)
	}
	if err := r.restore(p); err != nil {
		p.Close()
		return err
	}
	r.p, r.name = p, p.String()
	return nil
}

// restore brings a freshly opened panel to the state last asked for.
// r.mu is held.
func (r *Resilient) restore(p Panel) error {
	if r.hasContrast {
		if err := p.SetContrast(r.contrast); err != nil {
			return err
		}
	}
	if r.latest != nil {
		if err := p.Draw(r.latest); err != nil {
			return err
		}
	}
	if r.halted {
		return p.Halt()
	}
	return nil
}

// fail takes the panel down after a bus error and wakes Run. r.mu is held.
func (r *Resilient) fail(op string, err error) error {
	r.log.Error("panel error; reopening", "op", op, "err", err)
	r.event(PanelFailed)
	if cerr := r.p.Close(); cerr != nil {
		r.log.Debug("closing failed panel", "err", cerr)
	}
	r.p = nil
	select {
	case r.down <- struct{}{}:
	default:
	}
	return err
}

// Up reports whether the panel is open.
func (r *Resilient) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p != nil
}

// String names the panel, or says it is down.
func (r *Resilient) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return r.name + " (down)"
	}
	return r.name
}

// Bounds returns the panel's size, known even while it is down.
func (r *Resilient) Bounds() image.Rectangle { return r.bounds }

// do runs op on the panel, or reports ErrPanelDown. r.mu is held.
func (r *Resilient) do(name string, op func(p Panel) error) error {
	if r.closed {
		return fmt.Errorf("%s: %w", r.name, errClosed)
	}
	if r.p == nil {
		return fmt.Errorf("%s: %w", r.name, ErrPanelDown)
	}
	if err := op(r.p); err != nil {
		return r.fail(name, err)
	}
	return nil
}

// Draw shows img, remembering it to draw again after a reopen.
func (r *Resilient) Draw(img image.Image) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := toFrame(&r.latest, r.bounds, img)
	r.halted = false
	return r.do("draw", func(p Panel) error { return p.Draw(f) })
}

// Refresh shows img redrawing every pixel, remembering it.
func (r *Resilient) Refresh(img image.Image) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := toFrame(&r.latest, r.bounds, img)
	r.halted = false
	return r.do("refresh", func(p Panel) error { return p.Refresh(f) })
}

// SetContrast sets and remembers the contrast.
func (r *Resilient) SetContrast(level uint8) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.contrast, r.hasContrast = level, true
	return r.do("contrast", func(p Panel) error { return p.SetContrast(level) })
}

// Halt blanks the panel until the next Draw, and keeps it blank across
// reopens.
func (r *Resilient) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halted = true
	return r.do("halt", Panel.Halt)
}

// Close closes the panel; later calls fail and Run stops reopening.
func (r *Resilient) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.p == nil {
		return nil
	}
	err := r.p.Close()
	r.p = nil
	select {
	case r.down <- struct{}{}:
	default:
	}
	return err
}

var _ Panel = (*Resilient)(nil)

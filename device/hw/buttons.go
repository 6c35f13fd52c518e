package hw

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Button is one of the appliance's buttons.
type Button uint8

// The appliance's buttons.
const (
	// Next shows the next account.
	Next Button = iota + 1
	// OK reveals a hidden code or accepts an offer.
	OK
	// Back goes back or rejects an offer.
	Back
)

func (b Button) String() string {
	switch b {
	case Next:
		return "next"
	case OK:
		return "ok"
	case Back:
		return "back"
	}
	return fmt.Sprintf("Button(%d)", uint8(b))
}

// ParseButton returns the button named name ("next", "ok" or "back").
func ParseButton(name string) (Button, error) {
	for _, b := range []Button{Next, OK, Back} {
		if b.String() == name {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown button %q; allowed: next, ok, back", name)
}

// Event is one debounced press.
type Event struct {
	Button Button
	// At is when the press was recognised.
	At time.Time
}

// ButtonsOptions tunes Buttons; the zero value is ready to use.
type ButtonsOptions struct {
	// Logger receives pin setup problems. Nil means slog.Default().
	Logger *slog.Logger
	// Now stamps events. Nil means time.Now.
	Now func() time.Time
	// Poll is how long one wait for an edge lasts before Run checks whether
	// it should stop; it bounds how long Run takes to return. Zero means
	// 250ms. Never 0 or -1 on the pins themselves: periph's GPIO drivers
	// disagree on whether those mean "forever" or "don't wait".
	Poll time.Duration
}

// Buttons turns falling edges on pull-up GPIO lines (a button shorts its
// line to ground) into debounced press events.
type Buttons struct {
	pins     map[Button]gpio.PinIn
	debounce time.Duration
	poll     time.Duration
	now      func() time.Time
	log      *slog.Logger
	events   chan Event
}

// OpenButtons looks up the pins cfg names in gpioreg and returns the buttons
// on them. Errors in cfg, unknown pin names included, are *ConfigError.
func OpenButtons(cfg ButtonsConfig, opts ButtonsOptions) (*Buttons, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pins := map[Button]gpio.PinIn{}
	for _, p := range cfg.pins() {
		pin := gpioreg.ByName(p.name)
		if pin == nil {
			return nil, configErr(p.key, "no GPIO pin named %q; allowed: %s", p.name, knownPins())
		}
		pins[p.b] = pin
	}
	return NewButtons(pins, cfg.Debounce, opts)
}

// NewButtons returns the buttons on the given pins, each set to input with
// pull-up and falling-edge detection. A press counts when a burst of edges
// has been followed by debounce of quiet and the line then reads low: bounces
// on press and on release never count twice, and a line that only reports
// falling edges (as the Pi's does) works as well as one that reports both.
func NewButtons(pins map[Button]gpio.PinIn, debounce time.Duration, opts ButtonsOptions) (*Buttons, error) {
	if debounce <= 0 {
		return nil, fmt.Errorf("hw: debounce %s must be positive", debounce)
	}
	b := &Buttons{
		pins:     pins,
		debounce: debounce,
		poll:     opts.Poll,
		now:      opts.Now,
		log:      opts.Logger,
		events:   make(chan Event, 16),
	}
	if b.poll <= 0 {
		b.poll = 250 * time.Millisecond
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	for btn, pin := range pins {
		if err := pin.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("hw: button %s on %s: %w", btn, pin, err)
		}
	}
	return b, nil
}

// Events returns the channel presses arrive on. It is never closed.
func (b *Buttons) Events() <-chan Event { return b.events }

// Run watches the pins until ctx is done, then returns nil after at most
// one poll interval.
func (b *Buttons) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for btn, pin := range b.pins {
		wg.Go(func() { b.watch(ctx, btn, pin) })
	}
	wg.Wait()
	return nil
}

// maxBounces bounds the edges a press may take to settle.
const maxBounces = 64

func (b *Buttons) watch(ctx context.Context, btn Button, pin gpio.PinIn) {
	for ctx.Err() == nil {
		if !pin.WaitForEdge(b.poll) {
			continue
		}
		// Let the contacts settle: wait for debounce without an edge.
		for range maxBounces {
			if !pin.WaitForEdge(b.debounce) {
				break
			}
		}
		if pin.Read() != gpio.Low {
			continue // a release, or a glitch
		}
		select {
		case b.events <- Event{Button: btn, At: b.now()}:
		case <-ctx.Done():
			return
		}
	}
}

// NewVirtualButton returns a gpiotest pin that behaves like a button wired
// to ground with a pull-up: it reads high until Press. Register it with
// gpioreg.Register to open it by name with OpenButtons.
func NewVirtualButton(name string) *gpiotest.Pin {
	return &gpiotest.Pin{N: name, Num: -1, Fn: "IN", L: gpio.High, EdgesChan: make(chan gpio.Level, 16)}
}

// Press presses a virtual button for hold, then releases it: the line falls
// with an edge at once and rises without one after hold, as on a GPIO that
// reports falling edges only. hold must be longer than the debounce time for
// the press to count. It returns at once; an error means the pin's edge
// queue is full or missing.
func Press(p *gpiotest.Pin, hold time.Duration) error {
	if p.EdgesChan == nil {
		return fmt.Errorf("hw: virtual button %s has no edge channel", p)
	}
	select {
	case p.EdgesChan <- gpio.Low:
	default:
		return fmt.Errorf("hw: virtual button %s: too many presses queued", p)
	}
	time.AfterFunc(hold, func() { _ = p.Out(gpio.High) })
	return nil
}

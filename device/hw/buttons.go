package hw

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/totpbox/totpbox/device/button"
)

// Buttons turns falling edges on pull-up GPIO lines (a button shorts its
// line to ground) into debounced press events.
type Buttons struct {
	pins     map[button.Button]gpio.PinIn
	debounce time.Duration
	poll     time.Duration
	now      func() time.Time
	log      *slog.Logger
	events   chan button.Event
}

// OpenButtons looks up the pins cfg names in gpioreg and returns the buttons
// on them. Errors in cfg, unknown pin names included, are *ConfigError.
func OpenButtons(cfg ButtonsConfig) (*Buttons, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pins := map[button.Button]gpio.PinIn{}
	for _, p := range cfg.pins() {
		pin := gpioreg.ByName(p.name)
		if pin == nil {
			return nil, configErr(p.key, "no GPIO pin named %q; allowed: %s", p.name, knownPins())
		}
		pins[p.b] = pin
	}
	return NewButtons(pins, cfg)
}

// NewButtons returns the buttons on the given pins (cfg's pin names are
// not used), each set to input with
// pull-up and falling-edge detection. A press counts when a burst of edges
// has been followed by debounce of quiet and the line then reads low: bounces
// on press and on release never count twice, and a line that only reports
// falling edges (as the Pi's does) works as well as one that reports both.
func NewButtons(pins map[button.Button]gpio.PinIn, cfg ButtonsConfig) (*Buttons, error) {
	if cfg.Debounce <= 0 {
		return nil, fmt.Errorf("hw: debounce %s must be positive", cfg.Debounce)
	}
	b := &Buttons{
		pins:     pins,
		debounce: cfg.Debounce,
		poll:     cfg.Poll,
		now:      cfg.Now,
		log:      cfg.Logger,
		events:   make(chan button.Event, 16),
	}
	if b.poll <= 0 {
		b.poll = DefaultButtonsPoll
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
func (b *Buttons) Events() <-chan button.Event { return b.events }

// Run watches the pins until ctx is done, then halts them and returns nil:
// at once where the pin's driver ends a wait for an edge on Halt (the
// Pi's do), else after at most one poll interval.
func (b *Buttons) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for btn, pin := range b.pins {
		wg.Go(func() { b.watch(ctx, btn, pin) })
	}
	<-ctx.Done()
	for btn, pin := range b.pins {
		if err := pin.Halt(); err != nil {
			b.log.Debug("hw: halting button pin", "button", btn, "pin", pin, "err", err)
		}
	}
	wg.Wait()
	return nil
}

// DefaultButtonsPoll is ButtonsConfig.Poll's default. Each poll wakes the
// process once per button, so on an idle appliance it is long: Run halts
// the pins to stop, and the poll only bounds how long that takes with a
// driver whose Halt does not end a wait in progress.
const DefaultButtonsPoll = 2 * time.Second

// maxBounces bounds the edges a press may take to settle.
const maxBounces = 64

func (b *Buttons) watch(ctx context.Context, btn button.Button, pin gpio.PinIn) {
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
		case b.events <- button.Event{Button: btn, At: b.now()}:
		case <-ctx.Done():
			return
		}
	}
}

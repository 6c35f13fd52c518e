package hw

import (
	"context"
	"errors"
	"github.com/totpbox/totpbox/internal/testkit"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/totpbox/totpbox/device/button"
	"github.com/totpbox/totpbox/device/hw/hwtest"
)

const debounce = 30 * time.Millisecond

// runButtons runs b until the returned stop is called; stop waits for Run to
// return, which a synctest bubble needs before it ends.
func runButtons(b *Buttons) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// step is one thing that happens on a button line.
type step struct {
	after time.Duration // wait before it
	edge  gpio.Level    // sent as an edge, unless level is set
	level bool          // set the line to edge without an edge (release on a falling-edge-only GPIO)
}

func TestButtonsDebounce(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		steps []step
		want  int // presses
	}{
		{"clean press", []step{{0, gpio.Low, false}, {200 * ms, gpio.High, true}}, 1},
		{"bouncing press", []step{
			{0, gpio.Low, false}, {2 * ms, gpio.High, false}, {3 * ms, gpio.Low, false},
			{1 * ms, gpio.High, false}, {4 * ms, gpio.Low, false}, {300 * ms, gpio.High, true},
		}, 1},
		{"bouncing release with falling edges", []step{
			{0, gpio.Low, false}, {500 * ms, gpio.High, true},
			{2 * ms, gpio.Low, false}, {1 * ms, gpio.High, true}, {2 * ms, gpio.Low, false}, {1 * ms, gpio.High, true},
		}, 1},
		{"glitch shorter than debounce", []step{{0, gpio.Low, false}, {10 * ms, gpio.High, true}}, 0},
		{"two presses", []step{
			{0, gpio.Low, false}, {100 * ms, gpio.High, true},
			{100 * ms, gpio.Low, false}, {100 * ms, gpio.High, true},
		}, 2},
		{"quick second press without a rising edge", []step{
			{0, gpio.Low, false}, {60 * ms, gpio.High, true},
			{20 * ms, gpio.Low, false}, {60 * ms, gpio.High, true},
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := hwtest.NewButton("T")
				b, err := NewButtons(map[button.Button]gpio.PinIn{button.OK: pin}, ButtonsConfig{Debounce: debounce, Logger: testkit.Quiet()})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- b.Run(ctx) }()
				start := time.Now()
				for _, s := range tt.steps {
					time.Sleep(s.after)
					if s.level {
						pin.Out(s.edge)
					} else {
						pin.EdgesChan <- s.edge
					}
				}
				time.Sleep(time.Second)
				synctest.Wait()
				var got []button.Event
				for len(b.Events()) > 0 {
					got = append(got, <-b.Events())
				}
				if len(got) != tt.want {
					t.Fatalf("got %d presses %v, want %d", len(got), got, tt.want)
				}
				for _, e := range got {
					if e.Button != button.OK || e.At.Before(start) {
						t.Errorf("event %+v, want OK after the start", e)
					}
				}
				cancel()
				// Run returns within one poll interval.
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Run() = %v", err)
					}
				case <-time.After(time.Second):
					t.Error("Run did not return after cancel")
				}
			})
		})
	}
}

func TestButtonsPressHelper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pins := map[button.Button]*hwtest.Button{}
		in := map[button.Button]gpio.PinIn{}
		for _, btn := range []button.Button{button.Next, button.OK, button.Back} {
			pins[btn] = hwtest.NewButton(btn.String())
			in[btn] = pins[btn]
		}
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		b, err := NewButtons(in, ButtonsConfig{Debounce: debounce, Logger: testkit.Quiet(), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		stop := runButtons(b)
		defer stop()
		for _, btn := range []button.Button{button.Back, button.Next, button.OK, button.OK} {
			if err := hwtest.Press(pins[btn], 3*debounce); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * debounce)
			synctest.Wait()
			select {
			case e := <-b.Events():
				if e.Button != btn || !e.At.Equal(now) {
					t.Errorf("event %+v, want %v at %v", e, btn, now)
				}
			default:
				t.Fatalf("no event after pressing %v", btn)
			}
		}
	})
}

func TestOpenButtonsByName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		names := ButtonsConfig{Next: "VBTN_NEXT", OK: "VBTN_OK", Back: NoPin, Debounce: debounce}
		pins := map[string]*hwtest.Button{}
		for _, n := range []string{names.Next, names.OK} {
			pins[n] = hwtest.NewButton(n)
			if err := gpioreg.Register(pins[n]); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = gpioreg.Unregister(n) })
		}
		names.Logger = testkit.Quiet()
		b, err := OpenButtons(names)
		if err != nil {
			t.Fatalf("OpenButtons: %v", err)
		}
		stop := runButtons(b)
		defer stop()
		if err := hwtest.Press(pins["VBTN_OK"], 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if e := <-b.Events(); e.Button != button.OK {
			t.Errorf("event %v, want OK", e.Button)
		}

		bad := names
		bad.Back = "VBTN_MISSING"
		_, err = OpenButtons(bad)
		var cerr *ConfigError
		if !errors.As(err, &cerr) || cerr.Key != "buttons.back" {
			t.Errorf("OpenButtons with an unknown pin = %v, want a *ConfigError for buttons.back", err)
		}
	})
}

// countingPin counts the waits for an edge on a virtual button.
type countingPin struct {
	*hwtest.Button
	waits int
}

func (p *countingPin) WaitForEdge(d time.Duration) bool {
	p.waits++
	return p.Button.WaitForEdge(d)
}

// TestButtonsIdleWakeups: an idle button wakes the process once per poll
// interval at most (what an idle appliance spends on its buttons), and
// Run still returns soon after it is cancelled, not a poll later.
func TestButtonsIdleWakeups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := &countingPin{Button: hwtest.NewButton("T")}
		b, err := NewButtons(map[button.Button]gpio.PinIn{button.OK: pin}, ButtonsConfig{Debounce: debounce, Logger: testkit.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		if max := int(time.Minute/DefaultButtonsPoll) + 1; pin.waits > max {
			t.Errorf("an idle button waited for an edge %d times in a minute, want at most %d", pin.waits, max)
		}
		stopped := time.Now()
		cancel()
		<-done
		if d := time.Since(stopped); d > debounce {
			t.Errorf("Run returned %v after cancel, want within the debounce time (%v)", d, debounce)
		}
	})
}

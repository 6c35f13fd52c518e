// Package hwtest holds virtual buttons for tests and the simulator: gpiotest
// pins that behave like the appliance's buttons, to open with
// hw.OpenButtons. It is kept apart from device/hw so totpd links no test
// code.
package hwtest

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Button is a virtual button: a gpiotest pin that behaves like a button
// wired to ground with a pull-up, whose Halt ends a wait for an edge in
// progress, as the Pi's GPIO drivers' Halt does.
type Button struct{ *gpiotest.Pin }

// NewButton returns a virtual button that reads high until Press. Register
// it with gpioreg.Register to open it by name with hw.OpenButtons.
func NewButton(name string) *Button {
	return &Button{&gpiotest.Pin{N: name, Num: -1, Fn: "IN", L: gpio.High, EdgesChan: make(chan gpio.Level, 16)}}
}

// Halt wakes a WaitForEdge in progress with a rising edge (the line reads
// high: no press), so hw.Buttons stops at once rather than at its next
// poll.
func (b *Button) Halt() error {
	select {
	case b.EdgesChan <- gpio.High:
	default:
	}
	return nil
}

// Press presses a virtual button for hold, then releases it: the line falls
// with an edge at once and rises without one after hold, as on a GPIO that
// reports falling edges only. hold must be longer than the debounce time for
// the press to count. It returns at once; an error means the pin's edge
// queue is full or missing.
func Press(p *Button, hold time.Duration) error {
	if p.EdgesChan == nil {
		return fmt.Errorf("hwtest: virtual button %s has no edge channel", p)
	}
	select {
	case p.EdgesChan <- gpio.Low:
	default:
		return fmt.Errorf("hwtest: virtual button %s: too many presses queued", p)
	}
	time.AfterFunc(hold, func() { _ = p.Out(gpio.High) })
	return nil
}

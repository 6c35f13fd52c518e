package hwtest

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestPressFullQueue(t *testing.T) {
	p := NewButton("FULL")
	var err error
	for range cap(p.EdgesChan) + 1 {
		err = Press(p, time.Millisecond)
	}
	if err == nil {
		t.Error("Press on a full edge queue = nil, want an error")
	}
	if err := Press(&Button{&gpiotest.Pin{N: "NOCHAN"}}, time.Millisecond); err == nil {
		t.Error("Press on a pin without edge channel = nil, want an error")
	}
}

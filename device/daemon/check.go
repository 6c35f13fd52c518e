package daemon

import (
	"errors"
	"fmt"

	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/localapi"
)

// CheckHost reports what Validate cannot tell from the configuration
// alone, on the machine it runs on: an api.socket whose directory other
// users may write (they could bind the socket first and receive what
// totpctl sends), and GPIO pins the panel and buttons name that the host
// lacks, looked up after loading periph's host drivers. Every problem is
// reported, one per line, each naming its key. notes says what could not
// be checked here, such as pins on a machine without GPIO.
func (c Config) CheckHost() (notes []string, err error) {
	var errs []error
	if err := localapi.CheckSocketDir(c.socket()); err != nil {
		errs = append(errs, fmt.Errorf("api.socket: %w", err))
	}
	if err := hw.Init(); err != nil {
		notes = append(notes, fmt.Sprintf("GPIO pins not checked: %v", err))
	} else if checked, err := hw.CheckPins(c.Panel, c.Buttons); err != nil {
		errs = append(errs, err)
	} else if !checked {
		notes = append(notes, "GPIO pins not checked: this machine has no GPIO (not a Raspberry Pi, or its GPIO driver is not loaded)")
	}
	return notes, errors.Join(errs...)
}

package hw

import (
	"errors"

	"periph.io/x/conn/v3/gpio/gpioreg"
)

// gpioPins returns the GPIO pins the panel drives, with their config keys,
// leaving out those not wired.
func (c PanelConfig) gpioPins() []struct{ key, name string } {
	c = c.WithDefaults()
	var all []struct{ key, name string }
	switch c.Kind {
	case KindSSD1306:
		all = []struct{ key, name string }{{"panel.dc", c.DC}, {"panel.reset", c.Reset}}
	case KindEPD2in13v2, KindEPD2in13v3:
		all = []struct{ key, name string }{{"panel.dc", c.DC}, {"panel.cs", c.CS}, {"panel.reset", c.Reset}, {"panel.busy", c.Busy}}
	}
	var out []struct{ key, name string }
	for _, p := range all {
		if p.name != "" && p.name != NoPin {
			out = append(out, p)
		}
	}
	return out
}

// CheckPins reports every GPIO pin the panel and buttons name that the
// host lacks, each a *ConfigError, as OpenPanel and OpenButtons would
// report them one at a time. It reads periph's registry, so call Init
// first. When the registry holds no GPIO pin at all (not a Raspberry Pi,
// or its GPIO driver did not load), nothing can be told: checked is false
// and err nil.
func CheckPins(panel PanelConfig, buttons ButtonsConfig) (checked bool, err error) {
	if len(gpioreg.All()) == 0 {
		return false, nil
	}
	pins := panel.gpioPins()
	for _, p := range buttons.pins() {
		if p.name != "" {
			pins = append(pins, struct{ key, name string }{p.key, p.name})
		}
	}
	var errs []error
	for _, p := range pins {
		if gpioreg.ByName(p.name) == nil {
			errs = append(errs, configErr(p.key, "no GPIO pin named %q; allowed: %s", p.name, knownPins()))
		}
	}
	return true, errors.Join(errs...)
}

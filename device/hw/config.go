// Package hw is the appliance's hardware: its panel (an SSD1306 OLED over SPI
// or I²C, or a Waveshare 2.13" e-paper) and its buttons (GPIO), chosen by
// config and opened by name through periph's registries.
//
// Ports and pins are looked up by name (spireg.Open("SPI0.0"),
// gpioreg.ByName("GPIO25")), so the simulator, which registers an emulated
// SSD1306 and gpiotest pins under names of its own, runs the very code path
// of the Pi. On real hardware call Init first to load periph's host drivers.
package hw

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/totpbox/totpbox/device/button"
)

// Panel kinds, the values of the config key panel.kind.
const (
	// KindSSD1306 is an SSD1306 OLED on 4-wire SPI (port, dc, reset).
	KindSSD1306 = "ssd1306"
	// KindSSD1306I2C is an SSD1306 OLED on I²C (i2c_bus, i2c_address).
	KindSSD1306I2C = "ssd1306-i2c"
	// KindEPD2in13v2 is a Waveshare 2.13" e-paper V2 on SPI (port, dc, cs,
	// reset, busy).
	KindEPD2in13v2 = "epd2in13v2"
	// KindEPD2in13v3 is a Waveshare 2.13" e-paper V3 on SPI (port, dc, cs,
	// reset, busy).
	KindEPD2in13v3 = "epd2in13v3"
)

// Kinds lists the panel kinds in the order errors name them.
var Kinds = []string{KindSSD1306, KindSSD1306I2C, KindEPD2in13v2, KindEPD2in13v3}

// NoPin is the pin name meaning "not wired" for an optional pin.
const NoPin = "none"

// I²C addresses an SSD1306 answers to, with SA0 low and high.
const (
	SSD1306Address    = 0x3C
	SSD1306AltAddress = 0x3D
)

// The 2.13" e-paper's glass in landscape.
const (
	epdLong  = 250
	epdShort = 122
)

// ConfigError is an error in the configuration: it names the key, so it is
// reported as is and the daemon exits instead of retrying.
type ConfigError struct {
	// Key is the config key, for example "panel.dc".
	Key string
	// Msg says what is wrong and what is allowed.
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

func configErr(key, format string, args ...any) *ConfigError {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// PanelConfig chooses and wires the panel. It is read by viper from the keys
// under "panel."; the zero value of a field means the kind's default (see
// WithDefaults).
type PanelConfig struct {
	// Kind is one of Kinds. Empty means ssd1306.
	Kind string `mapstructure:"kind"`
	// Port is the SPI port's name in spireg, for example "SPI0.0".
	Port string `mapstructure:"port"`
	// DC is the data/command GPIO pin's name (SPI kinds).
	DC string `mapstructure:"dc"`
	// Reset is the reset GPIO pin's name; "none" when the module resets
	// itself (ssd1306 only).
	Reset string `mapstructure:"reset"`
	// CS is the chip-select GPIO pin the e-paper driver toggles besides the
	// port's own; "none" when the port's chip select is enough.
	CS string `mapstructure:"cs"`
	// Busy is the e-paper's busy GPIO pin's name.
	Busy string `mapstructure:"busy"`
	// Width and Height are the panel size in pixels as the appliance draws
	// it, after rotation.
	Width  int `mapstructure:"width"`
	Height int `mapstructure:"height"`
	// Rotate turns the picture by 0 or 180 degrees (ssd1306), or 0, 90, 180
	// or 270 (e-paper: 0 and 180 are landscape, 90 and 270 portrait).
	Rotate int `mapstructure:"rotate"`
	// Contrast is the OLED's brightness, 0 to 255. E-paper has none.
	Contrast int `mapstructure:"contrast"`
	// Invert swaps light and dark: on an OLED by the controller, on e-paper
	// in software. Images follow image1bit's colour model, where On is white:
	// a lit pixel on an OLED, bare paper on e-paper.
	Invert bool `mapstructure:"invert"`
	// Sequential selects the sequential COM pin configuration some 128x32
	// OLED modules need (every other row missing without it).
	Sequential bool `mapstructure:"sequential"`
	// I2CBus is the I²C bus's name in i2creg, for example "I2C1"; empty means
	// the first bus.
	I2CBus string `mapstructure:"i2c_bus"`
	// I2CAddress is the SSD1306's I²C address: 0x3C or 0x3D.
	I2CAddress int `mapstructure:"i2c_address"`
	// FullRefreshEvery is how many partial refreshes an e-paper makes before
	// a full one that clears ghosting.
	FullRefreshEvery int `mapstructure:"full_refresh_every"`
}

// DefaultPanelConfig returns the configuration used when none is given: a
// 128x64 SSD1306 on SPI0.0 wired as luma.oled documents it (DC on GPIO24,
// reset on GPIO25), at full contrast.
func DefaultPanelConfig() PanelConfig {
	return PanelConfig{Kind: KindSSD1306, Contrast: 255}.WithDefaults()
}

// WithDefaults returns c with the kind's defaults in place of zero values.
// The e-paper pins default to the Waveshare HAT's wiring (DC GPIO25, CS
// GPIO8, reset GPIO17, busy GPIO24).
func (c PanelConfig) WithDefaults() PanelConfig {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Kind, KindSSD1306)
	switch c.Kind {
	case KindSSD1306:
		def(&c.Port, "SPI0.0")
		def(&c.DC, "GPIO24")
		def(&c.Reset, "GPIO25")
	case KindSSD1306I2C:
		if c.I2CAddress == 0 {
			c.I2CAddress = SSD1306Address
		}
	case KindEPD2in13v2, KindEPD2in13v3:
		def(&c.Port, "SPI0.0")
		def(&c.DC, "GPIO25")
		def(&c.CS, "GPIO8")
		def(&c.Reset, "GPIO17")
		def(&c.Busy, "GPIO24")
		if c.FullRefreshEvery == 0 {
			c.FullRefreshEvery = 300
		}
	}
	if c.Width == 0 && c.Height == 0 {
		switch c.Kind {
		case KindSSD1306, KindSSD1306I2C:
			c.Width, c.Height = 128, 64
		case KindEPD2in13v2, KindEPD2in13v3:
			c.Width, c.Height = epdLong, epdShort
			if c.Rotate == 90 || c.Rotate == 270 {
				c.Width, c.Height = epdShort, epdLong
			}
		}
	}
	return c
}

// Bounds returns the panel's size as the appliance draws it.
func (c PanelConfig) Bounds() image.Rectangle {
	c = c.WithDefaults()
	return image.Rect(0, 0, c.Width, c.Height)
}

// isOLED reports whether the kind is an SSD1306.
func (c PanelConfig) isOLED() bool { return c.Kind == KindSSD1306 || c.Kind == KindSSD1306I2C }

// Paper reports whether the panel is e-paper, which shows dark ink on
// light paper: the one answer the daemon and the simulator ask. An empty
// kind is the default SSD1306.
func (c PanelConfig) Paper() bool {
	return c.Kind == KindEPD2in13v2 || c.Kind == KindEPD2in13v3
}

// Validate reports every problem in c, with its defaults applied, each a
// *ConfigError naming the key and the allowed values, joined one per line.
// An unknown kind is reported alone: the other keys depend on it.
func (c PanelConfig) Validate() error {
	c = c.WithDefaults()
	if !slices.Contains(Kinds, c.Kind) {
		return configErr("panel.kind", "unknown panel %q; allowed: %s", c.Kind, strings.Join(Kinds, ", "))
	}
	var errs []error
	add := func(key, format string, args ...any) { errs = append(errs, configErr(key, format, args...)) }
	if c.isOLED() {
		if c.Width < 8 || c.Width > 128 || c.Width%8 != 0 {
			add("panel.width", "%d not supported by %s; allowed: 8 to 128 in steps of 8", c.Width, c.Kind)
		}
		if c.Height < 16 || c.Height > 64 || c.Height%8 != 0 {
			add("panel.height", "%d not supported by %s; allowed: 16 to 64 in steps of 8", c.Height, c.Kind)
		}
		if c.Rotate != 0 && c.Rotate != 180 {
			add("panel.rotate", "%d not supported by %s; allowed: 0, 180", c.Rotate, c.Kind)
		}
		if c.Contrast < 0 || c.Contrast > 255 {
			add("panel.contrast", "%d out of range; allowed: 0 to 255", c.Contrast)
		}
	} else {
		var w, h int
		switch c.Rotate {
		case 0, 180:
			w, h = epdLong, epdShort
		case 90, 270:
			w, h = epdShort, epdLong
		default:
			add("panel.rotate", "%d not supported by %s; allowed: 0, 90, 180, 270", c.Rotate, c.Kind)
		}
		if w != 0 && (c.Width != w || c.Height != h) {
			add("panel.width", "%dx%d not supported by %s at rotate %d; allowed: %dx%d", c.Width, c.Height, c.Kind, c.Rotate, w, h)
		}
		if c.FullRefreshEvery < 1 {
			add("panel.full_refresh_every", "%d out of range; allowed: 1 or more", c.FullRefreshEvery)
		}
	}
	switch c.Kind {
	case KindSSD1306I2C:
		if c.I2CAddress != SSD1306Address && c.I2CAddress != SSD1306AltAddress {
			add("panel.i2c_address", "%#x not an SSD1306 address; allowed: 0x3c, 0x3d", c.I2CAddress)
		}
	default:
		for _, p := range []struct{ key, name string }{{"panel.port", c.Port}, {"panel.dc", c.DC}} {
			if p.name == NoPin {
				add(p.key, "required by %s", c.Kind)
			}
		}
	}
	if !c.isOLED() {
		for _, p := range []struct{ key, name string }{{"panel.reset", c.Reset}, {"panel.busy", c.Busy}} {
			if p.name == NoPin {
				add(p.key, "required by %s", c.Kind)
			}
		}
	}
	return errors.Join(errs...)
}

// ButtonsConfig wires the buttons. It is read by viper from the keys under
// "buttons.". A button whose pin is "none" is not wired.
type ButtonsConfig struct {
	// Next is the GPIO pin's name of the button that shows the next account.
	Next string `mapstructure:"next"`
	// OK is the GPIO pin's name of the button that reveals or accepts.
	OK string `mapstructure:"ok"`
	// Back is the GPIO pin's name of the button that goes back or rejects.
	Back string `mapstructure:"back"`
	// Debounce is how long a line must be quiet before its level counts:
	// 1ms to 500ms.
	Debounce time.Duration `mapstructure:"debounce"`

	// Logger receives pin setup problems. Nil means slog.Default().
	Logger *slog.Logger `mapstructure:"-"`
	// Now stamps events. Nil means time.Now.
	Now func() time.Time `mapstructure:"-"`
	// Poll is how long one wait for an edge lasts before Run checks whether
	// it should stop; it bounds how long Run takes to return where the
	// pin's Halt does not end the wait. Zero means DefaultButtonsPoll. Never 0 or -1 on the pins themselves: periph's GPIO drivers
	// disagree on whether those mean "forever" or "don't wait".
	Poll time.Duration `mapstructure:"-"`
}

// DefaultButtonsConfig returns the wiring of the three keys of Waveshare's
// OLED HATs (next GPIO20, OK GPIO21, back GPIO16) with a 30 ms debounce.
func DefaultButtonsConfig() ButtonsConfig {
	return ButtonsConfig{Next: "GPIO20", OK: "GPIO21", Back: "GPIO16", Debounce: 30 * time.Millisecond}
}

// pins returns the wired buttons with their config keys.
func (c ButtonsConfig) pins() []struct {
	key  string
	name string
	b    button.Button
} {
	var out []struct {
		key  string
		name string
		b    button.Button
	}
	for _, p := range []struct {
		key  string
		name string
		b    button.Button
	}{{"buttons.next", c.Next, button.Next}, {"buttons.ok", c.OK, button.OK}, {"buttons.back", c.Back, button.Back}} {
		if p.name != NoPin {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports every problem in c, each a *ConfigError naming the
// key, joined one per line.
func (c ButtonsConfig) Validate() error {
	var errs []error
	if c.Debounce < time.Millisecond || c.Debounce > 500*time.Millisecond {
		errs = append(errs, configErr("buttons.debounce", "%s out of range; allowed: 1ms to 500ms", c.Debounce))
	}
	seen := map[string]string{}
	for _, p := range c.pins() {
		if p.name == "" {
			errs = append(errs, configErr(p.key, "missing pin name; allowed: a GPIO pin name such as GPIO20, or %q", NoPin))
			continue
		}
		if other, ok := seen[p.name]; ok {
			errs = append(errs, configErr(p.key, "pin %q already used by %s", p.name, other))
			continue
		}
		seen[p.name] = p.key
	}
	return errors.Join(errs...)
}

// CheckSharedPins reports each button whose pin the panel uses too (its
// dc, reset, cs or busy line): the button would read the panel's signal,
// or drive it. Each is a *ConfigError naming the button's key and the
// panel's, joined one per line.
func CheckSharedPins(panel PanelConfig, buttons ButtonsConfig) error {
	var errs []error
	panelPins := []struct{ key, name string }{
		{"panel.dc", panel.DC}, {"panel.reset", panel.Reset}, {"panel.cs", panel.CS}, {"panel.busy", panel.Busy},
	}
	for _, b := range buttons.pins() {
		for _, p := range panelPins {
			if p.name != "" && p.name != NoPin && strings.EqualFold(p.name, b.name) {
				errs = append(errs, configErr(b.key, "pin %q already used by %s", b.name, p.key))
			}
		}
	}
	return errors.Join(errs...)
}

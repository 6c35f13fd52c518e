package hw

import (
	"errors"
	"image"
	"strings"
	"testing"
	"time"
)

func TestPanelConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     PanelConfig
		wantKey string // "" for valid
		wantMsg string // a part of the message
	}{
		{"default", DefaultPanelConfig(), "", ""},
		{"zero value is an ssd1306", PanelConfig{}, "", ""},
		{"ssd1306 128x32", PanelConfig{Kind: KindSSD1306, Width: 128, Height: 32}, "", ""},
		{"ssd1306 rotated", PanelConfig{Kind: KindSSD1306, Rotate: 180}, "", ""},
		{"ssd1306 without reset pin", PanelConfig{Kind: KindSSD1306, Reset: NoPin}, "", ""},
		{"i2c 0x3d", PanelConfig{Kind: KindSSD1306I2C, I2CAddress: 0x3D}, "", ""},
		{"epd landscape", PanelConfig{Kind: KindEPD2in13v2}, "", ""},
		{"epd portrait", PanelConfig{Kind: KindEPD2in13v3, Rotate: 270}, "", ""},
		{"unknown kind", PanelConfig{Kind: "st7735"}, "panel.kind", "allowed: ssd1306, ssd1306-i2c, epd2in13v2, epd2in13v3"},
		{"width too wide", PanelConfig{Kind: KindSSD1306, Width: 132, Height: 64}, "panel.width", "allowed: 8 to 128 in steps of 8"},
		{"width not a multiple of 8", PanelConfig{Kind: KindSSD1306, Width: 100, Height: 64}, "panel.width", "100"},
		{"height too tall", PanelConfig{Kind: KindSSD1306I2C, Width: 128, Height: 128}, "panel.height", "allowed: 16 to 64 in steps of 8"},
		{"height 8", PanelConfig{Kind: KindSSD1306, Width: 128, Height: 8}, "panel.height", "8"},
		{"ssd1306 rotate 90", PanelConfig{Kind: KindSSD1306, Rotate: 90}, "panel.rotate", "allowed: 0, 180"},
		{"contrast", PanelConfig{Kind: KindSSD1306, Contrast: 300}, "panel.contrast", "allowed: 0 to 255"},
		{"i2c address", PanelConfig{Kind: KindSSD1306I2C, I2CAddress: 0x27}, "panel.i2c_address", "allowed: 0x3c, 0x3d"},
		{"epd size", PanelConfig{Kind: KindEPD2in13v2, Width: 296, Height: 128}, "panel.width", "allowed: 250x122"},
		{"epd portrait size", PanelConfig{Kind: KindEPD2in13v2, Rotate: 90, Width: 250, Height: 122}, "panel.width", "allowed: 122x250"},
		{"epd rotate 45", PanelConfig{Kind: KindEPD2in13v2, Rotate: 45}, "panel.rotate", "allowed: 0, 90, 180, 270"},
		{"epd full refresh", PanelConfig{Kind: KindEPD2in13v2, FullRefreshEvery: -1}, "panel.full_refresh_every", "allowed: 1 or more"},
		{"epd busy not wired", PanelConfig{Kind: KindEPD2in13v2, Busy: NoPin}, "panel.busy", "required"},
		{"dc not wired", PanelConfig{Kind: KindSSD1306, DC: NoPin}, "panel.dc", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Fatalf("Validate() = %v, want a *ConfigError", err)
			}
			if cerr.Key != tt.wantKey || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate() = %q, want key %s and a message containing %q", err, tt.wantKey, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), tt.wantKey+": ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate() = %q, want one line starting with the key", err)
			}
		})
	}
}

func TestPanelConfigDefaults(t *testing.T) {
	tests := []struct {
		cfg  PanelConfig
		want image.Rectangle
		pins [4]string // dc, reset, cs, busy
	}{
		{PanelConfig{}, image.Rect(0, 0, 128, 64), [4]string{"GPIO24", "GPIO25", "", ""}},
		{PanelConfig{Kind: KindSSD1306, Width: 128, Height: 32}, image.Rect(0, 0, 128, 32), [4]string{"GPIO24", "GPIO25", "", ""}},
		{PanelConfig{Kind: KindEPD2in13v2}, image.Rect(0, 0, 250, 122), [4]string{"GPIO25", "GPIO17", "GPIO8", "GPIO24"}},
		{PanelConfig{Kind: KindEPD2in13v3, Rotate: 90}, image.Rect(0, 0, 122, 250), [4]string{"GPIO25", "GPIO17", "GPIO8", "GPIO24"}},
	}
	for _, tt := range tests {
		c := tt.cfg.WithDefaults()
		if got := c.Bounds(); got != tt.want {
			t.Errorf("%+v: Bounds() = %v, want %v", tt.cfg, got, tt.want)
		}
		if got := [4]string{c.DC, c.Reset, c.CS, c.Busy}; got != tt.pins {
			t.Errorf("%+v: pins dc, reset, cs, busy = %q, want %q", tt.cfg, got, tt.pins)
		}
	}
}

func TestButtonsConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ButtonsConfig
		wantKey string
	}{
		{"default", DefaultButtonsConfig(), ""},
		{"back not wired", ButtonsConfig{Next: "GPIO5", OK: "GPIO6", Back: NoPin, Debounce: 20 * time.Millisecond}, ""},
		{"no debounce", ButtonsConfig{Next: "GPIO5", OK: "GPIO6", Back: "GPIO13"}, "buttons.debounce"},
		{"debounce too long", ButtonsConfig{Next: "GPIO5", OK: "GPIO6", Back: "GPIO13", Debounce: time.Second}, "buttons.debounce"},
		{"missing pin", ButtonsConfig{Next: "GPIO5", Back: "GPIO13", Debounce: 20 * time.Millisecond}, "buttons.ok"},
		{"same pin twice", ButtonsConfig{Next: "GPIO5", OK: "GPIO6", Back: "GPIO5", Debounce: 20 * time.Millisecond}, "buttons.back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var cerr *ConfigError
			if !errors.As(err, &cerr) || cerr.Key != tt.wantKey {
				t.Fatalf("Validate() = %v, want a *ConfigError for %s", err, tt.wantKey)
			}
		})
	}
}

// TestValidateReportsEveryProblem: a panel or buttons config with several
// mistakes reports each of them at once, one line per key, instead of the
// first only.
func TestValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name     string
		validate func() error
		wantKeys []string
	}{
		{"oled", PanelConfig{Kind: KindSSD1306, Width: 100, Height: 8, Rotate: 90, Contrast: 300, DC: NoPin}.Validate,
			[]string{"panel.width", "panel.height", "panel.rotate", "panel.contrast", "panel.dc"}},
		{"epd", PanelConfig{Kind: KindEPD2in13v2, Rotate: 45, FullRefreshEvery: -1, Busy: NoPin, Reset: NoPin}.Validate,
			[]string{"panel.rotate", "panel.full_refresh_every", "panel.reset", "panel.busy"}},
		{"buttons", ButtonsConfig{Next: "GPIO5", OK: "", Back: "GPIO5"}.Validate,
			[]string{"buttons.debounce", "buttons.ok", "buttons.back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tt.wantKeys))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantKeys) {
				t.Fatalf("Validate() = %d lines, want %d:\n%v", len(lines), len(tt.wantKeys), err)
			}
			for i, key := range tt.wantKeys {
				if !strings.HasPrefix(lines[i], key+": ") {
					t.Errorf("line %d = %q, want it to start with %s", i, lines[i], key)
				}
			}
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Errorf("Validate() = %v, want *ConfigError inside", err)
			}
		})
	}
}

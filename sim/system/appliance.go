// Package system runs totpbox's simulator: appliances on emulated hardware
// (periph's real ssd1306 driver on an SSD1306 emulated on the SPI bus,
// buttons on gpiotest pins), their vaults in a data directory, and a page
// and HTTP API to watch and press them.
package system

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/daemon"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/hw/hwtest"
	"github.com/totpbox/totpbox/device/uplink"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/display"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/sim/epaper"
	"github.com/totpbox/totpbox/sim/oled"
	"github.com/totpbox/totpbox/sim/swtpm"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
)

// ApplianceConfig describes one simulated appliance.
type ApplianceConfig struct {
	// Name names the appliance on the page and prefixes its emulated bus
	// and pins.
	Name string
	// Panel is a display size name (display.Sizes). SSD1306 sizes run
	// periph's driver on the emulated bus; larger (e-paper) sizes are
	// rendered straight into memory.
	Panel string
	// Dir holds the appliance's vault and state.
	Dir string
	// Clock gives the appliance's reading.
	Clock clock.Clock
	// Hidden, RevealFor and BlankAfter are as in device.Config.
	Hidden     bool
	RevealFor  time.Duration
	BlankAfter time.Duration
	// Demo adds a few demo accounts when the vault is new.
	Demo bool
	// Server, when set, is the registration server's URL: the appliance
	// pairs with it and syncs its registrations.
	Server string
	// Version is the software version reported to the server.
	Version string
	// OfferLifetime is as in system.Config.
	OfferLifetime time.Duration
	// Logger receives the appliance's logs.
	Logger *slog.Logger
	// TPMDir, when set, holds the appliance's simulated TPM: a swtpm is
	// started with its state there and the appliance runs with secrets
	// auto, as totpd does on a Pi with the module fitted. Empty runs
	// software mode. Keeping it apart from Dir makes a copy of Dir alone
	// the SD-card copy.
	TPMDir string
}

// Appliance is one simulated appliance: the real device loop on an
// emulated panel.
type Appliance struct {
	// Name and Panel are as configured.
	Name, Panel string

	dir    string // as configured
	hidden bool   // codes hidden until OK

	size  image.Point
	panel *simPanel
	vault *vault.Vault
	clock clock.Clock
	asm   *daemon.Appliance // the parts wired as totpd wires them
	// secrets is the appliance's secrets mode; swtpm and tpmSock its simulated
	// TPM, when it has one.
	secrets *daemon.Secrets
	swtpm   *swtpm.Emulator
	tpmSock string
	app     *device.Appliance

	buttons *hw.Buttons
	virtual map[device.Button]*hwtest.Button

	client *uplink.Client // nil without a server
}

// pressDebounce is the virtual buttons' debounce time, and pressTimeout
// how long Press waits for the appliance to handle a press.
const (
	pressDebounce = 10 * time.Millisecond
	pressTimeout  = 5 * time.Second
)

// busSeq numbers emulated buses: periph's registries are process-wide, so
// each appliance (and each test) registers under a fresh name.
var (
	busMu  sync.Mutex
	busSeq int
)

func nextBusName(prefix string) string {
	busMu.Lock()
	defer busMu.Unlock()
	busSeq++
	return fmt.Sprintf("%s%d", prefix, busSeq)
}

// NewAppliance opens the appliance's vault and panel. Run starts it.
func NewAppliance(cfg ApplianceConfig) (*Appliance, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Panel == "" {
		cfg.Panel = "ssd1306-128x64"
	}
	size, err := display.SizeByName(cfg.Panel)
	if err != nil {
		return nil, err
	}
	a := &Appliance{Name: cfg.Name, Panel: cfg.Panel, dir: cfg.Dir, hidden: cfg.Hidden, size: size, clock: cfg.Clock}
	if a.panel, err = openPanel(cfg.Panel, size, epaper.Timing{}); err != nil {
		return nil, err
	}
	if err := a.openTPM(cfg); err != nil {
		return nil, err
	}
	vaultDir := filepath.Join(cfg.Dir, "vault")
	vopts, err := a.secrets.VaultOptions(vault.Config{}, filepath.Join(vaultDir, vault.KeyFileName))
	if err != nil {
		a.closeTPM()
		return nil, err
	}
	v, err := vault.Open(vaultDir, vopts)
	if err != nil {
		a.closeTPM()
		return nil, err
	}
	a.secrets.LogMode()
	a.vault = v
	if cfg.Demo && v.Len() == 0 {
		if err := addDemoAccounts(v); err != nil {
			v.Close()
			a.closeTPM()
			return nil, err
		}
	}
	if err := a.openButtons(); err != nil {
		v.Close()
		a.closeTPM()
		return nil, err
	}
	a.asm, err = daemon.Assemble(daemon.Parts{Panel: a.panel, Buttons: a.buttons, Vault: v, Clock: cfg.Clock, Secrets: a.secrets}, daemon.ApplianceConfig{
		Screen: daemon.ScreenConfig{Hidden: cfg.Hidden, RevealFor: cfg.RevealFor, BlankAfter: cfg.BlankAfter},
		Paper:  a.panel.paper,
		Server: daemon.ServerConfig{URL: cfg.Server, OfferLifetime: cfg.OfferLifetime}, SyncDir: filepath.Join(cfg.Dir, "sync"),
		Version: cfg.Version, Logger: cfg.Logger.With("appliance", cfg.Name),
	})
	if err != nil {
		v.Close()
		a.closeTPM()
		return nil, err
	}
	a.app, a.client = a.asm.Loop(), a.asm.Uplink()
	return a, nil
}

// openButtons makes three virtual buttons (gpiotest pins registered with
// gpioreg) and opens them with hw.OpenButtons, as the daemon opens real
// ones: presses travel the Pi's debouncing code.
func (a *Appliance) openButtons() error {
	prefix := nextBusName("SIMBTN")
	cfg := hw.ButtonsConfig{Debounce: pressDebounce}
	a.virtual = map[device.Button]*hwtest.Button{}
	for _, b := range []device.Button{device.Next, device.OK, device.Back} {
		pin := hwtest.NewButton(prefix + "_" + strings.ToUpper(b.String()))
		if err := gpioreg.Register(pin); err != nil {
			return fmt.Errorf("simulator: registering button pin: %w", err)
		}
		a.virtual[b] = pin
		switch b {
		case device.Next:
			cfg.Next = pin.Name()
		case device.OK:
			cfg.OK = pin.Name()
		case device.Back:
			cfg.Back = pin.Name()
		}
	}
	btns, err := hw.OpenButtons(cfg)
	if err != nil {
		return err
	}
	a.buttons = btns
	return nil
}

// addDemoAccounts fills a new vault with three accounts to look at.
func addDemoAccounts(v *vault.Vault) error {
	for _, d := range []struct{ issuer, account, label string }{
		{"ACME Cloud", "alice@example.com", "ACME Cloud"},
		{"GitHub", "alice", "GitHub"},
		{"Kiosk VPN", "lobby-3", "Kiosk VPN"},
	} {
		k, err := enroll.NewKey(d.issuer, d.account)
		if err != nil {
			return err
		}
		if _, err := v.Add(vault.Account{Issuer: d.issuer, Label: d.label, Key: k, State: vault.Active}); err != nil {
			return err
		}
	}
	return nil
}

// Run runs the appliance until ctx is done, then halts the panel and
// closes it and the vault.
func (a *Appliance) Run(ctx context.Context) error {
	return errors.Join(a.asm.Run(ctx), a.close())
}

// close closes what NewAppliance opened, for an appliance that runs no
// more (or never ran): the panel, the vault, and the swtpm with its
// socket's temporary directory.
func (a *Appliance) close() error {
	a.panel.Close()
	err := a.vault.Close()
	a.closeTPM()
	return err
}

// openTPM starts the appliance's swtpm when cfg.TPMDir is set and swtpm
// is installed, and opens it with secrets auto.
func (a *Appliance) openTPM(cfg ApplianceConfig) error {
	if cfg.TPMDir == "" {
		return nil
	}
	if !swtpm.Available() {
		cfg.Logger.Warn("swtpm is not installed: the appliance runs in software mode", "appliance", cfg.Name)
		return nil
	}
	sock, err := os.MkdirTemp("", "totpsim-tpm") // short: unix socket paths are limited
	if err != nil {
		return err
	}
	a.tpmSock = sock
	if a.swtpm, err = swtpm.Start(cfg.TPMDir, sock); err != nil {
		a.closeTPM()
		return err
	}
	if a.secrets, err = daemon.OpenSecrets(daemon.SecretsAuto, a.swtpm.Addr, cfg.Logger.With("appliance", cfg.Name)); err != nil {
		a.closeTPM()
		return err
	}
	return nil
}

// closeTPM closes the TPM, stops its swtpm and removes its socket's
// directory; a second call does nothing.
func (a *Appliance) closeTPM() {
	a.secrets.Close()
	if a.swtpm != nil {
		a.swtpm.Stop()
		a.swtpm = nil
	}
	if a.tpmSock != "" {
		os.RemoveAll(a.tpmSock)
		a.tpmSock = ""
	}
}

// Secrets returns the appliance's secrets mode: "tpm" or "software".
func (a *Appliance) Secrets() string { return a.secrets.Mode() }

// Press presses virtual button b and waits until the appliance has handled
// the press (or ctx is done, or pressTimeout passes). The virtual finger
// stays on the button until then, so a busy machine cannot turn the press
// into a glitch the debouncer drops.
func (a *Appliance) Press(ctx context.Context, b device.Button) error {
	pin := a.virtual[b]
	before := a.app.Status().Presses
	select {
	case pin.EdgesChan <- gpio.Low:
	default:
		return fmt.Errorf("button %s: too many presses queued", b)
	}
	defer pin.Out(gpio.High) // release
	ctx, cancel := context.WithTimeout(ctx, pressTimeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for a.app.Status().Presses == before {
		select {
		case <-ctx.Done():
			return fmt.Errorf("button %s: press not handled within %v", b, pressTimeout)
		case <-t.C:
		}
	}
	return nil
}

// Size returns the panel size.
func (a *Appliance) Size() image.Point { return a.size }

// Loop returns the appliance's device loop.
func (a *Appliance) Loop() *device.Appliance { return a.app }

// Client returns the appliance's sync client, or nil without a server.
func (a *Appliance) Client() *uplink.Client { return a.client }

// Vault returns the appliance's vault.
func (a *Appliance) Vault() *vault.Vault { return a.vault }

// OLED returns the emulated SSD1306, or nil for e-paper sizes.
func (a *Appliance) OLED() *oled.Device { return a.panel.oled }

// EPaper returns the emulated e-paper controller, or nil for OLED sizes and
// the e-paper sizes kept in memory.
func (a *Appliance) EPaper() *epaper.Device { return a.panel.epd }

// Frame returns what the glass shows now, read back from the emulated
// controller: the SSD1306's GDDRAM, the e-paper's glass.
func (a *Appliance) Frame() image.Image { return a.panel.frame() }

// PNG writes the current frame as PNG, each pixel scale×scale.
func (a *Appliance) PNG(w io.Writer, scale int) error { return a.panel.png(w, scale) }

// State is what /sim/state reports.
type State struct {
	Name  string `json:"name"`
	Panel string `json:"panel"`
	device.Status
	Time  time.Time     `json:"time"`
	Bound time.Duration `json:"bound_ns"`
	Clock string        `json:"clock_reason,omitempty"`
	// TimeAuthenticated reports whether the clock's reading rests on
	// NTS-authenticated servers only: what the appliance reports to the
	// server with each sync.
	TimeAuthenticated bool `json:"time_authenticated"`
	// Code is the code on the screen, when one is shown: the digits the
	// loop computed for the frame it drew (in the TPM for an account held
	// there). The code on the glass is in display.png anyway; the
	// simulator is a development tool, and its tests read the code as a
	// person would.
	Code string `json:"code,omitempty"`
	// Sync is the pairing and sync state; absent without a server.
	Sync *uplink.Status `json:"sync,omitempty"`
	// ClockStatus is the disciplined clock's status (each NTP server's
	// offset, delay, reach and role; frequency; bound), when the appliance
	// runs one.
	ClockStatus *clock.Status `json:"clock,omitempty"`
	// Buttons says what each button does on the screen shown now.
	Buttons Buttons `json:"buttons"`
	// Accounts names the appliance's accounts, in the order NEXT shows
	// them, with their state (active or pending).
	Accounts []AccountState `json:"accounts"`
}

// AccountState is one account as /sim/state lists it: no secret, no code.
type AccountState struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// State returns the appliance's state.
func (a *Appliance) State() State {
	r := a.clock.Now()
	status, code := a.app.Shown()
	st := State{Name: a.Name, Panel: a.Panel, Status: status, Time: r.Time, Bound: r.Bound, Clock: r.Reason, Code: code,
		TimeAuthenticated: r.Authenticated}
	if a.client != nil {
		cs := a.client.Status()
		st.Sync = &cs
	}
	if svc, ok := a.clock.(interface{ Status() clock.Status }); ok {
		cs := svc.Status()
		st.ClockStatus = &cs
	}
	bv := buttonView{Status: st.Status, Hidden: a.hidden}
	st.Accounts = []AccountState{}
	for _, acct := range a.vault.List() {
		st.Accounts = append(st.Accounts, AccountState{Name: acct.Name(), State: acct.State.String()})
		if acct.ID == st.AccountID && acct.State == vault.Pending {
			bv.Pending = true
		}
	}
	if a.client != nil {
		_, _, bv.Pairing = a.client.PairingCode()
	}
	st.Buttons = buttonLabels(bv)
	return st
}

func scaleImage(src image.Image, scale int) image.Image {
	if scale <= 1 {
		return src
	}
	b := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	for y := 0; y < dst.Rect.Dy(); y++ {
		for x := 0; x < dst.Rect.Dx(); x++ {
			dst.Set(x, y, src.At(b.Min.X+x/scale, b.Min.Y+y/scale))
		}
	}
	return dst
}

// memPanel is a panel that keeps the last frame in memory, for sizes no
// emulated controller drives.
type memPanel struct {
	mu     sync.Mutex
	img    *image.Gray
	halted bool
}

func (m *memPanel) String() string          { return "memory panel" }
func (m *memPanel) Bounds() image.Rectangle { return m.img.Rect }
func (m *memPanel) Draw(img image.Image) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := img.Bounds()
	for y := 0; y < m.img.Rect.Dy(); y++ {
		for x := 0; x < m.img.Rect.Dx(); x++ {
			m.img.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	m.halted = false
	return nil
}
func (m *memPanel) Refresh(img image.Image) error { return m.Draw(img) }
func (m *memPanel) SetContrast(uint8) error       { return nil }
func (m *memPanel) Halt() error {
	m.mu.Lock()
	m.halted = true
	m.mu.Unlock()
	return nil
}
func (m *memPanel) Close() error { return nil }
func (m *memPanel) frame() image.Image {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := image.NewGray(m.img.Rect)
	if !m.halted {
		copy(out.Pix, m.img.Pix)
	}
	return out
}

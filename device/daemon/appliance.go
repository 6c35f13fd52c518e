package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/device/uplink"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/display"
)

// Parts are the opened edges an appliance is assembled from. Whoever
// opened them closes them after Run returns: Assemble and Run take no
// ownership.
type Parts struct {
	// Panel receives frames. Required. A panel with a Run(ctx) error method
	// (a *hw.Resilient, which reopens a failed bus) is run while the
	// appliance runs.
	Panel hw.Panel
	// Buttons, when set, are followed while the appliance runs.
	Buttons *hw.Buttons
	// Vault holds the accounts. Required.
	Vault *vault.Vault
	// Clock gives readings to the loop and the sync client. Required. Its
	// owner runs it; a clock with a Status() clock.Status method (a
	// *clock.Service) reports it on the local API.
	Clock clock.Clock
	// Secrets is the secrets mode the vault was opened in, and the TPM;
	// nil means software mode without a TPM.
	Secrets *Secrets
}

// ApplianceConfig configures Assemble. The zero value of each field has the
// meaning its comment gives.
type ApplianceConfig struct {
	// Screen sets how codes are shown.
	Screen ScreenConfig
	// Paper draws dark ink on light, for e-paper panels.
	Paper bool
	// Server is the registration server; without a URL the appliance is
	// standalone.
	Server ServerConfig
	// SyncDir holds the sync client's identity and state. Required with a
	// server URL.
	SyncDir string
	// Socket is the local API's unix socket; empty means no local API.
	Socket string
	// Version is the software version reported to the server and on the
	// local API.
	Version string
	// Logger receives the appliance's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnFrame and OnSync, when set, are called after each frame drawn and
	// each sync request (metrics).
	OnFrame func(device.Status)
	OnSync  func(wait, took time.Duration, err error)
}

// Appliance is one appliance assembled from its parts: the loop, the sync
// client when a server is configured, and the local API when a socket is.
// totpd and the simulator both assemble theirs with Assemble.
type Appliance struct {
	parts  Parts
	log    *slog.Logger
	loop   *device.Appliance
	uplink *uplink.Client // nil when standalone
	api    http.Handler   // nil without a socket
	apiLn  net.Listener
}

// Assemble checks p and cfg and wires the appliance: the sync client
// publishes offers, link and pairing state, the loop consumes them through
// its own interfaces, and the local API reads the vault. Nothing runs
// until Run.
func Assemble(p Parts, cfg ApplianceConfig) (*Appliance, error) {
	switch {
	case p.Panel == nil:
		return nil, errors.New("appliance: no panel")
	case p.Vault == nil:
		return nil, errors.New("appliance: no vault")
	case p.Clock == nil:
		return nil, errors.New("appliance: no clock")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Appliance{parts: p, log: cfg.Logger}
	dcfg := device.Config{
		Panel: p.Panel, Clock: p.Clock, Accounts: p.Vault,
		Hidden: cfg.Screen.Hidden, RevealFor: cfg.Screen.RevealFor, BlankAfter: cfg.Screen.BlankAfter,
		Paper: cfg.Paper, Logger: cfg.Logger, OnFrame: cfg.OnFrame,
	}
	if p.Buttons != nil {
		dcfg.Buttons = p.Buttons
	}
	if cfg.Server.URL != "" {
		c, err := uplink.New(uplink.Config{
			Server: cfg.Server.URL, CAFile: cfg.Server.CAFile, PinSHA256: cfg.Server.PinSHA256,
			StateDir: cfg.SyncDir, Vault: p.Vault, Clock: p.Clock,
			Sealer: p.Secrets.sealer(), Secrets: p.Secrets.Mode,
			Version: cfg.Version, Logger: cfg.Logger, OnSync: cfg.OnSync, OfferLifetime: cfg.Server.OfferLifetime,
		})
		if err != nil {
			return nil, err
		}
		a.uplink = c
		dcfg.Pairing, dcfg.Offers, dcfg.Takeovers, dcfg.Changed = c, offers{c}, takeovers{c}, c.Changed()
		dcfg.Link = func() display.Link { return linkOf(c.Link()) }
	}
	loop, err := device.New(dcfg)
	if err != nil {
		return nil, err
	}
	a.loop = loop
	if cfg.Socket != "" {
		if a.apiLn, err = localapi.Listen(cfg.Socket); err != nil {
			return nil, err
		}
		a.api = a.backend(cfg.Version, cfg.SyncDir).Handler()
	}
	return a, nil
}

// backend is the local API over the assembled parts.
func (a *Appliance) backend(version, syncDir string) *localapi.Backend {
	b := &localapi.Backend{Vault: a.parts.Vault, Logger: a.log, Changed: a.loop.Refresh,
		Status: func() any {
			st := map[string]any{"appliance": a.loop.Status(), "version": version,
				"secrets": a.parts.Secrets.status(a.parts.Vault)}
			if c, ok := a.parts.Clock.(interface{ Status() clock.Status }); ok {
				st["clock"] = c.Status()
			}
			if a.uplink != nil {
				st["sync"] = a.uplink.Status()
			}
			return st
		}}
	if a.uplink != nil {
		b.Pairing = func() any { return a.uplink.Status() }
	}
	b.MigrateSecrets = func() (any, error) {
		st, err := a.parts.Secrets.migrate(a.parts.Vault, syncDir)
		if err == nil {
			a.log.Info("secrets: moved into the TPM")
		}
		return st, err
	}
	return b
}

// Loop returns the appliance's device loop.
func (a *Appliance) Loop() *device.Appliance { return a.loop }

// Uplink returns the sync client, or nil when standalone.
func (a *Appliance) Uplink() *uplink.Client { return a.uplink }

// Run runs the panel, the buttons, the sync client, the local API and the
// loop until ctx is done, then halts the panel. It does not close the
// parts.
func (a *Appliance) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if r, ok := a.parts.Panel.(interface{ Run(context.Context) error }); ok {
		wg.Go(func() { r.Run(ctx) })
	}
	if a.parts.Buttons != nil {
		wg.Go(func() { a.parts.Buttons.Run(ctx) })
	}
	if a.uplink != nil {
		wg.Go(func() { a.uplink.Run(ctx) })
	}
	if a.apiLn != nil {
		wg.Go(func() {
			if err := localapi.Serve(ctx, a.apiLn, a.api); err != nil {
				a.log.Error("local API stopped", "err", err)
			}
		})
	}
	err := a.loop.Run(ctx)
	cancel()
	wg.Wait()
	if herr := a.parts.Panel.Halt(); herr != nil && !errors.Is(herr, hw.ErrPanelDown) {
		a.log.Warn("halting panel", "err", herr)
	}
	if err != nil {
		return fmt.Errorf("appliance loop: %w", err)
	}
	return nil
}

// offers adapts the sync client's offers to the loop's.
type offers struct{ c *uplink.Client }

func (o offers) Open() []device.Offer {
	open := o.c.Offers()
	out := make([]device.Offer, len(open))
	for i, u := range open {
		out[i] = device.Offer{ID: u.ID, User: u.User, DeviceName: u.DeviceName}
		for _, name := range u.Sequence {
			b, err := device.ParseButton(name)
			if err != nil { // proto.OpenOffer checked the names
				out[i].Sequence = nil
				break
			}
			out[i].Sequence = append(out[i].Sequence, b)
		}
	}
	return out
}

func (o offers) Answer(id string, accept bool) error {
	err := o.c.Answer(id, accept)
	if errors.Is(err, uplink.ErrWithdrawn) {
		return fmt.Errorf("%w: %w", device.ErrWithdrawn, err)
	}
	return err
}

// takeovers adapts the sync client's takeover batches to the loop's.
type takeovers struct{ c *uplink.Client }

func (t takeovers) Takeover() (device.Takeover, bool) {
	b, ok := t.c.Takeover()
	return device.Takeover{ID: b.ID, From: b.From, Count: b.Count}, ok
}

func (t takeovers) AnswerTakeover(id string, accept bool) error {
	err := t.c.AnswerTakeover(id, accept)
	if errors.Is(err, uplink.ErrWithdrawn) {
		return fmt.Errorf("%w: %w", device.ErrWithdrawn, err)
	}
	return err
}

// linkOf maps the sync client's link state to the screen's glyph.
func linkOf(l uplink.Link) display.Link {
	switch l {
	case uplink.LinkUp:
		return display.LinkUp
	case uplink.LinkDown:
		return display.LinkDown
	}
	return display.LinkNone
}

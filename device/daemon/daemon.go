package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/vault"
)

// Run runs the appliance until ctx is done: the clock, the panel (re-opened
// with backoff when its bus fails), the buttons, the loop and, when
// metrics.listen is set, the metrics and health endpoint. Started as root
// with run_as set, it opens the hardware and the metrics listener, gives
// the state directory to run_as, and drops to it before opening the vault.
// On return the panel is halted, the vault closed and the drift file
// written. It returns an error only when the appliance cannot start: a
// configuration naming hardware or a user that does not exist, or a vault
// that cannot be opened.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	plan, err := planDrop(os.Geteuid(), cfg.RunAs, userDB{})
	if err != nil {
		return err
	}
	if plan.Warning != "" {
		log.Warn(plan.Warning)
	}
	m := newMetrics(cfg.Version)
	if err := hw.Init(); err != nil {
		return err
	}
	panel, err := hw.OpenResilient(cfg.Panel, hw.ResilientConfig{Logger: log, OnEvent: m.panelEvent})
	if err != nil {
		return err
	}
	defer panel.Close()
	bcfg := cfg.Buttons
	bcfg.Logger = log
	buttons, err := hw.OpenButtons(bcfg)
	if err != nil {
		return err
	}
	sec, err := OpenSecrets(cfg.Secrets, cfg.TPM.Device, log) // before dropping privileges: /dev/tpmrm0 is root:tss 0660
	if err != nil {
		return err
	}
	defer sec.Close()
	var ln net.Listener
	if cfg.Metrics.Listen != "" {
		if ln, err = listenMetrics(cfg.Metrics.Listen); err != nil {
			return err
		}
		defer ln.Close()
	}
	if plan.Drop {
		for _, dir := range stateDirs(cfg) {
			if err := chownTree(dir, plan.ID); err != nil {
				return err
			}
		}
		if err := dropPrivileges(plan.ID); err != nil {
			return err
		}
		log.Info("dropped privileges", "uid", plan.ID.UID, "gid", plan.ID.GID, "groups", plan.ID.Groups)
	}
	vopts, err := sec.VaultOptions(vault.Config{
		KeyFile: cfg.Vault.KeyFile, PassphraseFile: cfg.Vault.PassphraseFile, PassphraseEnv: cfg.Vault.PassphraseEnv,
	}, cfg.keyFile())
	if err != nil {
		return err
	}
	v, err := vault.Open(cfg.vaultDir(), vopts)
	if err != nil {
		return err
	}
	defer v.Close()
	sec.LogMode()
	clkCfg := cfg.Clock
	clkCfg.DriftFile = cfg.driftFile()
	clk, err := clock.New(clkCfg, clock.Env{Logger: log})
	if err != nil {
		return err
	}
	return run(ctx, parts{cfg: cfg, log: log, panel: panel, buttons: buttons, vault: v, clock: clk, metrics: m, metricsLn: ln, secrets: sec})
}

// stateDirs lists the directories totpd writes: the state directory, and
// the vault's and the drift file's when they lie elsewhere.
func stateDirs(cfg Config) []string {
	dirs := []string{cfg.StateDir}
	for _, d := range []string{cfg.vaultDir(), filepath.Dir(cfg.driftFile())} {
		if !within(d, cfg.StateDir) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// parts are the opened edges of a running appliance.
type parts struct {
	cfg     Config
	log     *slog.Logger
	panel   *hw.Resilient
	buttons *hw.Buttons
	vault   *vault.Vault
	clock   *clock.Service
	metrics *metrics
	// metricsLn, when set, serves the metrics and health endpoint.
	metricsLn net.Listener
	// secrets is the secrets mode and the TPM; nil means software.
	secrets *Secrets
}

func run(ctx context.Context, p parts) error {
	app, err := Assemble(Parts{Panel: p.panel, Buttons: p.buttons, Vault: p.vault, Clock: p.clock, Secrets: p.secrets}, ApplianceConfig{
		Screen: p.cfg.Screen, Paper: p.cfg.Panel.Paper(),
		Server: p.cfg.Server, SyncDir: filepath.Join(p.cfg.StateDir, "sync"), Socket: p.cfg.socket(),
		Version: p.cfg.Version, Logger: p.log, OnFrame: p.metrics.frame, OnSync: p.metrics.sync,
	})
	if err != nil {
		return err
	}
	if c := app.Uplink(); c != nil {
		p.metrics.watchSync(c.Status)
	}
	var vaultOpen atomic.Bool
	vaultOpen.Store(true)
	defer vaultOpen.Store(false)
	p.metrics.watch(p.clock, p.panel.Up, p.vault.Len)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if p.metricsLn != nil {
		h := p.metrics.handler(func() []string {
			var why []string
			if !p.panel.Up() {
				why = append(why, "panel down")
			}
			if !vaultOpen.Load() {
				why = append(why, "vault closed")
			}
			return why
		})
		wg.Go(func() { serveMetrics(ctx, p.metricsLn, h, p.log) })
	}
	wg.Go(func() {
		if err := p.clock.Run(ctx); err != nil {
			p.log.Error("clock stopped", "err", err)
		}
	})
	server := "none (standalone)"
	if app.Uplink() != nil {
		server = p.cfg.Server.URL
	}
	p.log.Info("totpd running", "panel", p.panel.String(), "accounts", p.vault.Len(), "vault", p.vault.Path(),
		"socket", p.cfg.socket(), "server", server, "secrets", p.secrets.Mode())
	err = app.Run(ctx)
	cancel()
	wg.Wait()
	p.log.Info("totpd stopped")
	return err
}

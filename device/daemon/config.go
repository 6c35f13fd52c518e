// Package daemon is totpd: it loads the appliance's configuration, opens
// the hardware through periph, and runs the disciplined clock, the vault
// and the appliance loop until it is told to stop.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/uplink"
)

// Config is totpd's configuration: configs/totpd.yaml documents every key.
type Config struct {
	// StateDir holds the vault, the drift file and other state.
	StateDir string `mapstructure:"state_dir"`
	// Log chooses the log format and level.
	Log LogConfig `mapstructure:"log"`
	// Panel and Buttons wire the hardware.
	Panel   hw.PanelConfig   `mapstructure:"panel"`
	Buttons hw.ButtonsConfig `mapstructure:"buttons"`
	// Screen sets how codes are shown.
	Screen ScreenConfig `mapstructure:"screen"`
	// Clock configures the disciplined clock.
	Clock clock.Config `mapstructure:"clock"`
	// Vault says where the accounts live and how their key is protected.
	Vault VaultConfig `mapstructure:"vault"`
	// Secrets is where the vault key and the active accounts' secrets
	// live: "tpm" (sealed to the TPM, codes computed inside it),
	// "software" (a key file on the SD card) or "auto" (the TPM when one
	// is present).
	Secrets string `mapstructure:"secrets"`
	// TPM is the TPM 2.0 used in tpm and auto modes.
	TPM TPMConfig `mapstructure:"tpm"`
	// RunAs is who totpd becomes once the hardware is open, when started
	// as root (gokrazy, a plain init script): "user", "user:group", "uid" or
	// "uid:gid". Empty means it stays as started. Ignored when not root.
	RunAs string `mapstructure:"run_as"`
	// Metrics serves Prometheus metrics and health checks.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// Server is the registration server the appliance pairs and syncs
	// with; without a URL the appliance is standalone.
	Server ServerConfig `mapstructure:"server"`
	// API is the local API totpctl talks to.
	API APIConfig `mapstructure:"api"`
	// Version is totpd's version, for totpd_build_info; not read from the
	// file.
	Version string `mapstructure:"-"`
}

// ServerConfig is the registration server.
type ServerConfig struct {
	// URL is https://host[:port] (plain http only to loopback); empty
	// means standalone: no pairing, no sync.
	URL string `mapstructure:"url"`
	// CAFile is a PEM file of CAs the server's certificate must chain to,
	// instead of the system roots.
	CAFile string `mapstructure:"ca_file"`
	// PinSHA256 is the SHA-256 of the server's certificate (hex): only that
	// certificate is accepted (for self-signed servers).
	PinSHA256 string `mapstructure:"pin_sha256"`
	// OfferLifetime is how long an unanswered offer stays on the
	// appliance before it leaves, rejected (10s..1h; default 2 min).
	OfferLifetime time.Duration `mapstructure:"offer_lifetime"`
}

// APIConfig is the local API.
type APIConfig struct {
	// Socket is the unix socket path; empty means <state_dir>/totpd.sock.
	Socket string `mapstructure:"socket"`
}

// MetricsConfig is the metrics and health endpoint.
type MetricsConfig struct {
	// Listen is the address serving /metrics, /healthz and /readyz, for
	// example "127.0.0.1:9464" or ":9464"; empty means off.
	Listen string `mapstructure:"listen"`
}

// LogConfig chooses the log output.
type LogConfig struct {
	// Format is "text" or "json".
	Format string `mapstructure:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `mapstructure:"level"`
}

// ScreenConfig sets how codes are shown.
type ScreenConfig struct {
	// Hidden shows codes only after OK is pressed (privacy at kiosks).
	Hidden bool `mapstructure:"hidden"`
	// RevealFor is how long a revealed code stays shown.
	RevealFor time.Duration `mapstructure:"reveal_for"`
	// BlankAfter blanks the screen after this long without a press; 0
	// never blanks.
	BlankAfter time.Duration `mapstructure:"blank_after"`
}

// VaultConfig says where the accounts live.
type VaultConfig struct {
	// Dir is the vault's directory; empty means <state_dir>/vault.
	Dir string `mapstructure:"dir"`
	// KeyFile is the data key's file; empty means vault.key in Dir.
	KeyFile string `mapstructure:"key_file"`
	// PassphraseFile or PassphraseEnv, when set, name where the passphrase
	// wrapping the data key is read from.
	PassphraseFile string `mapstructure:"passphrase_file"`
	PassphraseEnv  string `mapstructure:"passphrase_env"`
}

// TPMConfig is the appliance's TPM.
type TPMConfig struct {
	// Device is /dev/tpmrm0 (the SPI module through the kernel's resource
	// manager), or an emulator's socket: "unix:/path" or "tcp:host:port".
	Device string `mapstructure:"device"`
}

// The secrets modes.
const (
	SecretsTPM      = "tpm"
	SecretsSoftware = "software"
	SecretsAuto     = "auto"
)

// DefaultConfig returns the configuration used for keys a file leaves out.
func DefaultConfig() Config {
	c := Config{
		StateDir: "/var/lib/totpbox",
		Log:      LogConfig{Format: "text", Level: "info"},
		Panel:    hw.PanelConfig{Kind: hw.KindSSD1306, Contrast: 255},
		Buttons:  hw.DefaultButtonsConfig(),
		Screen:   ScreenConfig{RevealFor: 20 * time.Second},
		Clock:    clock.DefaultConfig(),
		Secrets:  SecretsAuto,
		TPM:      TPMConfig{Device: "/dev/tpmrm0"},
		Server:   ServerConfig{OfferLifetime: uplink.DefaultOfferLifetime},
	}
	return c
}

// Load reads the configuration file at path (empty: defaults only) with
// TOTPD_* environment overrides and "key=value" overrides from flags, and
// validates it. Every problem found is
// reported, one per line.
func Load(path string, overrides ...string) (Config, error) {
	cfg := DefaultConfig()
	err := configs.Load(path, "TOTPD", &cfg, overrides...)
	if pe := (*configs.ParseError)(nil); errors.As(err, &pe) {
		return cfg, err // the file's keys are unknown: nothing else to say
	}
	cfg.Panel = cfg.Panel.WithDefaults() // zero values take the kind's wiring
	return cfg, errors.Join(err, withoutKeys(cfg.Validate(), configs.FailedKeys(err)))
}

// withoutKeys drops from err (several errors joined, each starting with
// its key) those about keys, which were already reported as not
// decoding: the zero they were left at needs no second complaint.
func withoutKeys(err error, keys []string) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(keys) == 0 {
		return err
	}
	var keep []error
	for _, e := range j.Unwrap() {
		if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(e.Error(), k+":") }) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}

// Validate reports every problem in c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("state_dir: must be set"))
	} else if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("state_dir: %q must be an absolute path", c.StateDir))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	if err := c.Panel.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Buttons.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := hw.CheckSharedPins(c.Panel, c.Buttons); err != nil {
		errs = append(errs, err)
	}
	if c.Screen.RevealFor < time.Second || c.Screen.RevealFor > time.Hour {
		errs = append(errs, fmt.Errorf("screen.reveal_for: %v is outside 1s..1h", c.Screen.RevealFor))
	}
	if c.Screen.BlankAfter < 0 || (c.Screen.BlankAfter > 0 && c.Screen.BlankAfter < 5*time.Second) {
		errs = append(errs, fmt.Errorf("screen.blank_after: %v must be 0 (never) or at least 5s", c.Screen.BlankAfter))
	}
	if err := c.Clock.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Vault.PassphraseFile != "" && c.Vault.PassphraseEnv != "" {
		errs = append(errs, errors.New("vault.passphrase_file: set only one of passphrase_file and passphrase_env"))
	}
	switch c.Secrets {
	case SecretsTPM, SecretsSoftware, SecretsAuto:
	default:
		errs = append(errs, fmt.Errorf("secrets: %q is not one of tpm, software, auto", c.Secrets))
	}
	if c.Secrets == SecretsTPM && (c.Vault.PassphraseFile != "" || c.Vault.PassphraseEnv != "") {
		errs = append(errs, errors.New("secrets: tpm seals the vault key to the TPM; remove vault.passphrase_file and vault.passphrase_env"))
	}
	if c.Secrets != SecretsSoftware && c.TPM.Device == "" {
		errs = append(errs, errors.New("tpm.device: must be set unless secrets is software"))
	}
	if c.RunAs != "" {
		if _, err := parseRunAs(c.RunAs); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Server.OfferLifetime < 10*time.Second || c.Server.OfferLifetime > time.Hour {
		errs = append(errs, fmt.Errorf("server.offer_lifetime: %v is outside 10s..1h", c.Server.OfferLifetime))
	}
	if c.Server.URL != "" {
		if err := uplink.CheckServer(c.Server.URL); err != nil {
			errs = append(errs, fmt.Errorf("server.url: %v", strings.TrimPrefix(err.Error(), "client: ")))
		}
		if c.Server.PinSHA256 != "" {
			if _, err := uplink.ParsePin(c.Server.PinSHA256); err != nil {
				errs = append(errs, fmt.Errorf("server.pin_sha256: %v", err))
			}
		}
	} else if c.Server.CAFile != "" || c.Server.PinSHA256 != "" {
		errs = append(errs, errors.New("server.url: must be set when server.ca_file or server.pin_sha256 is"))
	}
	if c.API.Socket != "" && !filepath.IsAbs(c.API.Socket) {
		errs = append(errs, fmt.Errorf("api.socket: %q must be an absolute path", c.API.Socket))
	}
	if c.Metrics.Listen != "" {
		if err := checkListen(c.Metrics.Listen); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen: %q: %v", c.Metrics.Listen, err))
		}
	}
	return errors.Join(errs...)
}

// checkListen reports whether addr is host:port with a numeric port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q is not 0..65535", port)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil || strings.ContainsAny(s, "+-") {
		return 0, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// NewLogger returns the logger c.Log asks for.
func (c Config) NewLogger(w interface{ Write([]byte) (int, error) }) *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c Config) vaultDir() string {
	if c.Vault.Dir != "" {
		return c.Vault.Dir
	}
	return filepath.Join(c.StateDir, "vault")
}

func (c Config) keyFile() string {
	if c.Vault.KeyFile != "" {
		return c.Vault.KeyFile
	}
	return filepath.Join(c.vaultDir(), "vault.key")
}

func (c Config) socket() string {
	if c.API.Socket != "" {
		return c.API.Socket
	}
	return filepath.Join(c.StateDir, "totpd.sock")
}

func (c Config) driftFile() string {
	if c.Clock.DriftFile != "" {
		return c.Clock.DriftFile
	}
	return filepath.Join(c.StateDir, "drift.json")
}

package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/display"
	"github.com/totpbox/totpbox/sim/system"
)

// simConfig is totpsim's configuration; configs/totpsim.yaml documents
// every key with its default. Flags override the file, which overrides
// defaultConfig; TOTPSIM_* environment variables override the file too.
type simConfig struct {
	Listen       string        `mapstructure:"listen"`
	ServerListen string        `mapstructure:"server_listen"`
	NoServer     bool          `mapstructure:"no_server"`
	Manual       bool          `mapstructure:"manual_pairing"`
	Server       string        `mapstructure:"server"`
	Data         string        `mapstructure:"data"`
	TPM          string        `mapstructure:"tpm"`
	TPMState     string        `mapstructure:"tpm_state"`
	Appliances   int           `mapstructure:"appliances"`
	Panel        string        `mapstructure:"panel"`
	OfferLife    time.Duration `mapstructure:"offer_lifetime"`
	Screen       screenConf    `mapstructure:"screen"`
	NTP          ntpConf       `mapstructure:"ntp"`
}

type screenConf struct {
	Hidden     bool          `mapstructure:"hidden"`
	RevealFor  time.Duration `mapstructure:"reveal_for"`
	BlankAfter time.Duration `mapstructure:"blank_after"`
}

type ntpConf struct {
	Servers     int           `mapstructure:"servers"`
	Offset      time.Duration `mapstructure:"offset"`
	RTC         bool          `mapstructure:"rtc"`
	RTCDriftPPM float64       `mapstructure:"rtc_drift_ppm"`
	NTS         bool          `mapstructure:"nts"`
}

func defaultConfig() simConfig {
	return simConfig{
		Listen: "127.0.0.1:8460", ServerListen: "127.0.0.1:8461", Data: "totpsim-data", TPM: "swtpm",
		Appliances: 1, Panel: "ssd1306-128x64", OfferLife: 2 * time.Minute,
		Screen: screenConf{RevealFor: 20 * time.Second},
		NTP:    ntpConf{Servers: 3},
	}
}

// validate reports every problem, each naming its key.
func (c simConfig) validate() error {
	var errs []error
	for key, addr := range map[string]string{"listen": c.Listen, "server_listen": c.ServerListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", key, addr))
		}
	}
	if c.Server != "" {
		if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("server: %q is not an http:// or https:// URL", c.Server))
		}
		if c.NoServer {
			errs = append(errs, errors.New("server: set together with no_server; choose one"))
		}
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data: must be set"))
	}
	if c.TPM != "swtpm" && c.TPM != "none" {
		errs = append(errs, fmt.Errorf("tpm: %q is not one of swtpm, none", c.TPM))
	}
	if c.Appliances < 1 || c.Appliances > system.MaxAppliances {
		errs = append(errs, fmt.Errorf("appliances: %d is outside 1..%d", c.Appliances, system.MaxAppliances))
	}
	if _, err := display.SizeByName(c.Panel); err != nil {
		errs = append(errs, fmt.Errorf("panel: %v", err))
	}
	if c.Screen.RevealFor < time.Second || c.Screen.RevealFor > time.Hour {
		errs = append(errs, fmt.Errorf("screen.reveal_for: %v is outside 1s..1h", c.Screen.RevealFor))
	}
	if c.Screen.BlankAfter < 0 {
		errs = append(errs, fmt.Errorf("screen.blank_after: %v is negative", c.Screen.BlankAfter))
	}
	if c.OfferLife < 10*time.Second || c.OfferLife > time.Hour {
		errs = append(errs, fmt.Errorf("offer_lifetime: %v is outside 10s..1h", c.OfferLife))
	}
	if c.NTP.Servers < 1 || c.NTP.Servers > 16 {
		errs = append(errs, fmt.Errorf("ntp.servers: %d is outside 1..16", c.NTP.Servers))
	}
	if math.IsNaN(c.NTP.RTCDriftPPM) || math.Abs(c.NTP.RTCDriftPPM) > 500 {
		errs = append(errs, fmt.Errorf("ntp.rtc_drift_ppm: %g is outside -500..500", c.NTP.RTCDriftPPM))
	}
	return errors.Join(errs...)
}

// tpmState returns the simulated TPMs' state directory: tpm_state, or
// the data directory's sibling "<data>-tpm"; "" with tpm none.
func (c simConfig) tpmState() string {
	switch {
	case c.TPM == "none":
		return ""
	case c.TPMState != "":
		return c.TPMState
	}
	return filepath.Clean(c.Data) + "-tpm"
}

func (c simConfig) system() system.Config {
	return system.Config{
		Listen: c.Listen, ServerListen: c.ServerListen, NoServer: c.NoServer, NoAutoPair: c.Manual, Server: c.Server, DataDir: c.Data, TPMDir: c.tpmState(),
		Appliances: c.Appliances, Panel: c.Panel, OfferLifetime: c.OfferLife,
		Hidden: c.Screen.Hidden, RevealFor: c.Screen.RevealFor, BlankAfter: c.Screen.BlankAfter,
		NTPServers: c.NTP.Servers, NTPOffset: c.NTP.Offset, NTS: c.NTP.NTS, RTC: c.NTP.RTC, RTCDriftPPM: c.NTP.RTCDriftPPM,
	}
}

// serveFlags adds the serve flags to cmd, each overriding one key, and
// returns a function that loads the configuration: defaults, then the file
// named by --config and TOTPSIM_* variables, then the flags given.
func serveFlags(cmd *cobra.Command) func() (simConfig, error) {
	var (
		path string
		fl   = defaultConfig()
	)
	f := cmd.Flags()
	f.StringVar(&path, "config", "", "configuration file (see configs/totpsim.yaml); flags override it")
	f.StringVar(&fl.Listen, "listen", fl.Listen, "address of the page and /sim API")
	f.StringVar(&fl.ServerListen, "server-listen", fl.ServerListen, "address of the in-process registration server (console, APIs)")
	f.BoolVar(&fl.NoServer, "no-server", fl.NoServer, "run the appliances standalone, without a registration server")
	f.BoolVar(&fl.Manual, "manual-pairing", fl.Manual, "start each appliance unpaired, waiting with its pairing code for an admin to enter it on the console")
	f.StringVar(&fl.Server, "server", fl.Server, "URL of a registration server running elsewhere: no in-process server; the appliances wait with their pairing codes")
	f.StringVar(&fl.Data, "data", fl.Data, "directory for the appliances' vaults and the server's database")
	f.StringVar(&fl.TPM, "tpm", fl.TPM, "each appliance's TPM: swtpm (started per appliance when installed; else software mode) or none (software mode)")
	f.StringVar(&fl.TPMState, "tpm-state", fl.TPMState, "directory for the simulated TPMs' state, apart from --data (default: <data>-tpm)")
	f.IntVar(&fl.Appliances, "appliances", fl.Appliances, fmt.Sprintf("number of simulated appliances, 1..%d (above %d: no TPM, as --tpm none)", system.MaxAppliances, system.MaxTPMAppliances))
	f.StringVar(&fl.Panel, "panel", fl.Panel, "display size of every appliance: "+strings.Join(display.SizeNames(), ", "))
	f.BoolVar(&fl.Screen.Hidden, "hidden", fl.Screen.Hidden, "hide codes until OK is pressed")
	f.DurationVar(&fl.Screen.BlankAfter, "blank-after", fl.Screen.BlankAfter, "blank the screen after this long without a press (0: never)")
	f.IntVar(&fl.NTP.Servers, "ntp-servers", fl.NTP.Servers, "number of fake NTP servers on 127.0.0.1")
	f.DurationVar(&fl.NTP.Offset, "ntp-offset", fl.NTP.Offset, "the fake NTP servers' time minus the host's (the appliances follow it)")
	f.BoolVar(&fl.NTP.NTS, "ntp-nts", fl.NTP.NTS, "run the fake NTP servers with NTS: the appliances' clocks poll them as nts:// servers, authenticated")
	override := map[string]func(*simConfig){
		"listen":         func(c *simConfig) { c.Listen = fl.Listen },
		"server-listen":  func(c *simConfig) { c.ServerListen = fl.ServerListen },
		"no-server":      func(c *simConfig) { c.NoServer = fl.NoServer },
		"manual-pairing": func(c *simConfig) { c.Manual = fl.Manual },
		"server":         func(c *simConfig) { c.Server = fl.Server },
		"data":           func(c *simConfig) { c.Data = fl.Data },
		"appliances":     func(c *simConfig) { c.Appliances = fl.Appliances },
		"tpm":            func(c *simConfig) { c.TPM = fl.TPM },
		"tpm-state":      func(c *simConfig) { c.TPMState = fl.TPMState },
		"panel":          func(c *simConfig) { c.Panel = fl.Panel },
		"hidden":         func(c *simConfig) { c.Screen.Hidden = fl.Screen.Hidden },
		"blank-after":    func(c *simConfig) { c.Screen.BlankAfter = fl.Screen.BlankAfter },
		"ntp-servers":    func(c *simConfig) { c.NTP.Servers = fl.NTP.Servers },
		"ntp-offset":     func(c *simConfig) { c.NTP.Offset = fl.NTP.Offset },
		"ntp-nts":        func(c *simConfig) { c.NTP.NTS = fl.NTP.NTS },
	}
	return func() (simConfig, error) {
		c := defaultConfig()
		err := configs.Load(path, "TOTPSIM", &c)
		f.Visit(func(fl *pflag.Flag) {
			if set, ok := override[fl.Name]; ok {
				set(&c)
			}
		})
		return c, errors.Join(err, c.validate())
	}
}

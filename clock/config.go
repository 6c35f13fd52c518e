package clock

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/clock/nts"
)

// Config configures the disciplined clock. The daemon loads it with viper
// under the `clock` key; the zero value of a field means its default.
type Config struct {
	// Servers are the NTP servers, "host" or "host:port" (port 123 when
	// omitted), or NTS servers, "nts://host[:port]" (the port is NTS-KE's,
	// 4460 when omitted; the key exchange names the NTP server and port).
	// IPv6 literals with a port use "[addr]:port".
	Servers []string `mapstructure:"servers" json:"servers"`
	// NTSCAFile is a PEM file of the certificate authorities that NTS-KE
	// servers' certificates must chain to. Empty means the system's roots.
	NTSCAFile string `mapstructure:"nts_ca_file" json:"nts_ca_file,omitempty"`
	// RequireAuthenticated, when true, lets only NTS-authenticated replies
	// steer the clock: plain NTP servers are not polled. Nil means true
	// when any server is nts://, false otherwise.
	RequireAuthenticated *bool `mapstructure:"require_authenticated" json:"require_authenticated,omitempty"`
	// MaxClockError is the frequency error in ppm the oscillator may add on
	// top of the estimated skew while the clock is not updated (temperature,
	// ageing). Default 5.
	MaxClockError float64 `mapstructure:"max_clock_error_ppm" json:"max_clock_error_ppm"`
	// HoldoverLimit is the largest error bound at which codes are still
	// shown after updates stop. Default 5 s.
	HoldoverLimit time.Duration `mapstructure:"holdover_limit" json:"holdover_limit"`
	// MinPoll is the polling interval while acquiring. Default 16 s.
	MinPoll time.Duration `mapstructure:"min_poll" json:"min_poll"`
	// MaxPoll is the longest polling interval once the clock is stable.
	// Default 1024 s.
	MaxPoll time.Duration `mapstructure:"max_poll" json:"max_poll"`
	// DriftFile is where the frequency estimate and the last good time are
	// kept across restarts. Empty means none.
	DriftFile string `mapstructure:"drift_file" json:"drift_file"`
	// RTC is the battery-backed real-time clock's device, e.g. /dev/rtc0:
	// the disciplined time is written to it after good updates, and a start
	// without any NTP reply begins from it. Empty means none.
	RTC string `mapstructure:"rtc" json:"rtc,omitempty"`
	// RTCPPM is the frequency error in ppm allowed for the RTC while it
	// runs free: the bound of a start from it grows by this much of the
	// time since it was last set. Default 20 (DefaultRTCPPM).
	RTCPPM float64 `mapstructure:"rtc_ppm" json:"rtc_ppm,omitempty"`
}

// Defaults for Config fields left zero.
const (
	DefaultMaxClockError = 5.0
	DefaultHoldoverLimit = 5 * time.Second
	DefaultMinPoll       = 16 * time.Second
	DefaultMaxPoll       = 1024 * time.Second
)

// DefaultConfig returns the configuration used when nothing is set: the
// public NTP pool, 5 ppm, 5 s holdover, polling 16–1024 s, no drift file.
func DefaultConfig() Config {
	return Config{
		Servers: []string{
			"0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org",
		},
		MaxClockError: DefaultMaxClockError,
		HoldoverLimit: DefaultHoldoverLimit,
		MinPoll:       DefaultMinPoll,
		MaxPoll:       DefaultMaxPoll,
	}
}

// RequiresAuthentication reports whether only NTS-authenticated replies
// may steer the clock: RequireAuthenticated, or by default whether any
// server is nts://.
func (c Config) RequiresAuthentication() bool {
	if c.RequireAuthenticated != nil {
		return *c.RequireAuthenticated
	}
	for _, s := range c.Servers {
		if isNTS(s) {
			return true
		}
	}
	return false
}

// isNTS reports whether a configured server speaks NTS.
func isNTS(s string) bool { return strings.HasPrefix(s, nts.Scheme) }

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	if c.MaxClockError == 0 {
		c.MaxClockError = DefaultMaxClockError
	}
	if c.HoldoverLimit == 0 {
		c.HoldoverLimit = DefaultHoldoverLimit
	}
	if c.MinPoll == 0 {
		c.MinPoll = DefaultMinPoll
	}
	if c.MaxPoll == 0 {
		c.MaxPoll = max(DefaultMaxPoll, c.MinPoll)
	}
	if c.RTCPPM == 0 {
		c.RTCPPM = DefaultRTCPPM
	}
	return c
}

// Validate reports everything wrong with the configuration, one line per
// problem naming its key. Zero fields are valid (they take defaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("clock.servers: no servers configured"))
	}
	seen := make(map[string]bool)
	for _, s := range c.Servers {
		if err := checkServer(s); err != nil {
			errs = append(errs, fmt.Errorf("clock.servers: %q: %v", s, err))
		} else if seen[s] {
			errs = append(errs, fmt.Errorf("clock.servers: %q listed twice", s))
		}
		seen[s] = true
	}
	if c.RequiresAuthentication() && !slices.ContainsFunc(c.Servers, isNTS) && len(c.Servers) > 0 {
		errs = append(errs, errors.New("clock.require_authenticated: true, but no server is nts://"))
	}
	if c.NTSCAFile != "" {
		if _, err := loadCAs(c.NTSCAFile); err != nil {
			errs = append(errs, fmt.Errorf("clock.nts_ca_file: %v", err))
		}
	}
	if c.MaxClockError < 0 || c.MaxClockError > 500 {
		errs = append(errs, fmt.Errorf("clock.max_clock_error_ppm: %g is outside 0..500", c.MaxClockError))
	}
	if c.HoldoverLimit < 0 {
		errs = append(errs, fmt.Errorf("clock.holdover_limit: %v is negative", c.HoldoverLimit))
	} else if c.HoldoverLimit != 0 && c.HoldoverLimit < time.Second {
		errs = append(errs, fmt.Errorf("clock.holdover_limit: %v is under the 1s synced bound", c.HoldoverLimit))
	}
	if c.RTC != "" {
		if _, err := os.Stat(c.RTC); err != nil {
			errs = append(errs, fmt.Errorf("clock.rtc: %v", err))
		}
	}
	if math.IsNaN(c.RTCPPM) || c.RTCPPM < 0 || c.RTCPPM > 500 {
		errs = append(errs, fmt.Errorf("clock.rtc_ppm: %g is outside 0..500", c.RTCPPM))
	}
	pollOK := true
	if c.MinPoll < 0 || (c.MinPoll != 0 && c.MinPoll < time.Second) {
		errs = append(errs, fmt.Errorf("clock.min_poll: %v is under 1s", c.MinPoll))
		pollOK = false
	}
	if c.MaxPoll < 0 || (c.MaxPoll != 0 && c.MaxPoll < time.Second) {
		errs = append(errs, fmt.Errorf("clock.max_poll: %v is under 1s", c.MaxPoll))
		pollOK = false
	}
	d := c.withDefaults()
	switch {
	case !pollOK:
	case d.MaxPoll < d.MinPoll:
		errs = append(errs, fmt.Errorf("clock.max_poll: %v is under clock.min_poll %v", d.MaxPoll, d.MinPoll))
	case d.MaxPoll > 36*time.Hour:
		errs = append(errs, fmt.Errorf("clock.max_poll: %v is over 36h", d.MaxPoll))
	}
	return errors.Join(errs...)
}

// checkServer reports whether s looks like a host or host:port. Whether the
// name resolves is found out at run time.
func checkServer(s string) error {
	if s == "" {
		return errors.New("empty server name")
	}
	if _, _, ok, err := nts.ParseServer(s); ok {
		return err
	}
	if strings.ContainsAny(s, " \t\r\n/") {
		return errors.New("server name contains a space or slash")
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Count(s, ":") == 1 || strings.HasPrefix(s, "[") {
		return fmt.Errorf("malformed host:port: %v", err)
	}
	if host == "" {
		return errors.New("empty host")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1..65535", port)
		}
	}
	return nil
}

// loadCAs reads a PEM file of certificate authorities.
func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

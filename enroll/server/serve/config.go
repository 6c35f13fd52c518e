package serve

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/server/radius"
	"github.com/totpbox/totpbox/enroll/store"
)

// Rate is a token-bucket limit in the config file.
type Rate struct {
	PerSecond float64 `mapstructure:"per_second"`
	Burst     int     `mapstructure:"burst"`
}

// Config is totpserver's configuration, configs/totpserver.yaml (every
// key is commented there); Defaults holds its defaults.
type Config struct {
	Data          string `mapstructure:"data"`
	Listen        string `mapstructure:"listen"`
	MasterKeyFile string `mapstructure:"master_key_file"`
	MasterKey     string `mapstructure:"master_key"`
	Database      struct {
		DSN string `mapstructure:"dsn"`
	} `mapstructure:"database"`
	TLS struct {
		Cert string `mapstructure:"cert"`
		Key  string `mapstructure:"key"`
	} `mapstructure:"tls"`
	SecureCookies       bool          `mapstructure:"secure_cookies"`
	TrustedProxies      []string      `mapstructure:"trusted_proxies"`
	RegistrationTimeout time.Duration `mapstructure:"registration_timeout"`
	LabelTemplate       string        `mapstructure:"label_template"`
	SessionLifetime     time.Duration `mapstructure:"session_lifetime"`
	ResyncWindow        int           `mapstructure:"resync_window"`
	HOTPLookAhead       int           `mapstructure:"hotp_look_ahead"`
	HOTPResyncWindow    int           `mapstructure:"hotp_resync_window"`
	AllowExport         bool          `mapstructure:"allow_export"`
	MaxDevicesPerUser   int           `mapstructure:"max_devices_per_user"`
	CacheTTL            time.Duration `mapstructure:"cache_ttl"`
	JanitorInterval     time.Duration `mapstructure:"janitor_interval"`
	Passwords           struct {
		MemoryKiB uint32 `mapstructure:"memory_kib"`
		Time      uint32 `mapstructure:"time"`
		Threads   uint8  `mapstructure:"threads"`
	} `mapstructure:"passwords"`
	Limits struct {
		SignInPerIP   Rate `mapstructure:"signin_per_ip"`
		SignInPerUser Rate `mapstructure:"signin_per_user"`
		SignInPerDev  Rate `mapstructure:"signin_per_device"`
		VerifyPerUser Rate `mapstructure:"verify_per_user"`
		VerifyPerIP   Rate `mapstructure:"verify_per_ip"`
	} `mapstructure:"limits"`
	Appliances struct {
		PairingCodeTTL time.Duration `mapstructure:"pairing_code_ttl"`
		PairingPerIP   Rate          `mapstructure:"pairing_per_ip"`
		PollInterval   time.Duration `mapstructure:"poll_interval"`
		Retention      time.Duration `mapstructure:"retention"`
	} `mapstructure:"appliances"`
	Metrics struct {
		Listen string `mapstructure:"listen"`
	} `mapstructure:"metrics"`
	RADIUS struct {
		Listen           string         `mapstructure:"listen"`
		ChallengeTimeout time.Duration  `mapstructure:"challenge_timeout"`
		ReplyCacheTTL    time.Duration  `mapstructure:"reply_cache_ttl"`
		Clients          []RADIUSClient `mapstructure:"clients"`
	} `mapstructure:"radius"`
	Audit struct {
		Syslog struct {
			Address    string `mapstructure:"address"`
			Transport  string `mapstructure:"transport"`
			CAFile     string `mapstructure:"ca_file"`
			ClientCert string `mapstructure:"client_cert"`
			ClientKey  string `mapstructure:"client_key"`
			Queue      int    `mapstructure:"queue"`
		} `mapstructure:"syslog"`
	} `mapstructure:"audit"`
	Webhooks struct {
		AllowPrivateTargets bool `mapstructure:"allow_private_targets"`
	} `mapstructure:"webhooks"`
	Log struct {
		Format string `mapstructure:"format"`
		Level  string `mapstructure:"level"`
	} `mapstructure:"log"`
	Directory struct {
		LDAP directory.LDAPConfig `mapstructure:"ldap"`
		SCIM SCIMConfig           `mapstructure:"scim"`
	} `mapstructure:"directory"`
	OIDC oidc.Config `mapstructure:"oidc"`
}

// SCIMConfig is directory.scim: the SCIM groups whose membership grants
// use of totpbox and admin rights (enroll/server/scim).
type SCIMConfig struct {
	// UsersGroup is the display name of the group whose members may use
	// totpbox; empty: every active user provisioned may.
	UsersGroup string `mapstructure:"users_group"`
	// AdminsGroup is the display name of the group whose members are
	// admins; empty: admin rights are set in totpbox.
	AdminsGroup string `mapstructure:"admins_group"`
}

// Validate checks the group names, in one line each.
func (c SCIMConfig) Validate() error {
	for _, g := range []struct{ key, v string }{{"users_group", c.UsersGroup}, {"admins_group", c.AdminsGroup}} {
		if len(g.v) > 256 {
			return fmt.Errorf("directory.scim.%s is longer than 256 bytes", g.key)
		}
		if strings.TrimSpace(g.v) != g.v {
			return fmt.Errorf("directory.scim.%s %q starts or ends with a space", g.key, g.v)
		}
		for _, r := range g.v {
			if unicode.IsControl(r) {
				return fmt.Errorf("directory.scim.%s holds a control character", g.key)
			}
		}
	}
	if c.UsersGroup != "" && strings.EqualFold(c.UsersGroup, c.AdminsGroup) {
		return fmt.Errorf("directory.scim.users_group and admins_group are both %q: name two groups", c.UsersGroup)
	}
	return nil
}

// RADIUSClient is one entry of radius.clients.
type RADIUSClient struct {
	Name                             string `mapstructure:"name"`
	CIDR                             string `mapstructure:"cidr"`
	SecretFile                       string `mapstructure:"secret_file"`
	SecretCredential                 string `mapstructure:"secret_credential"`
	Mode                             string `mapstructure:"mode"`
	TrustStationID                   bool   `mapstructure:"trust_station_id"`
	AllowMissingMessageAuthenticator bool   `mapstructure:"allow_missing_message_authenticator"`
}

// Defaults returns the configuration with every default set.
func Defaults() Config {
	var c Config
	c.Data = "/var/lib/totpserver"
	c.Listen = "127.0.0.1:8080"
	c.RegistrationTimeout = 10 * time.Minute
	c.LabelTemplate = core.DefaultLabelTemplate
	c.SessionLifetime = 12 * time.Hour
	c.ResyncWindow = 1000
	c.HOTPLookAhead = core.DefaultHOTPLookAhead
	c.HOTPResyncWindow = core.DefaultHOTPResyncWindow
	c.MaxDevicesPerUser = 8
	c.CacheTTL = 5 * time.Second
	c.JanitorInterval = 30 * time.Second
	c.Passwords.MemoryKiB = store.DefaultPasswordParams.MemoryKiB
	c.Passwords.Time = store.DefaultPasswordParams.Time
	c.Passwords.Threads = store.DefaultPasswordParams.Threads
	l := server.DefaultLimits
	c.Limits.SignInPerIP = Rate{l.SignInPerIP.PerSecond, l.SignInPerIP.Burst}
	c.Limits.SignInPerUser = Rate{l.SignInPerUser.PerSecond, l.SignInPerUser.Burst}
	c.Limits.SignInPerDev = Rate{l.SignInPerDevice.PerSecond, l.SignInPerDevice.Burst}
	c.Limits.VerifyPerUser = Rate{l.VerifyPerUser.PerSecond, l.VerifyPerUser.Burst}
	c.Limits.VerifyPerIP = Rate{l.VerifyPerIP.PerSecond, l.VerifyPerIP.Burst}
	c.Appliances.PairingCodeTTL = appliance.DefaultPairingCodeTTL
	c.Appliances.PairingPerIP = Rate{appliance.DefaultPairingRate.PerSecond, appliance.DefaultPairingRate.Burst}
	c.Appliances.Retention = appliance.DefaultRetention
	c.RADIUS.ChallengeTimeout = 2 * time.Minute
	c.RADIUS.ReplyCacheTTL = 30 * time.Second
	c.Audit.Syslog.Transport = syslog.TransportTLS
	c.Audit.Syslog.Queue = syslog.DefaultQueue
	c.Log.Format = "text"
	c.Log.Level = "info"
	c.OIDC.AllowLocalSignin = true
	return c
}

// Load reads the config file at path (none when empty), TOTPSERVER_*
// variables, and then flags (the command line's overrides, nil for none).
// It reports every problem at once. The data directory comes back
// absolute, and master_key_file names the key file the server will use
// (<data>/master.key unless a key or a credential comes first).
func Load(path string, flags func(*Config)) (Config, error) {
	c, problems := Read(path, flags)
	if len(problems) > 0 {
		return c, errors.Join(problems...)
	}
	if c.Data != "" {
		abs, err := filepath.Abs(c.Data)
		if err != nil {
			return c, fmt.Errorf("config: data: %v", err)
		}
		c.Data = abs
	}
	if k := c.KeySource(); k.kind == keyFile {
		c.MasterKeyFile = k.path // <data>/master.key unless a credential is there
	}
	return c, nil
}

// Read reads the defaults, the file at path (when not empty) and
// TOTPSERVER_* variables, applies flags, and returns the config with every
// problem found: unknown keys and variables, values that do not parse,
// and values out of range.
func Read(path string, flags func(*Config)) (Config, []error) {
	c := Defaults()
	problems := envProblems()
	if err := configs.Load(path, "TOTPSERVER", &c); err != nil {
		problems = append(problems, splitJoined(err)...)
	}
	if flags != nil {
		flags(&c)
	}
	return c, append(problems, c.problems()...)
}

// splitJoined returns the errors joined in err, or err alone, with the
// decoder's list of bad values split into one error per key.
func splitJoined(err error) []error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []error
	for _, e := range errs {
		msg, ok := strings.CutPrefix(e.Error(), decodePrefix)
		if !ok {
			out = append(out, e)
			continue
		}
		at := badKeyRE.FindAllStringSubmatchIndex(msg, -1)
		for i, m := range at {
			end := len(msg)
			if i+1 < len(at) {
				end = at[i+1][0]
			}
			key := msg[m[2]:m[3]]
			out = append(out, fmt.Errorf("config: %s: %s", key, strings.TrimSpace(msg[m[1]:end])))
		}
		if len(at) == 0 {
			out = append(out, e)
		}
	}
	return out
}

// decodePrefix and badKeyRE pick apart the decoder's error about values
// that do not parse: "... error(s): 'a' reason 'b' reason".
const decodePrefix = "config: decoding failed due to the following error(s): "

var badKeyRE = regexp.MustCompile(`(?:^| )'([a-z0-9_.]+)' `)

// problems checks values and the rules between them.
func (c Config) problems() []error {
	var p []error
	bad := func(format string, args ...any) { p = append(p, fmt.Errorf("config: "+format, args...)) }
	if c.Data == "" && c.Database.DSN == "" {
		bad("data is empty: give --data DIR, or database.dsn")
	}
	if err := checkHostPort(c.Listen); err != nil {
		bad("listen %q %v", c.Listen, err)
	}
	if c.Metrics.Listen != "" {
		if err := checkHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen %q %v", c.Metrics.Listen, err)
		} else if c.Metrics.Listen == c.Listen {
			bad("metrics.listen must differ from listen: metrics are served on their own address")
		}
	}
	p = append(p, c.radiusProblems()...)
	if _, err := c.syslogConfig(); err != nil {
		bad("%v", err)
	}
	if err := c.Directory.LDAP.Validate(); err != nil {
		bad("%v", err)
	}
	if err := c.OIDC.Validate(); err != nil {
		bad("%v", err)
	}
	if err := c.Directory.SCIM.Validate(); err != nil {
		bad("%v", err)
	}
	if strings.TrimSpace(c.MasterKey) != "" {
		// As the sealer will read it; the errors name a key's position,
		// never its text.
		keys, err := store.ParseKeys(c.MasterKey)
		if err == nil {
			_, err = store.NewSealer(keys[0], keys[1:]...)
		}
		if err != nil {
			bad("master_key: %v", err)
		}
	}
	if _, err := server.ParseTrustedProxies(c.TrustedProxies); err != nil {
		bad("trusted_proxies: %v", err)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert and tls.key must be set together")
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad("%s must be positive, not %v", name, d)
		}
	}
	if err := core.CheckLabelTemplate(c.LabelTemplate); err != nil {
		bad("label_template: %v", err)
	}
	positive("registration_timeout", c.RegistrationTimeout)
	positive("session_lifetime", c.SessionLifetime)
	positive("janitor_interval", c.JanitorInterval)
	positive("appliances.pairing_code_ttl", c.Appliances.PairingCodeTTL)
	positive("appliances.retention", c.Appliances.Retention)
	if c.ResyncWindow < 1 || c.ResyncWindow > 100000 {
		bad("resync_window must be 1 to 100000, not %d", c.ResyncWindow)
	}
	if c.HOTPLookAhead < 1 || c.HOTPLookAhead > 1000 {
		bad("hotp_look_ahead must be 1 to 1000, not %d", c.HOTPLookAhead)
	}
	if c.HOTPResyncWindow < c.HOTPLookAhead || c.HOTPResyncWindow > 100000 {
		bad("hotp_resync_window must be hotp_look_ahead (%d) to 100000, not %d", c.HOTPLookAhead, c.HOTPResyncWindow)
	}
	if pw := c.Passwords; pw.MemoryKiB < 8*uint32(max(pw.Threads, 1)) || pw.MemoryKiB > 1<<20 || pw.Time < 1 || pw.Time > 64 || pw.Threads < 1 {
		bad("passwords: memory_kib must be 8×threads to 1048576, time 1 to 64 and threads at least 1, not %d, %d and %d", pw.MemoryKiB, pw.Time, pw.Threads)
	}
	if c.MaxDevicesPerUser < 1 {
		bad("max_devices_per_user must be at least 1, not %d", c.MaxDevicesPerUser)
	}
	for _, r := range []struct {
		name string
		r    Rate
	}{
		{"limits.signin_per_ip", c.Limits.SignInPerIP},
		{"limits.signin_per_user", c.Limits.SignInPerUser},
		{"limits.signin_per_device", c.Limits.SignInPerDev},
		{"limits.verify_per_user", c.Limits.VerifyPerUser},
		{"limits.verify_per_ip", c.Limits.VerifyPerIP},
		{"appliances.pairing_per_ip", c.Appliances.PairingPerIP},
	} {
		switch {
		case r.r.PerSecond == 0:
			bad("%s.per_second must not be 0 (a negative value turns the limit off)", r.name)
		case r.r.PerSecond > 0 && r.r.Burst < 1:
			bad("%s.burst must be at least 1, not %d", r.name, r.r.Burst)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format must be text or json, not %q", c.Log.Format)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		bad("log.level must be debug, info, warn or error, not %q", c.Log.Level)
	}
	return p
}

// checkHostPort checks a listen address: host:port with a port from 0 to
// 65535 (a number or a service name).
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("has port %d, outside 0..65535", n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("has port %q, neither a number nor a known service", port)
	}
	return nil
}

// envProblems names every TOTPSERVER_* variable that names no key, so a
// typo is not silently ignored.
func envProblems() []error {
	known := map[string]bool{"TOTPSERVER_CONFIG": true}
	var c Config
	for _, k := range configs.Keys(&c) {
		known["TOTPSERVER_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var p []error
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TOTPSERVER_") && !known[name] {
			p = append(p, fmt.Errorf("config: unknown environment variable %s", name))
		}
	}
	return p
}

// Logger returns the logger log.format and log.level ask for, writing to
// standard error.
func (c Config) Logger() *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// applianceConfig configures the appliance API the server mounts; its
// store, clock and logger are the server's.
func (c Config) applianceConfig() appliance.Config {
	poll := c.Appliances.PollInterval
	if poll == 0 && c.Database.DSN != "" {
		// Replicas sharing PostgreSQL hear each other's changes through
		// LISTEN/NOTIFY; held long-polls poll only while that is down.
		poll = defaultReplicaPoll
	}
	return appliance.Config{
		PairingCodeTTL: c.Appliances.PairingCodeTTL,
		PairingRate:    appliance.Rate{PerSecond: c.Appliances.PairingPerIP.PerSecond, Burst: c.Appliances.PairingPerIP.Burst},
		PollInterval:   max(poll, 0),
		Retention:      c.Appliances.Retention,
	}
}

// defaultReplicaPoll is appliances.poll_interval's default with PostgreSQL:
// how often held long-polls re-read the store while the replica cannot
// hear the others' notices.
const defaultReplicaPoll = 5 * time.Second

func (c Config) limits() server.Limits {
	r := func(x Rate) server.Rate { return server.Rate{PerSecond: x.PerSecond, Burst: x.Burst} }
	return server.Limits{
		SignInPerIP:     r(c.Limits.SignInPerIP),
		SignInPerUser:   r(c.Limits.SignInPerUser),
		SignInPerDevice: r(c.Limits.SignInPerDev),
		VerifyPerUser:   r(c.Limits.VerifyPerUser),
		VerifyPerIP:     r(c.Limits.VerifyPerIP),
	}
}

// radiusProblems checks the radius section.
func (c Config) radiusProblems() []error {
	var p []error
	bad := func(format string, args ...any) { p = append(p, fmt.Errorf("config: "+format, args...)) }
	r := c.RADIUS
	if r.Listen != "" {
		if _, _, err := net.SplitHostPort(r.Listen); err != nil {
			bad("radius.listen %q is not host:port", r.Listen)
		}
		if len(r.Clients) == 0 {
			bad("radius.clients is empty: radius.listen needs at least one client")
		}
	}
	if r.ChallengeTimeout <= 0 {
		bad("radius.challenge_timeout must be positive, not %v", r.ChallengeTimeout)
	}
	if r.ReplyCacheTTL <= 0 {
		bad("radius.reply_cache_ttl must be positive, not %v", r.ReplyCacheTTL)
	}
	for i, rc := range r.Clients {
		at := fmt.Sprintf("radius.clients[%d]", i)
		if _, err := parseCIDR(rc.CIDR); err != nil {
			bad("%s.cidr %q is not an address or CIDR range", at, rc.CIDR)
		}
		if (rc.SecretFile == "") == (rc.SecretCredential == "") {
			bad("%s: give one of secret_file and secret_credential", at)
		}
		if rc.SecretCredential != "" && strings.ContainsAny(rc.SecretCredential, "/") {
			bad("%s.secret_credential %q is a credential name, not a path", at, rc.SecretCredential)
		}
		if m := radius.Mode(rc.Mode); m != radius.ModeCode && m != radius.ModePasswordCode {
			bad("%s.mode must be %q or %q, not %q", at, radius.ModeCode, radius.ModePasswordCode, rc.Mode)
		}
	}
	return p
}

// parseCIDR reads a CIDR range, or a single address as a range of one.
func parseCIDR(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// radiusConfig is the RADIUS listener's configuration, its clients'
// secrets read from their files or systemd credentials.
func (c Config) radiusConfig() (radius.Config, error) {
	rc := radius.Config{ChallengeTimeout: c.RADIUS.ChallengeTimeout, ReplyCacheTTL: c.RADIUS.ReplyCacheTTL}
	if c.RADIUS.Listen == "" {
		return rc, nil
	}
	for i, cl := range c.RADIUS.Clients {
		prefix, err := parseCIDR(cl.CIDR)
		if err != nil {
			return rc, fmt.Errorf("radius.clients[%d].cidr: %v", i, err)
		}
		secret, err := radius.ReadSecret(cl.SecretFile, cl.SecretCredential)
		if err != nil {
			return rc, fmt.Errorf("radius.clients[%d]: %w", i, err)
		}
		rc.Clients = append(rc.Clients, radius.Client{
			Name:                             cl.Name,
			Prefix:                           prefix,
			Secret:                           secret,
			Mode:                             radius.Mode(cl.Mode),
			TrustStationID:                   cl.TrustStationID,
			AllowMissingMessageAuthenticator: cl.AllowMissingMessageAuthenticator,
		})
	}
	return rc, nil
}

// syslogConfig is the syslog writer's configuration from audit.syslog, or
// nil when audit.syslog.address is empty.
func (c Config) syslogConfig() (*syslog.Config, error) {
	sc := c.Audit.Syslog
	if sc.Address == "" {
		return nil, nil
	}
	out := &syslog.Config{Address: sc.Address, Transport: sc.Transport, Queue: sc.Queue}
	if sc.Queue < 1 {
		return nil, fmt.Errorf("audit.syslog.queue must be at least 1, not %d", sc.Queue)
	}
	if sc.Transport != syslog.TransportTLS {
		if sc.CAFile != "" || sc.ClientCert != "" || sc.ClientKey != "" {
			return nil, fmt.Errorf("audit.syslog.ca_file, client_cert and client_key need transport tls, not %q", sc.Transport)
		}
	} else {
		t := &tls.Config{}
		if sc.CAFile != "" {
			pem, err := os.ReadFile(sc.CAFile)
			if err != nil {
				return nil, fmt.Errorf("audit.syslog.ca_file: %v", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("audit.syslog.ca_file %s holds no PEM certificate", sc.CAFile)
			}
		}
		if (sc.ClientCert == "") != (sc.ClientKey == "") {
			return nil, errors.New("audit.syslog.client_cert and client_key go together: give both or neither")
		}
		if sc.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(sc.ClientCert, sc.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("audit.syslog.client_cert/client_key: %v", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		out.TLS = t
	}
	if _, err := syslog.New(*out); err != nil {
		return nil, err
	}
	return out, nil
}

// passwords returns the argon2id parameters of new password hashes.
func (c Config) passwords() store.PasswordParams {
	p := store.DefaultPasswordParams
	p.MemoryKiB, p.Time, p.Threads = c.Passwords.MemoryKiB, c.Passwords.Time, c.Passwords.Threads
	return p
}

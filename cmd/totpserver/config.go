package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/enroll/server"
)

// rate is a token-bucket limit in the config file.
type rate struct {
	PerSecond float64 `mapstructure:"per_second"`
	Burst     int     `mapstructure:"burst"`
}

// config is configs/totpserver.yaml; its zero-value defaults are set in
// defaultConfig.
type config struct {
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
	RegistrationTimeout time.Duration `mapstructure:"registration_timeout"`
	SessionLifetime     time.Duration `mapstructure:"session_lifetime"`
	ResyncWindow        int           `mapstructure:"resync_window"`
	MaxDevicesPerUser   int           `mapstructure:"max_devices_per_user"`
	CacheTTL            time.Duration `mapstructure:"cache_ttl"`
	JanitorInterval     time.Duration `mapstructure:"janitor_interval"`
	Limits              struct {
		SignInPerIP   rate `mapstructure:"signin_per_ip"`
		SignInPerUser rate `mapstructure:"signin_per_user"`
		VerifyPerUser rate `mapstructure:"verify_per_user"`
		VerifyPerIP   rate `mapstructure:"verify_per_ip"`
	} `mapstructure:"limits"`
	Log struct {
		Format string `mapstructure:"format"`
		Level  string `mapstructure:"level"`
	} `mapstructure:"log"`
}

func defaultConfig() config {
	var c config
	c.Data = "/var/lib/totpserver"
	c.Listen = "127.0.0.1:8080"
	c.RegistrationTimeout = 10 * time.Minute
	c.SessionLifetime = 12 * time.Hour
	c.ResyncWindow = 1000
	c.MaxDevicesPerUser = 8
	c.CacheTTL = 5 * time.Second
	c.JanitorInterval = 30 * time.Second
	l := server.DefaultLimits
	c.Limits.SignInPerIP = rate{l.SignInPerIP.PerSecond, l.SignInPerIP.Burst}
	c.Limits.SignInPerUser = rate{l.SignInPerUser.PerSecond, l.SignInPerUser.Burst}
	c.Limits.VerifyPerUser = rate{l.VerifyPerUser.PerSecond, l.VerifyPerUser.Burst}
	c.Limits.VerifyPerIP = rate{l.VerifyPerIP.PerSecond, l.VerifyPerIP.Burst}
	c.Log.Format = "text"
	c.Log.Level = "info"
	return c
}

// loadConfig reads the config file named by --config, TOTPSERVER_*
// variables, and the --data and --listen flags when set.
func loadConfig(cmd *cobra.Command) (config, error) {
	c := defaultConfig()
	path, _ := cmd.Flags().GetString("config")
	if err := checkEnv(); err != nil {
		return c, err
	}
	if err := configs.Load(path, "TOTPSERVER", &c); err != nil {
		return c, err
	}
	if f := cmd.Flags().Lookup("data"); f != nil && f.Changed {
		c.Data = f.Value.String()
	}
	if f := cmd.Flags().Lookup("listen"); f != nil && f.Changed {
		c.Listen = f.Value.String()
	}
	if c.Data == "" && c.Database.DSN == "" {
		return c, fmt.Errorf("config: data is empty: give --data DIR")
	}
	if c.Data != "" {
		abs, err := filepath.Abs(c.Data)
		if err != nil {
			return c, fmt.Errorf("config: data: %v", err)
		}
		c.Data = abs
	}
	if c.MasterKeyFile == "" && c.Data != "" {
		c.MasterKeyFile = filepath.Join(c.Data, "master.key")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return c, fmt.Errorf("config: tls.cert and tls.key must be set together")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return c, fmt.Errorf("config: log.format must be text or json, not %q", c.Log.Format)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return c, fmt.Errorf("config: log.level must be debug, info, warn or error, not %q", c.Log.Level)
	}
	return c, nil
}

// checkEnv refuses TOTPSERVER_* variables that name no key, so a typo is
// not silently ignored.
func checkEnv() error {
	known := map[string]bool{"TOTPSERVER_CONFIG": true}
	var c config
	for _, k := range configs.Keys(&c) {
		known["TOTPSERVER_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TOTPSERVER_") && !known[name] {
			return fmt.Errorf("config: unknown environment variable %s", name)
		}
	}
	return nil
}

func (c config) logger() *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func (c config) limits() server.Limits {
	r := func(x rate) server.Rate { return server.Rate{PerSecond: x.PerSecond, Burst: x.Burst} }
	return server.Limits{
		SignInPerIP:   r(c.Limits.SignInPerIP),
		SignInPerUser: r(c.Limits.SignInPerUser),
		VerifyPerUser: r(c.Limits.VerifyPerUser),
		VerifyPerIP:   r(c.Limits.VerifyPerIP),
	}
}

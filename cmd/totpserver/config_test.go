package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shipped, err := filepath.Abs("../../configs/totpserver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "shipped file holds the defaults", args: []string{"--config", shipped}, check: func(t *testing.T, c config) {
			def := defaultConfig()
			if c.Listen != def.Listen || c.RegistrationTimeout != def.RegistrationTimeout || c.Limits.VerifyPerIP != def.Limits.VerifyPerIP {
				t.Fatalf("shipped config = %+v, want the defaults %+v", c, def)
			}
		}},
		{name: "unknown key", args: []string{"--config", write("bad.yaml", "listen: :1\nlimts:\n  x: 1\n")}, wantErr: `unknown key "limts.x"`},
		{name: "unknown env", env: map[string]string{"TOTPSERVER_LISTN": "x"}, wantErr: "unknown environment variable TOTPSERVER_LISTN"},
		{name: "env over file, flags over env",
			args: []string{"--config", write("ok.yaml", "listen: 127.0.0.1:1\nregistration_timeout: 5m\n"), "--listen", "127.0.0.1:3", "--data", dir},
			env:  map[string]string{"TOTPSERVER_LISTEN": "127.0.0.1:2", "TOTPSERVER_LIMITS_VERIFY_PER_IP_BURST": "7"},
			check: func(t *testing.T, c config) {
				if c.Listen != "127.0.0.1:3" || c.RegistrationTimeout != 5*time.Minute || c.Limits.VerifyPerIP.Burst != 7 || c.Data != dir {
					t.Fatalf("config = %+v", c)
				}
				if c.MasterKeyFile != filepath.Join(dir, "master.key") {
					t.Fatalf("master key file = %q", c.MasterKeyFile)
				}
			}},
		{name: "bad log level", env: map[string]string{"TOTPSERVER_LOG_LEVEL": "loud"}, wantErr: `log.level must be debug, info, warn or error, not "loud"`},
		{name: "tls half set", env: map[string]string{"TOTPSERVER_TLS_CERT": "c.pem"}, wantErr: "tls.cert and tls.key must be set together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cmd := serveCommand()
			root := rootCommand()
			root.AddCommand(cmd)
			cmd.SetArgs(tc.args)
			if err := root.PersistentFlags().Parse(nil); err != nil {
				t.Fatal(err)
			}
			cmd.Flags().AddFlagSet(root.PersistentFlags())
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(cmd)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadConfig error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

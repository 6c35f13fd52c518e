package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
	"github.com/totpbox/totpbox/configs"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
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
		check   func(t *testing.T, c serve.Config)
	}{
		{name: "shipped file holds the defaults", args: []string{"--config", shipped}, check: func(t *testing.T, c serve.Config) {
			def := serve.Defaults()
			if c.Listen != def.Listen || c.RegistrationTimeout != def.RegistrationTimeout || c.Limits.VerifyPerIP != def.Limits.VerifyPerIP {
				t.Fatalf("shipped config = %+v, want the defaults %+v", c, def)
			}
		}},
		{name: "unknown key", args: []string{"--config", write("bad.yaml", "listen: :1\nlimts:\n  x: 1\n")}, wantErr: `unknown key "limts.x"`},
		{name: "unknown env", env: map[string]string{"TOTPSERVER_LISTN": "x"}, wantErr: "unknown environment variable TOTPSERVER_LISTN"},
		{name: "env over file, flags over env",
			args: []string{"--config", write("ok.yaml", "listen: 127.0.0.1:1\nregistration_timeout: 5m\n"), "--listen", "127.0.0.1:3", "--data", dir},
			env:  map[string]string{"TOTPSERVER_LISTEN": "127.0.0.1:2", "TOTPSERVER_LIMITS_VERIFY_PER_IP_BURST": "7"},
			check: func(t *testing.T, c serve.Config) {
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
			isolateCredentials(t)
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

func TestShippedConfigHasEveryKey(t *testing.T) {
	v := viper.New()
	v.SetConfigFile("../../configs/totpserver.yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	var c serve.Config
	for _, k := range configs.Keys(&c) {
		if !v.InConfig(k) {
			t.Errorf("configs/totpserver.yaml lacks key %s", k)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	credDir := filepath.Join(dir, "credentials")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(credDir, "master.key"), []byte(key32), 0o400); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", `listen: nope
registration_timeout: soon
resync_window: many
session_lifetime: -1h
limts:
  x: 1
metrics:
  listen: 127.0.0.1:9180
  path: /m
appliances:
  pairing_per_ip: {per_second: 1, burst: 0}
  retention: 0s
log:
  format: xml
`)
	tests := []struct {
		name     string
		file     string
		env      map[string]string
		wantOut  string
		wantErrs []string
		wantWarn string // on stderr, beside "ok"
		secret   string // must appear in no output
	}{
		{name: "shipped", file: "../../configs/totpserver.yaml", wantOut: "../../configs/totpserver.yaml: ok\n",
			wantWarn: "../../configs/totpserver.yaml: warning: master key file /var/lib/totpserver/master.key sits in the data directory beside the database"},
		{name: "shipped, with the systemd credential", file: "../../configs/totpserver.yaml", env: map[string]string{"CREDENTIALS_DIRECTORY": credDir},
			wantOut: "../../configs/totpserver.yaml: ok\n"},
		{name: "metrics on a separate listener", file: write("m.yaml", "metrics:\n  listen: 127.0.0.1:9180\n"), wantOut: ": ok\n",
			wantWarn: "sits in the data directory beside the database"},
		{name: "master key file elsewhere", file: write("k.yaml", "master_key_file: /etc/totpbox/master.key\n"), wantOut: ": ok\n"},
		{name: "every problem", file: bad, wantErrs: []string{
			`unknown key "limts.x"`,
			`unknown key "metrics.path"`,
			`registration_timeout: "soon" is not a duration`,
			"resync_window: cannot parse value as 'int'",
			`listen "nope" is not host:port`,
			"session_lifetime must be positive, not -1h0m0s",
			"appliances.retention must be positive, not 0s",
			"appliances.pairing_per_ip.burst must be at least 1, not 0",
			`log.format must be text or json, not "xml"`,
		}},
		{name: "hotp look-ahead and allow_export", file: write("hotp.yaml", "hotp_look_ahead: 0\nallow_export: maybe\n"), wantErrs: []string{
			"hotp_look_ahead must be 1 to 1000, not 0",
			"allow_export: cannot parse value as 'bool'",
		}},
		{name: "hotp resync window under the look-ahead", file: write("hotp2.yaml", "hotp_look_ahead: 20\nhotp_resync_window: 5\n"), wantErrs: []string{
			"hotp_resync_window must be hotp_look_ahead (20) to 100000, not 5",
		}},
		{name: "syslog over tls", file: write("syslog.yaml", "audit:\n  syslog:\n    address: siem.example:6514\n"), wantOut: ": ok\n",
			wantWarn: "sits in the data directory beside the database"},
		{name: "syslog problems", file: write("syslog-bad.yaml", "audit:\n  syslog:\n    address: siem.example:6514\n    transport: relp\n"),
			wantErrs: []string{`audit.syslog.transport must be tls, tcp or udp, not "relp"`}},
		{name: "syslog key without cert", file: write("syslog-key.yaml", "audit:\n  syslog:\n    address: siem.example:6514\n    client_key: /etc/k\n"),
			wantErrs: []string{"audit.syslog.client_cert and client_key go together: give both or neither"}},
		{name: "syslog ca over udp", file: write("syslog-udp.yaml", "audit:\n  syslog:\n    address: siem.example:514\n    transport: udp\n    ca_file: /etc/ca.pem\n"),
			wantErrs: []string{`audit.syslog.ca_file, client_cert and client_key need transport tls, not "udp"`}},
		{name: "metrics on the main listener", file: write("same.yaml", "listen: 127.0.0.1:8080\nmetrics:\n  listen: 127.0.0.1:8080\n"),
			wantErrs: []string{"metrics.listen must differ from listen"}},
		{name: "unknown variable", file: write("ok.yaml", "listen: 127.0.0.1:1\n"), env: map[string]string{"TOTPSERVER_METRICS_LISTN": "x"},
			wantErrs: []string{"unknown environment variable TOTPSERVER_METRICS_LISTN"}},
		{name: "radius", file: write("radius.yaml", "radius:\n  listen: 127.0.0.1:1812\n  clients:\n    - {cidr: 10.0.0.0/24, secret_file: /etc/x, mode: code}\n    - {cidr: 10.0.0.9, secret_credential: vpn, mode: password+code, trust_station_id: true}\n"), wantOut: ": ok\n",
			wantWarn: "sits in the data directory beside the database"},
		{name: "radius problems", file: write("radius-bad.yaml", "radius:\n  listen: nope\n  challenge_timeout: 0s\n  clients:\n    - {cidr: 10.0.0.0/33, mode: otp}\n    - {cidr: 10.0.0.1, secret_file: /a, secret_credential: b, mode: code}\n    - {cidr: 10.0.0.2, secret_credential: /etc/b, mode: code}\n"),
			wantErrs: []string{
				`radius.listen "nope" is not host:port`,
				"radius.challenge_timeout must be positive, not 0s",
				`radius.clients[0].cidr "10.0.0.0/33" is not an address or CIDR range`,
				"radius.clients[0]: give one of secret_file and secret_credential",
				`radius.clients[0].mode must be "code" or "password+code", not "otp"`,
				"radius.clients[1]: give one of secret_file and secret_credential",
				`radius.clients[2].secret_credential "/etc/b" is a credential name, not a path`,
			}},
		{name: "oidc", file: write("oidc.yaml", "oidc:\n  issuer: https://idp.example.com/realms/staff\n  client_id: totpbox\n  client_secret_credential: oidc\n  redirect_url: https://totp.example.com/signin/oidc/callback\n  role_map:\n    - {group: totp-admins, role: admin}\n    - {group: store-12, role: helpdesk@store-12}\n  local_signin_from: [10.0.0.0/8, 192.0.2.7]\n"),
			wantOut: ": ok\n", wantWarn: "sits in the data directory beside the database"},
		{name: "oidc problems", file: write("oidc-bad.yaml", "oidc:\n  issuer: http://idp.example.com\n  client_id: totpbox\n  client_secret_file: /etc/s\n  redirect_url: https://totp.example.com/cb\n"),
			wantErrs: []string{`oidc.issuer: "http://idp.example.com" is not an https:// URL (http:// only for loopback)`}},
		{name: "oidc role", file: write("oidc-role.yaml", "oidc:\n  issuer: https://idp.example.com\n  client_id: totpbox\n  client_secret_file: /etc/s\n  redirect_url: https://totp.example.com/signin/oidc/callback\n  role_map:\n    - {group: g, role: superuser}\n"),
			wantErrs: []string{`oidc.role_map[0].role: "superuser" is not admin, helpdesk or auditor (optionally @site)`}},
		{name: "radius without clients", file: write("radius-none.yaml", "radius:\n  listen: 127.0.0.1:1812\n"),
			wantErrs: []string{"radius.clients is empty"}},
		{name: "scim groups", file: write("scim.yaml", "directory:\n  scim:\n    users_group: Kiosk Users\n    admins_group: totpbox admins\n"), wantOut: ": ok\n",
			wantWarn: "sits in the data directory beside the database"},
		{name: "scim groups the same", file: write("scim-same.yaml", "directory:\n  scim:\n    users_group: Kiosk\n    admins_group: KIOSK\n"),
			wantErrs: []string{`directory.scim.users_group and admins_group are both "Kiosk": name two groups`}},
		{name: "scim group padded", file: write("scim-pad.yaml", "directory:\n  scim:\n    users_group: \" Kiosk\"\n    admin_group: x\n"),
			wantErrs: []string{`directory.scim.users_group " Kiosk" starts or ends with a space`, `unknown key "directory.scim.admin_group"`}},
		{name: "missing file", file: filepath.Join(dir, "none.yaml"), wantErrs: []string{"no such file"}},
		{name: "master key in a variable", file: write("ok.yaml", "listen: 127.0.0.1:1\n"), env: map[string]string{"TOTPSERVER_MASTER_KEY": key32},
			wantOut: ": ok\n", secret: key32},
		{name: "master keys rotated", file: write("rot.yaml", "master_key: \""+key32+","+key32b+"\"\n"), wantOut: ": ok\n", secret: key32},
		{name: "master key not base64", file: write("nb.yaml", "listen: 127.0.0.1:1\n"), env: map[string]string{"TOTPSERVER_MASTER_KEY": "s3cret-not-base64!"},
			wantErrs: []string{"master_key: master key 1: not base64"}, secret: "s3cret-not-base64!"},
		{name: "master key too short", file: write("short.yaml", "master_key: "+key16+"\n"),
			wantErrs: []string{"master_key: master key 1: 16 bytes, want 32"}, secret: key16},
		{name: "second master key bad", file: write("second.yaml", "listen: nope\n"), env: map[string]string{"TOTPSERVER_MASTER_KEY": key32 + "\n" + key16},
			wantErrs: []string{`listen "nope" is not host:port`, "master_key: master key 2: 16 bytes, want 32"}, secret: key16},
		{name: "master key twice", file: write("twice.yaml", "listen: 127.0.0.1:1\n"), env: map[string]string{"TOTPSERVER_MASTER_KEY": key32 + " " + key32},
			wantErrs: []string{fmt.Sprintf("master_key: master key %q: duplicate key id", store.KeyID(bytes.Repeat([]byte{0x5a}, 32)))}, secret: key32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateCredentials(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			root := rootCommand()
			var out, errOut strings.Builder
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"config", "check", tc.file})
			err := root.Execute()
			if tc.secret != "" && (strings.Contains(out.String(), tc.secret) || strings.Contains(errOut.String(), tc.secret)) {
				t.Fatalf("config check shows the master key:\n%s%s", out.String(), errOut.String())
			}
			if len(tc.wantErrs) == 0 {
				if err != nil || !strings.HasSuffix(out.String(), tc.wantOut) {
					t.Fatalf("config check = %v, out %q, err %q; want %q", err, out.String(), errOut.String(), tc.wantOut)
				}
				warn := errOut.String()
				if tc.wantWarn == "" && warn != "" || tc.wantWarn != "" && (!strings.Contains(warn, tc.wantWarn) || strings.Count(warn, "\n") != 1) {
					t.Fatalf("config check warned %q, want %q on one line", warn, tc.wantWarn)
				}
				return
			}
			var exit exitError
			if !errors.As(err, &exit) || exit.code != 2 {
				t.Fatalf("config check = %v, want exit status 2", err)
			}
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if len(lines) != len(tc.wantErrs) {
				t.Errorf("config check reported %d problems, want %d:\n%s", len(lines), len(tc.wantErrs), errOut.String())
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(errOut.String(), tc.file+": ") || !strings.Contains(errOut.String(), want) {
					t.Errorf("config check output lacks %q:\n%s", want, errOut.String())
				}
			}
		})
	}
}

// Master keys for TestConfigCheck: base64 of 32 bytes (two of them) and of
// 16 bytes.
var (
	key32  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	key32b = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))
	key16  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x3c}, 16))
)

func TestServeMountsApplianceAPIAndMetrics(t *testing.T) {
	dir := t.TempDir()
	addr, maddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	t.Setenv("TOTPSERVER_METRICS_LISTEN", maddr)
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err, out := run(t, "init", "--data", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	root := rootCommand()
	root.SetArgs([]string{"serve", "--data", dir, "--listen", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	get := func(url string) (int, string) {
		t.Helper()
		for range 100 {
			resp, err := http.Get(url)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		t.Fatalf("GET %s: server never answered", url)
		return 0, ""
	}
	if code, body := get("http://" + maddr + "/metrics"); code != 200 || !strings.Contains(body, "totpserver_verifies_total") {
		t.Fatalf("metrics listener /metrics = %d:\n%s", code, body)
	}
	if code, body := get("http://" + maddr + "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("metrics listener /readyz = %d %q", code, body)
	}
	if code, body := get("http://" + addr + "/metrics"); code == 200 || strings.Contains(body, "totpserver_verifies_total") {
		t.Fatalf("main listener serves metrics: %d", code)
	}
	resp, err := http.Post("http://"+addr+"/api/v1/appliance/pairing", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), `"unsigned"`) {
		t.Fatalf("unsigned appliance request = %d %s, want 401 unsigned", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// isolateCredentials clears the systemd credential variable and points
// serve.CredStoreDirs at an empty temporary directory, which it returns.
func isolateCredentials(t *testing.T) string {
	t.Helper()
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dir := t.TempDir()
	old := serve.CredStoreDirs
	serve.CredStoreDirs = []string{dir}
	t.Cleanup(func() { serve.CredStoreDirs = old })
	return dir
}

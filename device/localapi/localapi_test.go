package localapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

func startAPI(t *testing.T) (*Client, *vault.Vault, string) {
	t.Helper()
	dir := t.TempDir()
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	sock := filepath.Join(dir, "run", "totpd.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{Vault: v, Status: func() any { return map[string]string{"time_state": "SYNCED"} }}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, b.Handler()) }()
	t.Cleanup(func() { cancel(); <-done })
	return NewClient(sock), v, sock
}

const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func TestAccountsLifecycle(t *testing.T) {
	c, v, sock := startAPI(t)
	ctx := context.Background()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	var a Account
	if err := c.Do(ctx, "POST", "/v1/accounts", AddRequest{URI: "otpauth://totp/AWS:alice?secret=" + secret + "&issuer=AWS"}, &a); err != nil {
		t.Fatal(err)
	}
	if a.Issuer != "AWS" || a.Account != "alice" || a.State != "active" || a.Source != vault.SourceLocal {
		t.Fatalf("added %+v", a)
	}
	var b Account
	if err := c.Do(ctx, "POST", "/v1/accounts", AddRequest{Secret: "jbsw y3dp ehpk 3pxp", Issuer: "Site", Name: "bob", Digits: 8}, &b); err != nil {
		t.Fatal(err)
	}
	if b.Digits != 8 || b.Name != "Site: bob" {
		t.Fatalf("added from secret %+v", b)
	}
	if err := c.Do(ctx, "PATCH", "/v1/accounts/"+a.ID, RenameRequest{Label: "AWS prod"}, &a); err != nil || a.Label != "AWS prod" {
		t.Fatalf("rename = %+v, %v", a, err)
	}
	var list []Account
	if err := c.Do(ctx, "GET", "/v1/accounts", nil, &list); err != nil || len(list) != 2 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if err := c.Do(ctx, "DELETE", "/v1/accounts/"+b.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v.Len() != 1 {
		t.Fatalf("vault holds %d accounts after delete, want 1", v.Len())
	}
}

func TestServerAccountsAreNotTouched(t *testing.T) {
	c, v, _ := startAPI(t)
	k, _ := enroll.NewKey("Corp", "alice")
	srv, err := v.Add(vault.Account{Key: k, State: vault.Active, Source: "reg-42"})
	if err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	err = c.Do(context.Background(), "DELETE", "/v1/accounts/"+srv.ID, nil, nil)
	if !errors.As(err, &se) || se.Code != 409 {
		t.Fatalf("DELETE of a server account = %v, want 409", err)
	}
	err = c.Do(context.Background(), "PATCH", "/v1/accounts/"+srv.ID, RenameRequest{Label: "x"}, nil)
	if !errors.As(err, &se) || se.Code != 409 {
		t.Fatalf("PATCH of a server account = %v, want 409", err)
	}
	if v.Len() != 1 {
		t.Fatal("server account removed")
	}
}

func TestBadInput(t *testing.T) {
	c, v, _ := startAPI(t)
	for _, tt := range []struct {
		body any
		want string
	}{
		{AddRequest{}, "missing uri or secret"},
		{AddRequest{URI: "otpauth://hotp/x?secret=" + secret}, "hotp"},
		{AddRequest{URI: "otpauth://totp/x?secret=" + secret, Secret: secret}, "not both"},
		{AddRequest{Secret: "JBSWY3DP", Issuer: "x"}, "80"},
		{AddRequest{Secret: secret}, "issuer or a name"},
		{AddRequest{Secret: secret, Issuer: "x", Digits: 7}, "digits"},
		{AddRequest{Secret: secret, Issuer: "x", Algorithm: "MD5"}, "algorithm"},
		{map[string]any{"uri": 3}, "malformed JSON"},
		{map[string]any{"url": "x"}, "malformed JSON"},
	} {
		err := c.Do(context.Background(), "POST", "/v1/accounts", tt.body, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Msg, tt.want) {
			t.Errorf("POST %+v = %v, want 400 containing %q", tt.body, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q leaks the secret", err)
		}
	}
	if v.Len() != 0 {
		t.Errorf("bad input stored %d accounts", v.Len())
	}
	err := c.Do(context.Background(), "DELETE", "/v1/accounts/nope", nil, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("DELETE unknown = %v, want 404", err)
	}
}

func TestListenRefusesSecondDaemon(t *testing.T) {
	_, _, sock := startAPI(t)
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen = %v, want in use", err)
	}
	u := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	err := u.Do(context.Background(), "GET", "/v1/status", nil, nil)
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("unreachable socket = %v", err)
	}
}

package main

import (
	"context"
	"github.com/totpbox/totpbox/internal/testkit"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func TestServeRADIUS(t *testing.T) {
	dir := t.TempDir()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raddr := pc.LocalAddr().String()
	pc.Close()
	secretFile := filepath.Join(dir, "vpn.secret")
	os.WriteFile(secretFile, []byte("vpn-secret\n"), 0o600)
	cfg := filepath.Join(dir, "totpserver.yaml")
	os.WriteFile(cfg, []byte("radius:\n  listen: "+raddr+"\n  clients:\n    - name: vpn\n      cidr: 127.0.0.1\n      secret_file: "+secretFile+
		"\n      mode: code\n      allow_missing_message_authenticator: true\nlog:\n  level: error\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err, out := run(t, "init", "--config", cfg, "--data", filepath.Join(dir, "data")); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	root := rootCommand()
	root.SetArgs([]string{"serve", "--config", cfg, "--data", filepath.Join(dir, "data"), "--listen", testkit.FreeAddr(t)})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	p := radius.New(radius.CodeAccessRequest, []byte("vpn-secret"))
	rfc2865.UserName_SetString(p, "nobody")
	rfc2865.UserPassword_SetString(p, "123456")
	var reply *radius.Packet
	for range 100 {
		ectx, ecancel := context.WithTimeout(ctx, 200*time.Millisecond)
		reply, err = radius.Exchange(ectx, p, raddr)
		ecancel()
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("RADIUS listener never answered: %v", err)
	}
	if reply.Code != radius.CodeAccessReject {
		t.Fatalf("unknown user: %v, want Access-Reject", reply.Code)
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

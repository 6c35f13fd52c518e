package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// BenchmarkVerifyEvents measures verify throughput with syslog and a
// webhook endpoint on, beside off, in the same run (target: on/off ≥
// 0.95). In both, a background writer records 200 audit events a second
// (device.lock, which raises a webhook event) beside the verifies; with
// events on they also go to a TCP syslog sink and are delivered to a
// local webhook receiver.
func BenchmarkVerifyEvents(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer recv.Close()

	for _, on := range []bool{false, true} {
		name := "off"
		var mod func(*Config)
		if on {
			name = "on"
			mod = func(c *Config) {
				c.Syslog = &syslog.Config{Address: sink.Addr().String(), Transport: syslog.TransportTCP}
				c.Webhooks = Webhooks{AllowPrivateTargets: true, Poll: 100 * time.Millisecond}
			}
		}
		env := newBenchEnvWith(b, storetest.OpenSQLite(b), time.Hour, mod)
		ctx, cancel := context.WithCancel(context.Background())
		go env.srv.Run(ctx)
		if on {
			if _, _, err := env.srv.Core().CreateWebhook(ctx, core.System, recv.URL, []string{"*"}); err != nil {
				b.Fatal(err)
			}
		}
		go func() {
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					env.srv.Core().Audit(ctx, core.System, "device.lock", "user:bench device:1", "bench")
				}
			}
		}()
		b.Run(name+"/clients=16", func(b *testing.B) { env.run(b, b.N, 16) })
		cancel()
	}
}

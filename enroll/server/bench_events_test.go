package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
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
// local webhook receiver. The two servers run side by side and are
// measured in turn, off then on, TOTPBOX_BENCH_PAIRS times (default 3),
// so that a machine whose load drifts weighs on both alike: compare the
// rows of one pair.
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

	pairs := 3
	if v, err := strconv.Atoi(os.Getenv("TOTPBOX_BENCH_PAIRS")); err == nil && v > 0 {
		pairs = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type side struct {
		name   string
		env    *benchEnv
		token  string      // its API token (benchToken while measured)
		active atomic.Bool // its background writer writes
	}
	var sides []*side
	for _, on := range []bool{false, true} {
		sd := &side{name: "off"}
		var mod func(*Config)
		if on {
			sd.name = "on"
			mod = func(c *Config) {
				c.Syslog = &syslog.Config{Address: sink.Addr().String(), Transport: syslog.TransportTCP}
				c.Webhooks = Webhooks{AllowPrivateTargets: true, Poll: 100 * time.Millisecond}
			}
		}
		sd.env = newBenchEnvWith(b, storetest.OpenSQLite(b), time.Hour, mod)
		sd.token = benchToken
		go sd.env.srv.Run(ctx)
		if on {
			if _, _, err := sd.env.srv.Core().CreateWebhook(ctx, core.System, recv.URL, []string{"*"}); err != nil {
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
					if sd.active.Load() {
						sd.env.srv.Core().Audit(ctx, core.System, "device.lock", "user:bench device:1", "bench")
					}
				}
			}
		}()
		sides = append(sides, sd)
	}
	for p := range pairs {
		for _, sd := range sides {
			benchToken = sd.token
			sd.active.Store(true)
			b.Run(fmt.Sprintf("pair=%d/%s/clients=16", p+1, sd.name), func(b *testing.B) { sd.env.run(b, b.N, 16) })
			sd.active.Store(false)
		}
	}
}

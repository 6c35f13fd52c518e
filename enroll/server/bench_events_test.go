package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
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

// BenchmarkWebhookDelivery measures the time from an event to its webhook
// delivery with 3 replicas on PostgreSQL (target: p99 ≤ 1 s). Each event
// (device.lock, audited through the core) is raised on a random replica,
// one every 20 ms; the receiver notes when each arrives, the first
// delivery of an id only. The replicas wake each other with the fleet
// notice of a new event; their poll stays at its default, a second.
func BenchmarkWebhookDelivery(b *testing.B) {
	var (
		mu     sync.Mutex
		raised = map[int64]time.Time{}
		seen   = map[string]bool{}
		lat    []time.Duration
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var body events.Body
		var data events.Data
		if json.NewDecoder(r.Body).Decode(&body) != nil || json.Unmarshal(body.Data, &data) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if id := r.Header.Get("webhook-id"); !seen[id] {
			seen[id] = true
			lat = append(lat, at.Sub(raised[data.DeviceID]))
		}
	}))
	defer recv.Close()
	hs := replicas(b, 3, func(c *Config) { c.Webhooks = Webhooks{AllowPrivateTargets: true} })
	ctx := b.Context()
	if _, _, err := hs[0].srv.Core().CreateWebhook(ctx, core.System, recv.URL, []string{events.DeviceLocked}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := int64(i + 1)
		mu.Lock()
		raised[id] = time.Now()
		mu.Unlock()
		hs[rand.IntN(len(hs))].srv.Core().Audit(ctx, core.System, "device.lock", fmt.Sprintf("user:bench device:%d", id), "bench")
		time.Sleep(20 * time.Millisecond)
	}
	testkit.WaitFor(b, time.Minute, "every event delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lat) == b.N
	})
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	testkit.ReportLatency(b, lat)
	b.ReportMetric(0, "ns/op")
}

package server

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"github.com/totpbox/totpbox/enroll/server/api"

	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// Benchmark shape: benchUsers users with one active MFA device each;
// benchClients clients (64, 16 or 8) over keep-alive connections to a real
// loopback listener, in the same process as the server. Time is a fake
// clock moved one 30 s step per round; in each round every device is
// verified once with the code of the new step, so every request is a
// success that moves the replay high-water mark (the costly path: one
// conditional UPDATE each).
const benchUsers = 1024

var benchClients = []int{64, 16, 8}

type benchEnv struct {
	srv   *Server
	url   string
	clock *testkit.Clock
	base  time.Time
	round int64
	users []string
	keys  []enroll.Key
}

func newBenchEnv(b *testing.B, st store.Store, cacheTTL time.Duration) *benchEnv {
	b.Helper()
	return newBenchEnvWith(b, st, cacheTTL, nil)
}

// newBenchEnvWith is newBenchEnv with mod applied to the server's config.
func newBenchEnvWith(b *testing.B, st store.Store, cacheTTL time.Duration, mod func(*Config)) *benchEnv {
	b.Helper()
	ctx := context.Background()
	env := &benchEnv{clock: testkit.NewClock(start), base: start}
	sealer := testSealer(b)
	cfg := Config{
		Store:  st,
		Sealer: sealer,
		Clock:  env.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// All clients share 127.0.0.1: the per-address limit would
		// measure itself. The per-user limit stays on.
		Limits:   Limits{VerifyPerIP: Rate{PerSecond: -1}},
		CacheTTL: cacheTTL,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env.srv = srv
	env.keys = storetest.SeedUsers(b, st, sealer, benchUsers, start)
	for i := range benchUsers {
		env.users = append(env.users, fmt.Sprintf("user%04d", i))
	}
	tok, err := api.CreateToken(ctx, st, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	env.url = "http://" + ln.Addr().String() + "/api/v1/verify"
	benchToken = tok
	return env
}

var benchToken string

// run makes at least n verifies over HTTP from clients concurrent clients
// and reports throughput and latency percentiles.
func (env *benchEnv) run(b *testing.B, n, clients int) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	rounds := (n + benchUsers - 1) / benchUsers
	lat := make([][]time.Duration, clients)
	var failed sync.Map
	b.ResetTimer()
	began := time.Now()
	for range rounds {
		env.round++
		now := env.base.Add(time.Duration(env.round) * 30 * time.Second)
		env.clock.Set(now)
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				var body bytes.Buffer
				for i := w; i < benchUsers; i += clients {
					body.Reset()
					fmt.Fprintf(&body, `{"username":%q,"code":%q}`, env.users[i], enroll.Code(env.keys[i], now))
					req, _ := http.NewRequest("POST", env.url, &body)
					req.Header.Set("Authorization", "Bearer "+benchToken)
					req.Header.Set("Content-Type", "application/json")
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						failed.Store(i, err.Error())
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat[w] = append(lat[w], time.Since(t0))
					if resp.StatusCode != 200 {
						failed.Store(i, resp.Status)
					}
				}
			})
		}
		wg.Wait()
	}
	el := time.Since(began)
	b.StopTimer()
	failed.Range(func(k, v any) bool {
		b.Fatalf("verify for user %d failed: %v", k, v)
		return false
	})
	all := slices.Concat(lat...)
	b.ReportMetric(float64(len(all))/el.Seconds(), "verifies/s")
	testkit.ReportLatency(b, all)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVerify measures POST /api/v1/verify over HTTP on SQLite and
// PostgreSQL, beside the ceiling of raw code validation (enroll.Verify on
// all cores, no HTTP, no store).
func BenchmarkVerify(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		k, _ := enroll.NewKey("bench", "raw")
		now := start
		code := enroll.Code(k, now)
		b.ResetTimer()
		began := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := enroll.Verify(k, code, now, enroll.VerifyOptions{Window: 1}); !ok {
					panic("raw verify failed")
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "verifies/s")
	})
	stores := []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}}
	if os.Getenv(storetest.PostgresDSNEnv) != "" {
		stores = append(stores, struct {
			name string
			open func(testing.TB) store.Store
		}{"postgres", storetest.OpenPostgres})
	}
	// cold: every verify reads the user and devices (each user verifies
	// once a 30 s step, longer than the default cache TTL), then writes.
	// warm: the cache holds every user (CacheTTL an hour, as a single
	// server owning its SQLite file may run), so a verify is one write.
	// p99 at 64 clients on two cores shared with the clients is mostly
	// queueing (Little's law: 64 / throughput is the mean latency), so
	// each case runs at three concurrencies.
	for _, s := range stores {
		for _, c := range []struct {
			name string
			ttl  time.Duration
		}{{"cold", 0}, {"warm", time.Hour}} {
			env := newBenchEnv(b, s.open(b), c.ttl)
			for _, clients := range benchClients {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", s.name, c.name, clients), func(b *testing.B) { env.run(b, b.N, clients) })
			}
		}
	}
}

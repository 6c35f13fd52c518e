package radius_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/api"
	rad "github.com/totpbox/totpbox/enroll/server/radius"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// benchUsers users with one active MFA device each, as in enroll/server's
// BenchmarkVerify: the fake clock moves one 30 s step per round, and in
// each round every device is verified once with the new step's code, so
// every request is a success (one conditional UPDATE each).
const benchUsers = 1024

type benchEnv struct {
	clock   *testkit.Clock
	round   int64
	users   []string
	keys    []enroll.Key
	httpURL string
	token   string
	radAddr string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, b.TempDir()+"/totpserver.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	env := &benchEnv{clock: testkit.NewClock(start)}
	sealer := testSealer(b)
	srv, err := server.New(server.Config{
		Store: st, Sealer: sealer, Clock: env.clock, Logger: testkit.Quiet(),
		// Every client is 127.0.0.1: the per-address limit would measure
		// itself. The per-user limit stays on.
		Limits: server.Limits{VerifyPerIP: server.Rate{PerSecond: -1}},
		RADIUS: rad.Config{Clients: []rad.Client{{Name: "bench", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret), Mode: rad.ModeCode}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	env.keys = storetest.SeedUsers(b, st, sealer, benchUsers, start)
	for i := range benchUsers {
		env.users = append(env.users, fmt.Sprintf("user%04d", i))
	}
	if env.token, err = api.CreateToken(ctx, st, "bench"); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	env.httpURL = "http://" + ln.Addr().String() + "/api/v1/verify"
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	env.radAddr = pc.LocalAddr().String()
	testkit.Run(b, func(ctx context.Context) error { defer pc.Close(); return srv.ServeRADIUS(ctx, pc) })
	return env
}

// run makes at least b.N verifies from clients concurrent clients, each
// with verify (user i's code at now), and reports throughput and latency.
func (env *benchEnv) run(b *testing.B, clients int, newClient func() func(i int, now time.Time) error) {
	rounds := (b.N + benchUsers - 1) / benchUsers
	lat := make([][]time.Duration, clients)
	var failed sync.Map
	verifiers := make([]func(int, time.Time) error, clients)
	for w := range verifiers {
		verifiers[w] = newClient()
	}
	b.ResetTimer()
	began := time.Now()
	for range rounds {
		env.round++
		now := start.Add(time.Duration(env.round) * 30 * time.Second)
		env.clock.Set(now)
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				for i := w; i < benchUsers; i += clients {
					t0 := time.Now()
					if err := verifiers[w](i, now); err != nil {
						failed.Store(i, err.Error())
					}
					lat[w] = append(lat[w], time.Since(t0))
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

// httpClient verifies through POST /api/v1/verify on a keep-alive
// connection of its own.
func (env *benchEnv) httpClient() func(int, time.Time) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	var body bytes.Buffer
	return func(i int, now time.Time) error {
		body.Reset()
		fmt.Fprintf(&body, `{"username":%q,"code":%q}`, env.users[i], enroll.Code(env.keys[i], now))
		req, _ := http.NewRequest("POST", env.httpURL, &body)
		req.Header.Set("Authorization", "Bearer "+env.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		return nil
	}
}

// radiusClient verifies through an Access-Request with a
// Message-Authenticator on a UDP socket of its own.
func (env *benchEnv) radiusClient(b *testing.B) func() func(int, time.Time) error {
	return func() func(int, time.Time) error {
		conn, err := net.Dial("udp", env.radAddr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		buf := make([]byte, radius.MaxPacketLength)
		return func(i int, now time.Time) error {
			raw, err := rad.SignRequest(request(testSecret, env.users[i], enroll.Code(env.keys[i], now)))
			if err != nil {
				return err
			}
			conn.Write(raw)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				return err
			}
			if !radius.IsAuthenticResponse(buf[:n], raw, []byte(testSecret)) {
				return fmt.Errorf("reply does not authenticate")
			}
			if code := radius.Code(buf[0]); code != radius.CodeAccessAccept {
				return fmt.Errorf("%v", code)
			}
			return nil
		}
	}
}

// BenchmarkRADIUSvsHTTP measures verifies with valid codes through the
// RADIUS listener and through POST /api/v1/verify, on one server (SQLite,
// cache cold: each user verifies once a 30 s step), in the same run.
func BenchmarkRADIUSvsHTTP(b *testing.B) {
	env := newBenchEnv(b)
	for _, clients := range []int{64, 16} {
		b.Run(fmt.Sprintf("http/clients=%d", clients), func(b *testing.B) { env.run(b, clients, env.httpClient) })
		b.Run(fmt.Sprintf("radius/clients=%d", clients), func(b *testing.B) { env.run(b, clients, env.radiusClient(b)) })
	}
}

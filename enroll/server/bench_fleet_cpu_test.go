package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// benchFleet is n replicas (server.New, each with its own pool, bus and
// janitor) on a database of their own, each on a loopback listener.
type benchFleet struct {
	dsn    string
	urls   []string
	stores []store.Store
	srvs   []*Server
	sealer *store.Sealer
	token  string
}

func newBenchFleet(b *testing.B, n int, clock Clock, mod func(*Config)) *benchFleet {
	b.Helper()
	f := &benchFleet{dsn: storetest.CreateDatabase(b, storetest.PostgresDSN(b)), sealer: testSealer(b)}
	// TOTPBOX_BENCH_POOL_MAX_CONNS sizes each replica's pool
	// (pool_max_conns), e.g. the default's total divided among the
	// replicas; unset, each has the default.
	replicaDSN := f.dsn
	if v := os.Getenv("TOTPBOX_BENCH_POOL_MAX_CONNS"); v != "" {
		sep := "?"
		if strings.Contains(replicaDSN, "?") {
			sep = "&"
		}
		replicaDSN += sep + "pool_max_conns=" + v
	}
	for range n {
		st, err := store.OpenPostgres(context.Background(), replicaDSN)
		if err != nil {
			b.Fatal(err)
		}
		cfg := Config{Store: st, Sealer: f.sealer, Clock: clock, Logger: testkit.Quiet()}
		if mod != nil {
			mod(&cfg)
		}
		srv, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: srv.Handler()}
		go hs.Serve(ln)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		b.Cleanup(func() { hs.Close(); cancel(); <-done; st.Close() })
		testkit.WaitFor(b, 30*time.Second, "fleet bus listening", srv.Bus().Live)
		f.urls = append(f.urls, "http://"+ln.Addr().String())
		f.stores = append(f.stores, st)
		f.srvs = append(f.srvs, srv)
	}
	tok, err := api.CreateToken(context.Background(), f.stores[0], "bench")
	if err != nil {
		b.Fatal(err)
	}
	f.token = tok
	return f
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgStats reads the database's committed transactions and the CPU time
// of the PostgreSQL backends connected to it (from /proc, so only on the
// database's own host; zero when /proc cannot be read). A backend reports
// its statistics to pg_stat_database 10 s after it went idle, or, when the
// shared entry is busy (many backends, a loaded host), up to 60 s later
// (PostgreSQL 15's PGSTAT_MAX_INTERVAL): callers wait statsFlush first.
const statsFlush = 61 * time.Second

func pgStats(b *testing.B, dsn string) (commits int64, backendCPU time.Duration, backends int) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&commits); err != nil {
		b.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			backendCPU += procCPU(pid)
			backends++
		}
	}
	return commits, backendCPU, backends
}

// procCPU is the CPU time of process pid from /proc/PID/stat (utime +
// stime, at 100 ticks a second as on every Linux the project runs on).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkFleetVerifyCPU measures the CPU one verify costs with 1 and
// with 3 replicas on one PostgreSQL database, in the same run: 512 users
// with one device each, 16 clients, each request sent to the next replica
// in turn (as a round-robin balancer does), every user verified once a
// 30 s step (a fake clock: the cold path, the cache never holds the user).
// cpu-us/verify is this process (servers and clients), pg-us/verify the
// database's backends (backends: how many are connected at the end),
// total-us/verify the two added, commits/verify from pg_stat_database. "floor" is
// the same clients against /healthz of one replica: what HTTP and the
// clients cost without the verify.
func BenchmarkFleetVerifyCPU(b *testing.B) {
	const users, clients = 512, 16
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			clock := testkit.NewClock(start)
			f := newBenchFleet(b, n, clock, func(c *Config) { c.Limits = Limits{VerifyPerIP: Rate{PerSecond: -1}} })
			keys := storetest.SeedUsers(b, f.stores[0], f.sealer, users, start)
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			verify := func(i int, now time.Time) error {
				body := fmt.Sprintf(`{"username":"user%04d","code":%q}`, i, enroll.Code(keys[i], now))
				req, _ := http.NewRequest("POST", f.urls[i%n]+"/api/v1/verify", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+f.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("user%04d: %s", i, resp.Status)
				}
				return nil
			}
			rounds := max(1, (b.N+users-1)/users)
			round := 0
			runRound := func() {
				round++
				now := start.Add(time.Duration(round) * 30 * time.Second)
				clock.Set(now)
				var wg sync.WaitGroup
				for w := range clients {
					wg.Go(func() {
						for i := w; i < users; i += clients {
							if err := verify(i, now); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			}
			runRound() // connections, pools and statements warm
			time.Sleep(statsFlush)
			c0, pg0, _ := pgStats(b, f.dsn)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range rounds {
				runRound()
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			time.Sleep(statsFlush)
			c1, pg1, backends := pgStats(b, f.dsn)
			done := float64(rounds * users)
			b.ReportMetric(float64(cpu.Microseconds())/done, "cpu-us/verify")
			b.ReportMetric(float64((pg1-pg0).Microseconds())/done, "pg-us/verify")
			b.ReportMetric(float64((cpu+pg1-pg0).Microseconds())/done, "total-us/verify")
			b.ReportMetric(float64(c1-c0)/done, "commits/verify")
			b.ReportMetric(float64(backends), "backends")
			b.ReportMetric(0, "ns/op")

			// The floor, in the same run: the same requests' HTTP without
			// the verify.
			cpu0 = cpuTime()
			var wg sync.WaitGroup
			for w := range clients {
				wg.Go(func() {
					for i := w; i < rounds*users; i += clients {
						req, _ := http.NewRequest("POST", f.urls[0]+"/healthz", strings.NewReader(`{"username":"user0000","code":"123456"}`))
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/done, "floor-cpu-us/req")
		})
	}
}

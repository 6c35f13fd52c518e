package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// BenchmarkVerifyOutside measures POST /api/v1/verify as users get it: the
// server (server.New with its default limits and cache TTL, on a loopback
// listener) in this process, the clients in another (this test binary run
// again as a load client, see runLoadClient), so the server's CPU is this
// process's alone. outsideUsers users with one active MFA device each
// (seeded through store.BulkCreator); every request carries a distinct
// "ip" per user, so the per-address limit is on and never refuses.
//
// A round sends one verify per user, with the code of the round's step:
// the server's clock moves one 30 s step per round, so each user verifies
// once a step, longer than the cache TTL apart (the cold path: the user and
// devices are read from the store on every verify), and every verify is a
// success that records its step. Beside it, in the same round, the same
// clients send the same requests to a no-op JSON handler (it decodes the
// request and answers {"ok":true}) on its own listener in this process:
// the ceiling. The two alternate, in turn first. One round of each warms
// connections, statements and caches first.
//
// Reported: verifies/s and noop-req/s, their ratio, p50/p99 of each,
// server CPU per request (this process: getrusage), and on PostgreSQL the
// database backends' CPU per verify (from /proc, so only with the
// database on this host) and the total. b.N is the number of rounds:
//
//	go test ./enroll/server/ -run '^$' -bench BenchmarkVerifyOutside -benchtime 3x
func BenchmarkVerifyOutside(b *testing.B) {
	stores := []string{"sqlite"}
	if os.Getenv(storetest.PostgresDSNEnv) != "" {
		stores = append(stores, "postgres")
	}
	for _, name := range stores {
		env := newOutsideEnv(b, name)
		for _, clients := range []int{16, 32, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", name, clients), func(b *testing.B) { env.run(b, clients) })
		}
	}
}

// outsideUsers is how many users BenchmarkVerifyOutside seeds.
const outsideUsers = 32768

// loadClientEnv, set in the environment of this test binary to a users
// file, makes it the load client of BenchmarkVerifyOutside instead of
// running tests (see runLoadClient).
const loadClientEnv = "TOTPBOX_BENCH_LOAD_CLIENT"

// loadUser is one user as the load client knows it.
type loadUser struct {
	Name string     `json:"name"`
	IP   string     `json:"ip"`
	Key  enroll.Key `json:"key"`
}

// loadPass is a command to the load client: send one request per user to
// URL from Clients concurrent clients, the code that of the time At.
type loadPass struct {
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	Clients int       `json:"clients"`
	At      time.Time `json:"at"`
}

// loadResult is the load client's answer to a loadPass.
type loadResult struct {
	Elapsed time.Duration `json:"elapsed"`
	// Latencies of the requests answered, in microseconds.
	Latencies []int32 `json:"latencies"`
	Failed    int     `json:"failed"`
	FirstFail string  `json:"first_fail,omitempty"`
}

type outsideEnv struct {
	clock     *testkit.Clock
	round     int64
	verifyURL string
	noopURL   string
	token     string
	dsn       string // PostgreSQL's, for its backends' CPU; "" on SQLite
	cmd       *json.Encoder
	results   *bufio.Scanner
	warm      bool
}

func newOutsideEnv(b *testing.B, kind string) *outsideEnv {
	b.Helper()
	ctx := context.Background()
	env := &outsideEnv{clock: testkit.NewClock(start)}
	var st store.Store
	var err error
	switch kind {
	case "sqlite":
		st, err = store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
	case "postgres":
		env.dsn = storetest.CreateDatabase(b, storetest.PostgresDSN(b))
		st, err = store.OpenPostgres(ctx, env.dsn)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sealer := testSealer(b)
	srv, err := New(Config{Store: st, Sealer: sealer, Clock: env.clock, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	// Its janitor and fleet bus run, as in totpserver.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	b.Cleanup(func() { stop(); <-done })
	keys := storetest.SeedUsers(b, st, sealer, outsideUsers, start)
	users := make([]loadUser, len(keys))
	for i, k := range keys {
		users[i] = loadUser{Name: fmt.Sprintf("user%04d", i), IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Key: k}
	}
	if env.token, err = api.CreateToken(ctx, st, "bench"); err != nil {
		b.Fatal(err)
	}
	env.verifyURL = serveOn(b, srv.Handler()) + "/api/v1/verify"
	env.noopURL = serveOn(b, http.HandlerFunc(noopJSON)) + "/api/v1/verify"

	usersFile := filepath.Join(b.TempDir(), "users.json")
	data, err := json.Marshal(users)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(usersFile, data, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd, err := testkit.SelfCommand("-test.run", "^$")
	if err != nil {
		b.Fatal(err)
	}
	cmd.Env = append(os.Environ(), loadClientEnv+"="+usersFile)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	env.cmd = json.NewEncoder(in)
	env.results = bufio.NewScanner(out)
	env.results.Buffer(nil, 64<<20)
	return env
}

// serveOn serves h on a loopback listener until the benchmark ends and
// returns its base URL.
func serveOn(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// noopJSON is the ceiling: it reads a verify request as the API does and
// answers as a success would, doing nothing else.
func noopJSON(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Code, IP string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Username == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}` + "\n"))
}

// pass has the load client send one request per user and returns what it
// measured, with this process's CPU and the database backends' meanwhile.
func (env *outsideEnv) pass(b *testing.B, p loadPass) (loadResult, time.Duration, time.Duration) {
	b.Helper()
	pg0 := env.backendCPU(b)
	cpu0 := cpuTime()
	if err := env.cmd.Encode(p); err != nil {
		b.Fatalf("load client: %v", err)
	}
	if !env.results.Scan() {
		b.Fatalf("load client stopped: %v", env.results.Err())
	}
	cpu := cpuTime() - cpu0
	pg := env.backendCPU(b) - pg0
	var res loadResult
	if err := json.Unmarshal(env.results.Bytes(), &res); err != nil {
		b.Fatalf("load client answered %.200q: %v", env.results.Bytes(), err)
	}
	if res.Failed > 0 {
		b.Fatalf("%d of %d requests to %s failed, first: %s", res.Failed, outsideUsers, p.URL, res.FirstFail)
	}
	return res, cpu, pg
}

// backendCPU is the CPU time of the PostgreSQL backends connected to the
// benchmark's database (0 on SQLite).
func (env *outsideEnv) backendCPU(b *testing.B) time.Duration {
	if env.dsn == "" {
		return 0
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var cpu time.Duration
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			cpu += procCPU(pid)
		}
	}
	return cpu
}

func (env *outsideEnv) run(b *testing.B, clients int) {
	verify := func() (loadResult, time.Duration, time.Duration) {
		env.round++
		at := start.Add(time.Duration(env.round) * 30 * time.Second)
		env.clock.Set(at)
		return env.pass(b, loadPass{URL: env.verifyURL, Token: env.token, Clients: clients, At: at})
	}
	noop := func() (loadResult, time.Duration, time.Duration) {
		return env.pass(b, loadPass{URL: env.noopURL, Token: env.token, Clients: clients, At: start})
	}
	if !env.warm {
		verify()
		noop()
		env.warm = true
	}
	var (
		vLat, nLat               []int32
		vEl, nEl, vCPU, nCPU, pg time.Duration
	)
	b.ResetTimer()
	for r := range b.N {
		for i := range 2 {
			if (r+i)%2 == 0 {
				res, cpu, pgCPU := verify()
				vLat, vEl, vCPU, pg = append(vLat, res.Latencies...), vEl+res.Elapsed, vCPU+cpu, pg+pgCPU
			} else {
				res, cpu, _ := noop()
				nLat, nEl, nCPU = append(nLat, res.Latencies...), nEl+res.Elapsed, nCPU+cpu
			}
		}
	}
	b.StopTimer()
	n := float64(b.N * outsideUsers)
	pct := func(lat []int32, p float64) float64 {
		slices.Sort(lat)
		return float64(lat[int(float64(len(lat)-1)*p)]) / 1e3
	}
	vRate, nRate := n/vEl.Seconds(), n/nEl.Seconds()
	b.ReportMetric(vRate, "verifies/s")
	b.ReportMetric(nRate, "noop-req/s")
	b.ReportMetric(vRate/nRate, "ratio")
	b.ReportMetric(pct(vLat, 0.50), "p50-ms")
	b.ReportMetric(pct(vLat, 0.99), "p99-ms")
	b.ReportMetric(pct(nLat, 0.50), "noop-p50-ms")
	b.ReportMetric(pct(nLat, 0.99), "noop-p99-ms")
	b.ReportMetric(float64(vCPU.Microseconds())/n, "cpu-us/verify")
	b.ReportMetric(float64(nCPU.Microseconds())/n, "noop-cpu-us/req")
	if env.dsn != "" {
		b.ReportMetric(float64(pg.Microseconds())/n, "pg-us/verify")
		b.ReportMetric(float64((vCPU+pg).Microseconds())/n, "total-us/verify")
	}
	b.ReportMetric(0, "ns/op")
}

// runLoadClient is the load client of BenchmarkVerifyOutside: it reads the
// users from usersFile, then for each loadPass on stdin sends the pass's
// requests and writes a loadResult on stdout, until stdin closes.
func runLoadClient(usersFile string) error {
	data, err := os.ReadFile(usersFile)
	if err != nil {
		return err
	}
	var users []loadUser
	if err := json.Unmarshal(data, &users); err != nil {
		return err
	}
	var (
		client *http.Client
		tr     *http.Transport
		shape  string
	)
	in := json.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var p loadPass
		if err := in.Decode(&p); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		// Connections stay open from one pass to the next of the same
		// URL and clients, as an application's keep-alive pool does.
		if s := fmt.Sprint(p.URL, p.Clients); s != shape {
			if tr != nil {
				tr.CloseIdleConnections()
			}
			tr = &http.Transport{MaxIdleConnsPerHost: p.Clients, MaxConnsPerHost: p.Clients}
			client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
			shape = s
		}
		lat := make([][]int32, p.Clients)
		var (
			mu        sync.Mutex
			failed    int
			firstFail string
		)
		fail := func(msg string) {
			mu.Lock()
			if failed == 0 {
				firstFail = msg
			}
			failed++
			mu.Unlock()
		}
		began := time.Now()
		var wg sync.WaitGroup
		for w := range p.Clients {
			wg.Go(func() {
				var body bytes.Buffer
				for i := w; i < len(users); i += p.Clients {
					u := &users[i]
					body.Reset()
					fmt.Fprintf(&body, `{"username":%q,"code":%q,"ip":%q}`, u.Name, enroll.Code(u.Key, p.At), u.IP)
					req, _ := http.NewRequest("POST", p.URL, &body)
					req.Header.Set("Authorization", "Bearer "+p.Token)
					req.Header.Set("Content-Type", "application/json")
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						fail(err.Error())
						continue
					}
					msg, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					lat[w] = append(lat[w], int32(time.Since(t0).Microseconds()))
					if resp.StatusCode != http.StatusOK {
						fail(fmt.Sprintf("%s: %s %s", u.Name, resp.Status, bytes.TrimSpace(msg)))
					}
				}
			})
		}
		wg.Wait()
		res := loadResult{Elapsed: time.Since(began), Latencies: slices.Concat(lat...), Failed: failed, FirstFail: firstFail}
		if err := out.Encode(res); err != nil {
			return err
		}
	}
}

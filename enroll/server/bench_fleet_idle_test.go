package server

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// benchReplicaEnv, set to a PostgreSQL DSN in the environment of this
// test binary, makes it a server replica of BenchmarkFleetIdle instead of
// running tests: see runBenchReplica. benchReplicaKeyEnv holds the master
// key, in hex.
const (
	benchReplicaEnv    = "TOTPBOX_BENCH_REPLICA_DSN"
	benchReplicaKeyEnv = "TOTPBOX_BENCH_REPLICA_KEY"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(benchReplicaEnv); dsn != "" {
		if err := runBenchReplica(dsn, os.Getenv(benchReplicaKeyEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "bench replica:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if users := os.Getenv(loadClientEnv); users != "" {
		if err := runLoadClient(users); err != nil {
			fmt.Fprintln(os.Stderr, "load client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBenchReplica runs one server replica (server.New, as newBenchFleet
// makes them) on the database dsn with the master key keyHex: it writes
// "listening ADDR" on stdout once the fleet bus is live and serves on
// ADDR until stdin is closed.
func runBenchReplica(dsn, keyHex string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return err
	}
	sealer, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		return err
	}
	st, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := New(Config{Store: st, Sealer: sealer, Logger: testkit.Quiet()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(30 * time.Second); !srv.Bus().Live(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the fleet bus is not live after 30 s")
		}
	}
	fmt.Printf("listening %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// benchReplica is a replica process started by startBenchReplica.
type benchReplica struct {
	cmd *exec.Cmd
	url string
}

// startBenchReplica starts this test binary as a replica on dsn (see
// runBenchReplica) and stops it at the end of the benchmark.
func startBenchReplica(b *testing.B, dsn string, key []byte) *benchReplica {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), benchReplicaEnv+"="+dsn, benchReplicaKeyEnv+"="+hex.EncodeToString(key))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		t := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		t.Stop()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		b.Fatalf("replica did not start: %q %v", line, err)
	}
	return &benchReplica{cmd: cmd, url: "http://" + addr}
}

// procRSS returns VmRSS and VmHWM (the peak) of process pid, from
// /proc/PID/status; zero when it cannot be read.
func procRSS(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// dbStats is what pg_stat_database says of one database, and the CPU
// time of the backends connected to it.
type dbStats struct {
	commits, inserted, updated, deleted int64
	backendCPU                          time.Duration
}

func readDBStats(b *testing.B, dsn string) dbStats {
	b.Helper()
	var s dbStats
	s.commits, s.backendCPU, _ = pgStats(b, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database
		WHERE datname = current_database()`).Scan(&s.inserted, &s.updated, &s.deleted); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkFleetIdle measures what appliances long-polling 3 replicas
// cost while nothing changes: TOTPBOX_BENCH_APPLIANCES appliances
// (default 1000), paired in the store, each holding a sync (wait 60 s,
// renewed when answered, signed as totpd signs) on replica i%3 over
// loopback HTTP. The replicas are this test binary re-run as child
// processes (runBenchReplica), so each one's RSS is its own; the
// appliances are in this process. Once every sync is held and the setup's
// statistics have reached pg_stat_database (statsFlush), it reads the
// database's commits and rows written, the syncs answered and the CPU
// times, sleeps TOTPBOX_BENCH_IDLE (default 1 min), and reads them again
// with the appliances still renewing: rates are over the time between the
// two reads. Before the appliances start, the same reads around the same
// window give the floor: the replicas' own commits (janitors) and
// autovacuum's, with no appliance. A backend's statistics reach pg_stat_database within about
// 10 s while it is idle between transactions (up to 60 s when the shared
// entry is contended), so each read may lag by that much: use a window
// of minutes.
func BenchmarkFleetIdle(b *testing.B) {
	n := 1000
	if v := os.Getenv("TOTPBOX_BENCH_APPLIANCES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	window := time.Minute
	if v := os.Getenv("TOTPBOX_BENCH_IDLE"); v != "" {
		window, _ = time.ParseDuration(v)
	}
	// Both ends of the appliances' connections are file descriptors:
	// this process holds n of them.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ctx := context.Background()
	dsn := storetest.CreateDatabase(b, storetest.PostgresDSN(b))
	key := make([]byte, store.KeySize)
	rand.Read(key)

	// The appliances, paired; the database is migrated here, before the
	// replicas open it.
	st, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	type app struct {
		id   string
		sign ed25519.PrivateKey
	}
	apps := make([]app, n)
	now := time.Now()
	for i := range apps {
		pub, sign, _ := ed25519.GenerateKey(rand.Reader)
		boxPub, _, _ := box.GenerateKey(rand.Reader)
		code := fmt.Sprintf("B%07d", i)
		if err := st.CreatePairingCode(ctx, store.PairingCode{Code: code, SignKey: pub, BoxKey: boxPub[:], Created: now, Expires: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		a := store.Appliance{ID: fmt.Sprintf("bench%06d", i), Name: fmt.Sprintf("Bench %d", i), Paired: now}
		if err := st.PairAppliance(ctx, code, now, &a); err != nil {
			b.Fatal(err)
		}
		apps[i] = app{id: a.ID, sign: sign}
	}
	token, err := api.CreateToken(ctx, st, "bench")
	if err != nil {
		b.Fatal(err)
	}
	st.Close()

	const nReplicas = 3
	var reps []*benchReplica
	for range nReplicas {
		reps = append(reps, startBenchReplica(b, dsn, key))
	}

	var answered, failed atomic.Int64
	type sample struct {
		at       time.Time
		db       dbStats
		answered int64
		self     time.Duration
		replicas []time.Duration
	}
	read := func() sample {
		s := sample{at: time.Now(), answered: answered.Load(), self: cpuTime()}
		for _, r := range reps {
			s.replicas = append(s.replicas, procCPU(r.cmd.Process.Pid))
		}
		s.db = readDBStats(b, dsn)
		return s
	}

	// The floor, in the same run: what the replicas cost the database
	// with no appliance (janitors, autovacuum). Their backends are idle,
	// so their statistics arrive within 10 s.
	time.Sleep(20 * time.Second)
	fl0 := read()
	time.Sleep(window)
	fl1 := read()

	tr := &http.Transport{MaxIdleConnsPerHost: n}
	client := &http.Client{Transport: tr}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); tr.CloseIdleConnections(); wg.Wait() }()
	for i, a := range apps {
		wg.Go(func() {
			var rev int64
			for pctx.Err() == nil {
				q := proto.SyncQuery{After: rev, Wait: proto.MaxWait}
				req, _ := http.NewRequestWithContext(pctx, "GET", reps[i%nReplicas].url+proto.ChangesPath(a.id)+"?"+q.Encode().Encode(), nil)
				proto.Sign(req, nil, a.sign, time.Now())
				resp, err := client.Do(req)
				if err != nil {
					if pctx.Err() == nil {
						failed.Add(1)
						time.Sleep(time.Second)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					time.Sleep(time.Second)
					continue
				}
				answered.Add(1)
			}
		})
	}
	// Every sync held: each replica's admin API shows its appliances
	// online.
	online := func(url string) int {
		req, _ := http.NewRequest("GET", url+"/api/v1/appliances", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Appliances []struct {
				Online bool `json:"online"`
			} `json:"appliances"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			b.Fatal(err)
		}
		k := 0
		for _, a := range list.Appliances {
			if a.Online {
				k++
			}
		}
		return k
	}
	testkit.WaitFor(b, 10*time.Minute, "every sync held", func() bool {
		time.Sleep(time.Second)
		k := 0
		for _, r := range reps {
			k += online(r.url)
		}
		return k == n
	})
	time.Sleep(statsFlush) // the setup's statistics reported

	s0 := read()
	f0 := failed.Load()
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	s1 := read()
	var rss, peak []int64
	for _, r := range reps {
		v, p := procRSS(r.cmd.Process.Pid)
		rss, peak = append(rss, v), append(peak, p)
	}
	selfRSS, _ := procRSS(os.Getpid())

	if nf := failed.Load() - f0; nf > 0 {
		b.Errorf("%d syncs failed during the window", nf)
	}
	secs := s1.at.Sub(s0.at).Seconds()
	commits := float64(s1.db.commits - s0.db.commits)
	syncs := float64(s1.answered - s0.answered)
	written := float64(s1.db.inserted + s1.db.updated + s1.db.deleted - s0.db.inserted - s0.db.updated - s0.db.deleted)
	var repCPU time.Duration
	for i := range reps {
		repCPU += s1.replicas[i] - s0.replicas[i]
	}
	var rssMax, rssSum int64
	for _, v := range rss {
		rssMax, rssSum = max(rssMax, v), rssSum+v
	}
	var peakMax int64
	for _, v := range peak {
		peakMax = max(peakMax, v)
	}
	const mib = 1 << 20
	b.ReportMetric(float64(n), "appliances")
	b.ReportMetric(commits/secs, "commits/s")
	b.ReportMetric(commits/secs/float64(n), "commits/s/appliance")
	b.ReportMetric(syncs/secs, "syncs-answered/s")
	floor := float64(fl1.db.commits-fl0.db.commits) / fl1.at.Sub(fl0.at).Seconds()
	b.ReportMetric(floor, "floor-commits/s")
	b.ReportMetric(commits/syncs, "commits/sync")
	b.ReportMetric((commits/secs-floor)/(syncs/secs), "commits/sync-over-floor")
	b.ReportMetric(float64(s1.db.updated-s0.db.updated)/syncs, "rows-updated/sync")
	b.ReportMetric(written/secs, "rows-written/s")
	b.ReportMetric(float64(rssSum)/nReplicas/mib, "replica-rss-MiB")
	b.ReportMetric(float64(rssMax)/mib, "replica-rss-max-MiB")
	b.ReportMetric(float64(peakMax)/mib, "replica-peak-MiB")
	b.ReportMetric(float64(selfRSS)/mib, "appliances-rss-MiB")
	b.ReportMetric(float64(repCPU.Milliseconds())/secs, "replicas-cpu-ms/s")
	b.ReportMetric(float64((s1.self-s0.self).Milliseconds())/secs, "appliances-cpu-ms/s")
	b.ReportMetric(float64((s1.db.backendCPU-s0.db.backendCPU).Milliseconds())/secs, "pg-ms/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("window %.0f s between the reads; replica RSS %v MiB", secs, func() (out []int64) {
		for _, v := range rss {
			out = append(out, v/mib)
		}
		return out
	}())
}

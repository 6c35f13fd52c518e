package uplink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/totpbox/totpbox/internal/testkit"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv("TOTPBOX_BENCH_SERVER") == "1" {
		runBenchServer()
		return
	}
	os.Exit(m.Run())
}

// runBenchServer is the server process of BenchmarkManyAppliances: the
// appliance API on loopback, plus a control API to pair, send offers and
// read its memory. It prints its address and serves until stdin closes.
func runBenchServer() {
	dir, err := os.MkdirTemp("", "totpbox-bench")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, store.SQLiteFile))
	if err != nil {
		panic(err)
	}
	defer st.Close()
	api, err := appliance.New(appliance.Config{Store: st, Logger: testkit.Quiet(), PairingRate: appliance.Rate{PerSecond: -1}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/appliance/", api.Handler())
	mux.HandleFunc("POST /bench/pair", func(w http.ResponseWriter, r *http.Request) {
		in, err := api.Pair(r.Context(), r.FormValue("code"), r.FormValue("name"))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprint(w, in.ID)
	})
	mux.HandleFunc("POST /bench/offer", func(w http.ResponseWriter, r *http.Request) {
		k, _ := enroll.NewKey("Bench", "user")
		err := api.SendOffer(r.Context(), r.FormValue("appliance"), r.FormValue("device"), "user", "bench", k, time.Now().Add(time.Hour))
		if err != nil {
			http.Error(w, err.Error(), 400)
		}
	})
	mux.HandleFunc("GET /bench/mem", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(map[string]uint64{"heap_inuse": ms.HeapInuse, "rss": rssBytes(),
			"goroutines": uint64(runtime.NumGoroutine())})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println("ADDR", ln.Addr())
	go http.Serve(ln, mux)
	bufio.NewReader(os.Stdin).ReadString('\n') // until the benchmark closes stdin
}

// rssBytes returns the process's resident set size from /proc.
func rssBytes() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchApp is an appliance that reads offers as the loop does: on each
// signal of Changed.
type benchApp struct {
	c *Client
	v *vault.Vault
}

// next waits for an open offer and returns the oldest.
func (a *benchApp) next() Offer {
	for {
		if open := a.c.Offers(); len(open) > 0 {
			return open[0]
		}
		<-a.c.Changed()
	}
}

func startBenchApp(b *testing.B, ctx context.Context, server, dir string, wg *sync.WaitGroup) *benchApp {
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		b.Fatal(err)
	}
	a := &benchApp{v: v}
	a.c, err = New(Config{Server: server, StateDir: filepath.Join(dir, "state"), Vault: v, Clock: clock.System{},
		Logger: testkit.Quiet(), Backoff: Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { a.c.Run(ctx); v.Close() })
	return a
}

func waitCode(b *testing.B, a *benchApp) string {
	for {
		if _, code, _ := a.c.PairingCode(); code != "" {
			return code
		}
		time.Sleep(time.Millisecond)
	}
}

func report(b *testing.B, lat []time.Duration) {
	testkit.ReportLatency(b, lat)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkOfferLatency measures, on loopback with the server in process,
// the time from SendOffer to the offer published to the appliance loop. Run it with
// -benchtime=100x for the 100 runs of docs/BENCHMARKS.md.
func BenchmarkOfferLatency(b *testing.B) {
	api, err := appliance.New(appliance.Config{Store: storetest.OpenSQLite(b), Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: api.Handler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	a := startBenchApp(b, ctx, "http://"+ln.Addr().String(), b.TempDir(), &wg)
	in, err := api.Pair(ctx, waitCode(b, a), "bench")
	if err != nil {
		b.Fatal(err)
	}
	for !a.c.Status().Paired {
		time.Sleep(time.Millisecond)
	}
	key, _ := enroll.NewKey("Bench", "user")
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if err := api.SendOffer(ctx, in.ID, fmt.Sprint("dev", i), "user", "bench", key, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		o := a.next()
		lat = append(lat, time.Since(start))
		a.c.Answer(o.ID, false)
	}
	report(b, lat)
}

// BenchmarkManyAppliances starts a server process, pairs N appliances
// (TOTPBOX_BENCH_APPLIANCES, default 1000) that then long-poll it, and
// measures the server's memory and the offer latency to random
// appliances among them. Run it with -benchtime=100x.
func BenchmarkManyAppliances(b *testing.B) {
	n := 1000
	if s := os.Getenv("TOTPBOX_BENCH_APPLIANCES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TOTPBOX_BENCH_SERVER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		b.Fatalf("server said %q, %v", line, err)
	}
	base := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	control := func(path string, form map[string]string) string {
		vals := make([]string, 0, len(form))
		for k, v := range form {
			vals = append(vals, k+"="+v)
		}
		resp, err := http.Post(base+path+"?"+strings.Join(vals, "&"), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&sb)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %s", path, sb.String())
		}
		return sb.String()
	}
	mem := func() map[string]uint64 {
		resp, err := http.Get(base + "/bench/mem")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		m := map[string]uint64{}
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	idle := mem()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	dir := b.TempDir()
	apps := make([]*benchApp, n)
	ids := make([]string, n)
	for i := range apps {
		apps[i] = startBenchApp(b, ctx, base, filepath.Join(dir, strconv.Itoa(i)), &wg)
	}
	for i, a := range apps {
		ids[i] = control("/bench/pair", map[string]string{"code": waitCode(b, a), "name": "kiosk-" + strconv.Itoa(i)})
	}
	for _, a := range apps {
		for a.c.Status().LastSync.IsZero() {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second) // every appliance is in a held sync
	held := mem()

	var lat []time.Duration
	i := 0
	for b.Loop() {
		k := (i * 7919) % n
		i++
		start := time.Now()
		control("/bench/offer", map[string]string{"appliance": ids[k], "device": "dev" + strconv.Itoa(i)})
		o := apps[k].next()
		lat = append(lat, time.Since(start))
		apps[k].c.Answer(o.ID, false)
	}
	report(b, lat)
	b.ReportMetric(float64(idle["rss"])/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(float64(held["rss"])/(1<<20), "RSS-MiB")
	b.ReportMetric(float64(held["heap_inuse"])/(1<<20), "heap-MiB")
	b.ReportMetric(float64(held["goroutines"]), "server-goroutines")
}

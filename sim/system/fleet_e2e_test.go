package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/uplink"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// haproxyConfig is the load balancer of the fleet test, as docs/deploy.md
// shows it: long-poll-friendly timeouts (an appliance's sync is held up to
// 60 s), health checks on /readyz, connection failures retried on another
// replica, and X-Forwarded-For for the replicas' trusted_proxies.
const haproxyConfig = `global
    maxconn 4096

defaults
    mode http
    option forwardfor
    option http-keep-alive
    timeout connect 2s
    timeout client 75s
    timeout server 75s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 5s
    retries 3
    option redispatch 1

frontend totpserver
    bind {{.Listen}}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{{- range $i, $addr := .Replicas}}
    server r{{$i}} {{$addr}} check
{{- end}}
`

// requireHAProxy returns haproxy's path; without it the test is skipped,
// or fails when TOTPBOX_REQUIRE_PARTS=1.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	return testkit.RequireProgram(t, "haproxy", "haproxy")
}

// replica is one totpserver of the fleet, on its own loopback listener.
type replica struct {
	url    string
	st     store.Store
	srv    *server.Server
	stop   context.CancelFunc
	hs     *http.Server
	runErr chan error
	once   sync.Once
}

// kill stops the replica abruptly: its listener and every connection
// (held long-polls included) close at once, and it leaves the fleet bus.
func (r *replica) kill() {
	r.once.Do(func() {
		r.hs.Close()
		r.stop()
		<-r.runErr
		r.st.Close()
	})
}

func startReplica(t *testing.T, dsn, keyFile string) *replica {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	sealer, err := store.LoadSealerFor(ctx, st, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Sealer: sealer, Logger: testkit.Quiet(),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		// Codes are raced through every replica several times a second
		// here: a per-user budget wide enough that only replay
		// protection refuses them.
		Limits: server.Limits{VerifyPerUser: server.Rate{PerSecond: 100, Burst: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &replica{url: "http://" + ln.Addr().String(), st: st, srv: srv, stop: cancel,
		hs: &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}, runErr: make(chan error, 1)}
	go func() { r.runErr <- srv.Run(rctx) }()
	go r.hs.Serve(ln)
	t.Cleanup(r.kill)
	return r
}

// startHAProxy runs haproxy with haproxyConfig before the replicas and
// returns the balancer's URL once it answers /readyz.
func startHAProxy(t *testing.T, path string, replicas []*replica) string {
	t.Helper()
	listen := testkit.FreeAddr(t)
	var addrs []string
	for _, r := range replicas {
		addrs = append(addrs, strings.TrimPrefix(r.url, "http://"))
	}
	var conf bytes.Buffer
	template.Must(template.New("haproxy").Parse(haproxyConfig)).Execute(&conf, map[string]any{"Listen": listen, "Replicas": addrs})
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(path, "-f", file, "-db")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy's output:\n%s", logs.String())
		}
	})
	base := "http://" + listen
	testkit.WaitFor(t, 20*time.Second, "haproxy to serve /readyz", func() bool {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// fleetAppliance is a simulated appliance without its screen: the real
// sync client with its vault, on the host clock.
type fleetAppliance struct {
	client *uplink.Client
	vault  *vault.Vault
}

func startFleetAppliance(t *testing.T, server string) *fleetAppliance {
	t.Helper()
	dir := t.TempDir()
	v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	c, err := uplink.New(uplink.Config{Server: server, StateDir: filepath.Join(dir, "sync"), Vault: v,
		Clock: clock.System{}, Version: "e2e", Logger: testkit.Quiet(),
		Backoff: uplink.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, func(ctx context.Context) error { return c.Run(ctx) })
	return &fleetAppliance{client: c, vault: v}
}

// call makes an admin API request to base and decodes the answer into
// out; it returns the status, or 0 when no answer came.
func call(base, token, method, path string, in, out any) int {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// TestFleetBehindHAProxy runs the fleet as an operator would: three
// replicas on a fresh PostgreSQL database behind a real HAProxy, and
// appliances syncing through the balancer, paired through the admin API
// there. Offers sent through every replica arrive; one replica is killed
// while appliances hold long-polls on it and offers are on their way; no
// offer is lost, every registration is confirmed with the code the
// appliance computes, a code raced through every replica and the balancer
// is accepted once, and verify keeps answering through the balancer.
func TestFleetBehindHAProxy(t *testing.T) {
	haproxy := requireHAProxy(t)
	dsn := storetest.CreateDatabase(t, storetest.PostgresDSN(t))
	keyFile := filepath.Join(t.TempDir(), "master.key")
	var reps []*replica
	for range 3 {
		reps = append(reps, startReplica(t, dsn, keyFile))
	}
	lb := startHAProxy(t, haproxy, reps)
	token, err := api.CreateToken(context.Background(), reps[0].st, "fleet")
	if err != nil {
		t.Fatal(err)
	}

	// Appliances sync through the balancer and wait with their codes; a
	// script pairs them through the balancer too.
	const n = 6
	apps := make([]*fleetAppliance, n)
	for i := range apps {
		apps[i] = startFleetAppliance(t, lb)
	}
	for i, a := range apps {
		var code string
		testkit.WaitFor(t, 20*time.Second, "a pairing code", func() bool { _, code, _ = a.client.PairingCode(); return code != "" })
		if status := call(lb, token, "POST", "/api/v1/appliances", map[string]string{"code": code, "name": fmt.Sprint("Kiosk ", i)}, nil); status != 201 {
			t.Fatalf("pair appliance %d through the balancer = %d", i, status)
		}
	}
	for i, a := range apps {
		testkit.WaitFor(t, 20*time.Second, "appliances paired and syncing", func() bool {
			st := a.client.Status()
			return st.Paired && st.Link == "up"
		})
		if status := call(lb, token, "POST", "/api/v1/users", map[string]string{"username": fmt.Sprint("user", i)}, nil); status != 201 {
			t.Fatalf("create user%d = %d", i, status)
		}
	}

	// One round: an offer to every appliance, each sent through the next
	// of via, then accepted on the appliance and confirmed through the
	// balancer with the code the appliance computes. between runs after
	// the offers are sent and before they are awaited.
	round := func(r int, via []string, between func()) []enroll.Key {
		names := make([]string, n)
		for i := range apps {
			names[i] = fmt.Sprintf("Token %d", r)
			base := via[(i+r)%len(via)]
			status := call(base, token, "POST", fmt.Sprintf("/api/v1/users/user%d/mfa-devices", i), map[string]string{"name": names[i], "appliance": fmt.Sprint("Kiosk ", i)}, nil)
			if status != 201 {
				t.Fatalf("round %d: send to Kiosk %d through %s = %d", r, i, base, status)
			}
		}
		if between != nil {
			between()
		}
		keys := make([]enroll.Key, n)
		for i, a := range apps {
			var id string
			testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("round %d: the offer on Kiosk %d", r, i), func() bool {
				for _, o := range a.client.Offers() {
					if o.DeviceName == names[i] {
						id = o.ID
						return true
					}
				}
				return false
			})
			if err := a.client.Answer(id, true); err != nil {
				t.Fatalf("round %d: accept on Kiosk %d: %v", r, i, err)
			}
			// The accept reaches the server before the code is typed, as
			// when a person reads it off the screen: a confirm of an offer
			// still open withdraws it.
			testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("round %d: Kiosk %d's accept delivered", r, i), func() bool {
				return a.client.Status().PendingAcks == 0
			})
			var acct vault.Account
			for _, ac := range a.vault.List() {
				if ac.Source == id {
					acct = ac
				}
			}
			if acct.Source != id {
				t.Fatalf("round %d: Kiosk %d accepted but holds no account from %s", r, i, id)
			}
			keys[i] = acct.Key
			var list struct {
				MFADevices []struct {
					ID   int64  `json:"id"`
					Name string `json:"name"`
				} `json:"mfa_devices"`
			}
			call(lb, token, "GET", fmt.Sprintf("/api/v1/users/user%d/mfa-devices", i), nil, &list)
			var devID int64
			for _, d := range list.MFADevices {
				if d.Name == names[i] {
					devID = d.ID
				}
			}
			code := enroll.Code(acct.Key, time.Now())
			if status := call(lb, token, "POST", fmt.Sprintf("/api/v1/users/user%d/mfa-devices/%d/confirm", i, devID), map[string]any{"codes": []string{code}}, nil); status != 200 {
				t.Fatalf("round %d: confirm Kiosk %d's registration through the balancer = %d", r, i, status)
			}
			testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("round %d: the account active on Kiosk %d", r, i), func() bool {
				ac, err := a.vault.Get(acct.ID)
				return err == nil && ac.State == vault.Active
			})
		}
		return keys
	}

	// race sends one code of each user's new device at once through
	// every target; exactly one may accept it.
	race := func(r int, keys []enroll.Key, targets []string) {
		for i, k := range keys {
			code := enroll.CodeAt(k, enroll.Step(k, time.Now())+1)
			var wg sync.WaitGroup
			statuses := make([]int, len(targets))
			for j, base := range targets {
				wg.Go(func() {
					statuses[j] = call(base, token, "POST", "/api/v1/verify", map[string]string{"username": fmt.Sprint("user", i), "code": code}, nil)
				})
			}
			wg.Wait()
			ok, refused := 0, 0
			for _, s := range statuses {
				switch s {
				case 200:
					ok++
				case 401:
					refused++
				}
			}
			if ok != 1 || refused != len(targets)-1 {
				t.Fatalf("round %d: user%d's code raced through %d targets: statuses %v, want one 200 and the rest 401", r, i, len(targets), statuses)
			}
		}
	}

	all := []string{reps[0].url, reps[1].url, reps[2].url}
	keys := round(0, all, nil)
	race(0, keys, append(all, lb, lb))

	// Replica 2 dies with offers on their way and long-polls held on it;
	// verify through the balancer answers at once, without waiting for
	// the health check to take it out.
	live := all[:2]
	keys = round(1, live, func() {
		testkit.WaitFor(t, 30*time.Second, "replica 2 to hold long-polls", func() bool {
			infos, err := reps[2].srv.Appliances().Appliances(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range infos {
				if in.Online {
					return true
				}
			}
			return false
		})
		reps[2].kill()
		for range n { // within the per-user burst
			var answer struct {
				Error string `json:"error"`
			}
			status := call(lb, token, "POST", "/api/v1/verify", map[string]string{"username": "nobody", "code": "123456"}, &answer)
			if status != 404 || !strings.Contains(answer.Error, "nobody") {
				t.Fatalf("verify of an unknown user through the balancer right after the kill = %d %+v, want 404 naming the user", status, answer)
			}
		}
	})
	race(1, keys, append(live, lb, lb))

	// A third round through the survivors and the balancer.
	keys = round(2, append(live, lb), nil)
	race(2, keys, append(live, lb))
	for i, a := range apps {
		if got := len(a.vault.List()); got != 3 {
			t.Errorf("Kiosk %d holds %d accounts, want the 3 offered", i, got)
		}
		if st := a.client.Status(); st.OpenOffers != 0 || st.PendingAcks != 0 {
			t.Errorf("Kiosk %d: %d open offers, %d acks pending; want none", i, st.OpenOffers, st.PendingAcks)
		}
	}
}

package system

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// replaceRig is a registration server that can be killed and started
// again on the same store and address, with appliances syncing with it.
type replaceRig struct {
	t      testing.TB
	st     store.Store
	sealer *store.Sealer
	addr   string
	hs     *httptest.Server
	srv    *server.Server
	api    apiClient
}

func newReplaceRig(t testing.TB) *replaceRig {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := store.NewKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	sealer, err := store.LoadSealer(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	r := &replaceRig{t: t, st: storetest.OpenSQLite(t), sealer: sealer}
	r.start()
	t.Cleanup(r.kill)
	token, err := api.CreateToken(context.Background(), r.st, "replace-test")
	if err != nil {
		t.Fatal(err)
	}
	r.api = apiClient{tb: t, base: r.hs.URL, token: token}
	if code := r.api.do("POST", "/api/v1/users", map[string]any{"username": "carol"}, nil); code != 201 {
		t.Fatalf("create user carol = %d, want 201", code)
	}
	return r
}

// start starts a server on the store, at the rig's address once it has
// one.
func (r *replaceRig) start() {
	r.t.Helper()
	srv, err := server.New(server.Config{Store: r.st, Sealer: r.sealer, Logger: testkit.Quiet()})
	if err != nil {
		r.t.Fatal(err)
	}
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv = srv
	r.hs = &httptest.Server{Listener: l, Config: &http.Server{Handler: srv.Handler()}}
	r.hs.Start()
	r.addr = l.Addr().String()
}

// kill stops the server at once, dropping its connections (held syncs
// included), as a crash does; the store keeps what was committed.
func (r *replaceRig) kill() {
	if r.hs == nil {
		return
	}
	r.hs.CloseClientConnections()
	r.hs.Close()
	r.hs = nil
}

// appliance starts a simulated appliance (with a swtpm when tpmDir is
// set) and pairs it as name.
func (r *replaceRig) appliance(name, tpmDir string) *Appliance {
	t := r.t
	t.Helper()
	a, err := NewAppliance(ApplianceConfig{Name: name, Dir: t.TempDir(), TPMDir: tpmDir, Clock: clock.System{},
		Server: "http://" + r.addr, Version: "test", Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("appliance %s: Run() = %v", name, err)
		}
	})
	var code string
	testkit.WaitFor(t, 10*time.Second, "a pairing code", func() bool { _, code, _ = a.Client().PairingCode(); return code != "" })
	if _, err := r.srv.Appliances().Pair(context.Background(), code, name); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the appliance to know it is paired", func() bool { return a.Client().Status().Paired })
	return a
}

// activeDevices registers n MFA devices, one for each of n users
// (user1, user2, ...), confirmed with a code
// of each (as a phone would), and records appliance a's id as their
// holder as an earlier pairing would have (store.AdoptDevices): the
// server's side of an appliance holding n accounts. It returns the keys
// by MFA device UID.
func (r *replaceRig) activeDevices(n int, applianceID string) map[string]enroll.Key {
	r.t.Helper()
	keys := map[string]enroll.Key{}
	var uids []string
	for i := range n {
		var d createdDevice
		user, name := "user"+strconv.Itoa(i+1), "Token "+strconv.Itoa(i+1)
		if code := r.api.do("POST", "/api/v1/users", map[string]any{"username": user}, nil); code != 201 {
			r.t.Fatalf("create user %s = %d, want 201", user, code)
		}
		if code := r.api.do("POST", "/api/v1/users/"+user+"/mfa-devices", map[string]string{"name": name}, &d); code != 201 {
			r.t.Fatalf("register %q = %d, want 201", name, code)
		}
		k, err := enroll.ParseURI(d.OTPAuthURI)
		if err != nil {
			r.t.Fatal(err)
		}
		if code := r.api.do("POST", "/api/v1/users/"+user+"/mfa-devices/"+itoa(d.ID)+"/confirm",
			map[string]any{"codes": []string{enroll.Code(k, time.Now())}}, nil); code != 200 {
			r.t.Fatalf("confirm %q = %d, want 200", name, code)
		}
		dev, err := r.st.Device(context.Background(), d.ID)
		if err != nil {
			r.t.Fatal(err)
		}
		keys[dev.UID] = k
		uids = append(uids, dev.UID)
	}
	if _, err := r.st.AdoptDevices(context.Background(), applianceID, uids, time.Now()); err != nil {
		r.t.Fatal(err)
	}
	return keys
}

// oathtoolCode is oathtool's TOTP code of k at time step step.
func oathtoolCode(t testing.TB, oathtool string, k enroll.Key, step int64) string {
	t.Helper()
	at := step * int64(k.Period/time.Second)
	out, err := exec.Command(oathtool, "--totp="+strings.ToLower(k.Algorithm.String()), "-b", "-d", strconv.Itoa(k.Digits),
		"-s", strconv.Itoa(int(k.Period/time.Second))+"s", "--now", "@"+strconv.FormatInt(at, 10), k.SecretBase32()).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestReplaceApplianceInTheSimulator replaces an appliance holding 10
// accounts (and one added on it with totpctl) by a paired spare with a
// TPM: the spare asks once, "Take over 10 accounts from Lobby?"; the
// server is killed while the question is on the screen and started again
// on the same store; OK stores every account in the spare's TPM exactly
// once, and its codes equal oathtool's for each; the server records the
// spare as the holder of each, and the old appliance, at its next sync,
// wipes its whole vault, shows "Wiped" and waits to be paired again.
func TestReplaceApplianceInTheSimulator(t *testing.T) {
	oathtool := testkit.RequireProgram(t, "oathtool", "oathtool")
	tpmtest.Require(t)
	r := newReplaceRig(t)
	old := r.appliance("Lobby", "")
	spare := r.appliance("Spare", t.TempDir())
	if spare.Secrets() != "tpm" {
		t.Fatalf("spare secrets = %s, want tpm", spare.Secrets())
	}
	old.Vault().Add(vault.Account{Issuer: "Local", Label: "added with totpctl", Key: enroll.Key{Secret: []byte("12345678901234567890"),
		Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}, State: vault.Active})
	keys := r.activeDevices(10, old.Client().Status().ApplianceID)

	var rep struct {
		ID       string   `json:"id"`
		State    string   `json:"state"`
		Total    int      `json:"total"`
		Moved    int      `json:"moved"`
		NotMoved []string `json:"not_moved"`
	}
	if code := r.api.do("POST", "/api/v1/appliances/Lobby/replace", map[string]string{"with": "Spare"}, &rep); code != 200 || rep.Total != 10 {
		t.Fatalf("replace = %d %+v, want 200 with 10 accounts", code, rep)
	}
	testkit.WaitFor(t, 20*time.Second, "the takeover question on the spare", func() bool {
		st := spare.State()
		return st.View == "takeover" && st.Message == "Take over 10 accounts from Lobby?"
	})
	if n := len(serverAccounts(spare.Vault())); n != 0 {
		t.Fatalf("the spare stored %d accounts before OK", n)
	}

	// The server dies with the question on the spare's screen; OK comes
	// while it is down; it starts again on the same store.
	r.kill()
	if err := spare.Press(t.Context(), device.OK); err != nil {
		t.Fatal(err)
	}
	r.start()

	testkit.WaitFor(t, 60*time.Second, "the server to record every account on the spare", func() bool {
		var got struct {
			Replacements []struct {
				State string `json:"state"`
				Moved int    `json:"moved"`
			} `json:"replacements"`
		}
		r.api.do("GET", "/api/v1/appliances/Spare/replacements", nil, &got)
		return len(got.Replacements) == 1 && got.Replacements[0].State == "done" && got.Replacements[0].Moved == 10
	})
	held := serverAccounts(spare.Vault())
	if len(held) != 10 {
		t.Fatalf("the spare holds %d accounts from the server, want 10", len(held))
	}
	seen := map[string]bool{}
	step := time.Now().Unix() / 30
	for _, a := range held {
		k, ok := keys[a.Source]
		if !ok || seen[a.Source] {
			t.Fatalf("account %s on the spare: unknown or twice (source %s)", a.ID, a.Source)
		}
		seen[a.Source] = true
		if !a.InTPM || a.State != vault.Active {
			t.Errorf("account %s: in TPM %v, state %v; want active in the TPM", a.Name(), a.InTPM, a.State)
		}
		got, err := a.CodeAt(step)
		if err != nil {
			t.Fatal(err)
		}
		if want := oathtoolCode(t, oathtool, k, step); got != want {
			t.Errorf("account %s: the spare's code %s, oathtool's %s", a.Name(), got, want)
		}
	}
	for uid := range keys {
		st, err := r.srv.Appliances().OfferState(context.Background(), uid)
		if err != nil || st.ApplianceName != "Spare" {
			t.Errorf("holder of %s = %+v, %v; want Spare", uid, st, err)
		}
	}

	testkit.WaitFor(t, 60*time.Second, "the old appliance to wipe and show Wiped", func() bool {
		st := old.State()
		return old.Vault().Len() == 0 && st.View == "message" && st.Message == "Wiped"
	})
	testkit.WaitFor(t, 20*time.Second, "the old appliance to wait with a pairing code", func() bool {
		_, code, waiting := old.Client().PairingCode()
		return waiting && code != ""
	})
	if code := r.api.do("GET", "/api/v1/appliances/Lobby", nil, nil); code != 404 {
		t.Errorf("old appliance after its wipe = %d, want 404 (unpaired)", code)
	}
}

// BenchmarkReplace100 times the replacement of an appliance holding 100
// accounts by a spare with a TPM (swtpm), from OK on the spare's
// "Take over 100 accounts" to the last account usable there (active in
// its vault, in the TPM: ms-to-usable), and to the server recording the
// spare as the holder of all 100 (ms-to-recorded). Setting up (pairing,
// 100 registrations, the takeovers reaching the spare) is not timed.
func BenchmarkReplace100(b *testing.B) {
	tpmtest.Require(b)
	const n = 100
	var usable, recorded []time.Duration
	b.StopTimer()
	for range b.N {
		r := newReplaceRig(b)
		old := r.appliance("Lobby", "")
		spare := r.appliance("Spare", b.TempDir())
		r.activeDevices(n, old.Client().Status().ApplianceID)
		if code := r.api.do("POST", "/api/v1/appliances/Lobby/replace", map[string]string{"with": "Spare"}, nil); code != 200 {
			b.Fatalf("replace = %d", code)
		}
		testkit.WaitFor(b, 60*time.Second, "the takeover question for every account", func() bool {
			st := spare.State()
			return st.View == "takeover" && st.Message == "Take over 100 accounts from Lobby?"
		})
		b.StartTimer()
		t0 := time.Now()
		if err := spare.Press(context.Background(), device.OK); err != nil {
			b.Fatal(err)
		}
		for len(serverAccounts(spare.Vault())) < n {
			time.Sleep(time.Millisecond)
		}
		usable = append(usable, time.Since(t0))
		for {
			rep, err := r.st.ReplacementsOf(context.Background(), old.Client().Status().ApplianceID)
			if err != nil {
				b.Fatal(err)
			}
			if len(rep) == 1 && rep[0].State == store.ReplacementDone {
				break
			}
			time.Sleep(time.Millisecond)
		}
		recorded = append(recorded, time.Since(t0))
		b.StopTimer()
		for _, a := range serverAccounts(spare.Vault()) {
			if !a.InTPM {
				b.Fatalf("account %s is not in the TPM", a.Name())
			}
		}
	}
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(sum.Milliseconds()) / float64(len(ds))
	}
	b.ReportMetric(mean(usable), "ms-to-usable")
	b.ReportMetric(mean(recorded), "ms-to-recorded")
}

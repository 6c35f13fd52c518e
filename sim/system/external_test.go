package system

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// startExternalServer runs a registration server on loopback, apart from
// any simulator, and returns its URL and an admin API token.
func startExternalServer(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "totpserver.db"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := store.LoadSealerFor(ctx, st, filepath.Join(dir, "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Sealer: sealer, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	token, err := api.CreateToken(ctx, st, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	hs := &http.Server{Handler: srv.Handler()}
	go srv.Run(rctx)
	go hs.Serve(ln)
	t.Cleanup(func() {
		cancel()
		hs.Close()
		st.Close()
	})
	return "http://" + ln.Addr().String(), token
}

// TestSimulatorAgainstExternalServer: totpsim --server URL --appliances N
// runs no server of its own; each appliance waits with its pairing code
// (in /sim/state), is paired through the admin API, and receives the
// offers sent to it.
func TestSimulatorAgainstExternalServer(t *testing.T) {
	url, token := startExternalServer(t)
	s, sim := startSystem(t, Config{Server: url, Appliances: 2})
	if s.server != nil || s.ConsoleURL() != "" {
		t.Fatal("the simulator started a server of its own")
	}
	c := apiClient{t: t, base: url, token: token}
	for n := range 2 {
		stateURL := fmt.Sprintf("%s/sim/appliances/%d/state", sim.URL, n)
		var code string
		testkit.WaitFor(t, 10*time.Second, "a pairing code in /sim/state", func() bool {
			st := getState(t, stateURL)
			if st.Sync != nil && st.Sync.Paired {
				t.Fatalf("appliance %d paired without anyone pairing it", n)
			}
			code = ""
			if st.Sync != nil {
				code = st.Sync.PairingCode
			}
			return code != ""
		})
		var paired struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		name := fmt.Sprintf("Kiosk %d", n)
		if status := c.do("POST", "/api/v1/appliances", map[string]string{"code": code, "name": name}, &paired); status != 201 || paired.Name != name {
			t.Fatalf("pair appliance %d = %d %+v", n, status, paired)
		}
		testkit.WaitFor(t, 10*time.Second, "the appliance to learn it is paired", func() bool {
			st := getState(t, stateURL)
			return st.Sync != nil && st.Sync.Paired && st.Sync.ApplianceID == paired.ID && st.Sync.PairingCode == ""
		})
	}
	var list struct {
		Appliances []struct{ Name string } `json:"appliances"`
	}
	if c.do("GET", "/api/v1/appliances", nil, &list); len(list.Appliances) != 2 {
		t.Fatalf("server lists %+v, want 2 appliances", list)
	}

	if status := c.do("POST", "/api/v1/users", map[string]string{"username": "alice"}, nil); status != 201 {
		t.Fatalf("create user = %d", status)
	}
	if status := c.do("POST", "/api/v1/users/alice/mfa-devices", map[string]string{"name": "Kiosk token", "appliance": "Kiosk 1"}, nil); status != 201 {
		t.Fatalf("send to Kiosk 1 = %d", status)
	}
	testkit.WaitFor(t, 10*time.Second, "the offer on Kiosk 1", func() bool {
		return getState(t, sim.URL+"/sim/appliances/1/state").View == "offer"
	})
	if v := getState(t, sim.URL+"/sim/appliances/0/state").View; v == "offer" {
		t.Fatal("the offer to Kiosk 1 shows on Kiosk 0")
	}
}

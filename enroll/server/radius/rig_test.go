package radius_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/core"
	rad "github.com/totpbox/totpbox/enroll/server/radius"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// start is in the middle of a 30-second step.
var start = time.Date(2026, 3, 1, 12, 0, 15, 0, time.UTC)

// rig is a RADIUS listener on loopback over a real core (SQLite), with a
// manual clock.
type rig struct {
	t     testing.TB
	st    store.Store
	srv   *server.Server
	core  *core.Core
	rad   *rad.Server
	clock *testkit.Clock
	addr  string // host:port of the listener
	port  string
}

// The shared secret of the rig's clients.
const testSecret = "s3cret-for-tests"

func testSealer(t testing.TB) *store.Sealer {
	key := make([]byte, store.KeySize)
	rand.Read(key)
	s, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newRig starts a listener whose clients are made by mod from a default
// one: loopback, testSecret, ModeCode.
func newRig(t testing.TB, mod func(*rad.Config)) *rig {
	t.Helper()
	return newRigWith(t, nil, mod)
}

// newRigWith is newRig whose server checks the passwords of directory
// users with dir (nil: none).
func newRigWith(t testing.TB, dir core.PasswordChecker, mod func(*rad.Config)) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, t.TempDir()+"/totpserver.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, st: st, clock: testkit.NewClock(start)}
	r.srv, err = server.New(server.Config{Store: st, Sealer: testSealer(t), Clock: r.clock, Logger: testkit.Quiet(), Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	r.core = r.srv.Core()
	cfg := rad.Config{
		Core:    r.core,
		Clients: []rad.Client{{Name: "vpn", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret), Mode: rad.ModeCode}},
		Clock:   r.clock,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	r.rad, err = rad.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	r.addr = pc.LocalAddr().String()
	_, r.port, _ = net.SplitHostPort(r.addr)
	testkit.Run(t, func(ctx context.Context) error { return r.rad.Serve(ctx, pc) })
	return r
}

// testWriter sends logs to t.Log, and fails the test if a secret or a
// code shows up in them.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), testSecret) {
		w.t.Errorf("log holds the shared secret: %s", p)
	}
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// user creates username with password (none when empty) and an active
// MFA device, and returns its key; the clock moves on a step so the next
// code is fresh.
func (r *rig) user(username, password string) enroll.Key {
	r.t.Helper()
	ctx := context.Background()
	u, err := r.core.CreateUser(ctx, core.System, core.NewUser{Username: username, Password: password})
	if err != nil {
		r.t.Fatal(err)
	}
	return r.device(u)
}

// device gives u an active MFA device and returns its key; the clock
// moves on a step so the next code is fresh.
func (r *rig) device(u store.User) enroll.Key {
	r.t.Helper()
	ctx := context.Background()
	d, k, err := r.core.StartRegistration(ctx, core.System, u, "appliance", store.KindAuthenticatorApp)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.core.ConfirmRegistration(ctx, core.System, u, d.ID, []string{enroll.Code(k, r.clock.Now())}); err != nil {
		r.t.Fatal(err)
	}
	r.clock.Advance(30 * time.Second)
	return k
}

// code is k's code now.
func (r *rig) code(k enroll.Key) string { return enroll.Code(k, r.clock.Now()) }

// request is an Access-Request from user with password (the PAP field).
func request(secret, user, password string) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	p.Add(1, radius.Attribute(user))
	pw, _ := radius.NewUserPassword([]byte(password), p.Secret, p.Authenticator[:])
	p.Add(2, pw)
	return p
}

// send sends raw to the rig and returns the decoded reply, or nil when
// none comes within wait.
func (r *rig) send(raw []byte, secret string, wait time.Duration) *radius.Packet {
	r.t.Helper()
	conn, err := net.Dial("udp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	return exchangeOn(r.t, conn, raw, secret, wait)
}

func exchangeOn(t testing.TB, conn net.Conn, raw []byte, secret string, wait time.Duration) *radius.Packet {
	t.Helper()
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, radius.MaxPacketLength)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	if !radius.IsAuthenticResponse(buf[:n], raw, []byte(secret)) {
		t.Fatalf("reply's Response Authenticator does not check")
	}
	p, err := radius.Parse(buf[:n], []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ask signs p with a Message-Authenticator, sends it and returns the
// reply's code, failing the test when none comes.
func (r *rig) ask(p *radius.Packet) *radius.Packet {
	r.t.Helper()
	raw, err := rad.SignRequest(p)
	if err != nil {
		r.t.Fatal(err)
	}
	rep := r.send(raw, string(p.Secret), 10*time.Second)
	if rep == nil {
		r.t.Fatal("no reply")
	}
	return rep
}

// metric reads one sample of the server's metrics, given as it is
// exposed (name{labels} in label order); absent is 0.
func (r *rig) metric(series string) float64 {
	r.t.Helper()
	rec := httptest.NewRecorder()
	r.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// auditHas reports whether the audit log has an event with action,
// actor, target and IP.
func (r *rig) auditHas(action, actor, target, ip string) bool {
	r.t.Helper()
	evs, err := r.st.AuditEvents(context.Background(), 1000, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == action && e.Actor == actor && e.Target == target && e.IP == ip {
			return true
		}
	}
	return false
}

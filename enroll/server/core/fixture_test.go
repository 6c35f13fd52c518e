package core

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// fixture is a core on a fresh SQLite store with a clock the test moves:
// what the console, the portal, the APIs and RADIUS call, without HTTP.
type fixture struct {
	t     *testing.T
	st    store.Store
	clock *testkit.Clock
	core  *Core
}

// start is the fixture clock's start, halfway through a 30 s step.
var start = time.Date(2026, 3, 2, 9, 0, 15, 0, time.UTC)

// newFixture returns a core with the server's defaults, changed by mod.
func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	st := storetest.OpenSQLite(t)
	clock := testkit.NewClock(start)
	apps, err := appliance.New(appliance.Config{Store: st, Clock: clock, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, store.KeySize)
	rand.Read(key)
	sealer, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Store: st, Sealer: sealer, Appliances: apps, Clock: clock, Logger: testkit.Quiet(),
		RegistrationTimeout: 10 * time.Minute, ResyncWindow: 1000, MaxDevicesPerUser: 8, CacheTTL: 5 * time.Second,
		Passwords:     store.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32},
		VerifyPerUser: Rate{PerSecond: -1}, VerifyPerIP: Rate{PerSecond: -1},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, clock: clock, core: c}
}

// settings saves the default settings changed by mod.
func (f *fixture) settings(mod func(*Settings)) {
	f.t.Helper()
	st := DefaultSettings()
	mod(&st)
	if err := f.core.SaveSettings(context.Background(), st); err != nil {
		f.t.Fatal(err)
	}
}

// user creates a user without a password.
func (f *fixture) user(name string) store.User {
	f.t.Helper()
	u, err := f.core.CreateUser(context.Background(), System, NewUser{Username: name})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// registered creates a user with one active MFA device and returns them
// with the device's key.
func (f *fixture) registered(name string) (store.User, store.Device, enroll.Key) {
	f.t.Helper()
	u := f.user(name)
	d, k := f.pending(u, "Token")
	d, err := f.core.ConfirmRegistration(context.Background(), System, u, d.ID, []string{enroll.Code(k, f.clock.Now())})
	if err != nil {
		f.t.Fatal(err)
	}
	return u, d, k
}

// pending starts a registration of u's device name.
func (f *fixture) pending(u store.User, name string) (store.Device, enroll.Key) {
	f.t.Helper()
	d, k, err := f.core.StartRegistration(context.Background(), System, u, name, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return d, k
}

// device reads device id from the store.
func (f *fixture) device(id int64) store.Device {
	f.t.Helper()
	d, err := f.st.Device(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// verify checks code for username from a fixed address.
func (f *fixture) verify(username, code string) VerifyResult {
	f.t.Helper()
	res, err := f.core.Verify(context.Background(), Actor{Name: "token:test", IP: "192.0.2.1", Role: RoleVerify}, username, code, "192.0.2.1")
	if err != nil {
		f.t.Fatalf("Verify(%s): %v", username, err)
	}
	return res
}

// actions lists the audit log's actions, oldest first.
func (f *fixture) actions() []string {
	f.t.Helper()
	evs, err := f.st.AuditEvents(context.Background(), 0, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = e.Action
	}
	return out
}

// failure checks that err is a Failure with status whose message holds
// msg; status 0 wants no error.
func failure(t *testing.T, what string, err error, status int, msg string) {
	t.Helper()
	var f *Failure
	switch {
	case status == 0 && err != nil:
		t.Errorf("%s: %v, want no error", what, err)
	case status == 0:
	case !errors.As(err, &f):
		t.Errorf("%s: %v, want a %d failure with %q", what, err, status, msg)
	case f.Status != status || !strings.Contains(f.Msg, msg):
		t.Errorf("%s: %d %q, want %d with %q", what, f.Status, f.Msg, status, msg)
	}
}

package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

var errFault = errors.New("injected fault")

// faultStore fails, when armed, right after the real call of the change
// (change) or of the audit and outbox write (audit): after the rows are
// written in the transaction, before it commits.
type faultStore struct {
	store.Store
	change, audit bool
}

func (f *faultStore) AuditWithEvent(ctx context.Context, e store.AuditEvent, ev store.WebhookEvent) error {
	if err := f.Store.AuditWithEvent(ctx, e, ev); err != nil || !f.audit {
		return err
	}
	return errFault
}

func (f *faultStore) after(err error) error {
	if err != nil || !f.change {
		return err
	}
	return errFault
}

func (f *faultStore) DeleteDevice(ctx context.Context, id int64) error {
	return f.after(f.Store.DeleteDevice(ctx, id))
}

func (f *faultStore) UpdateUser(ctx context.Context, u store.User) error {
	return f.after(f.Store.UpdateUser(ctx, u))
}

func (f *faultStore) UnlockDevice(ctx context.Context, id int64, lockedUntil time.Time) error {
	return f.after(f.Store.UnlockDevice(ctx, id, lockedUntil))
}

func (f *faultStore) CreateUser(ctx context.Context, u *store.User) error {
	return f.after(f.Store.CreateUser(ctx, u))
}

func (f *faultStore) SetSetting(ctx context.Context, name, value string) error {
	return f.after(f.Store.SetSetting(ctx, name, value))
}

// TestChangeAndEventCommitTogether runs the changes that raise webhook
// events through the core with a fault injected after the change or
// after its audit and outbox rows, before the commit: neither the change
// nor the event is left. Without a fault both are, one event each.
func TestChangeAndEventCommitTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		ctx := t.Context()
		fs := &faultStore{Store: open(t)}
		key := make([]byte, store.KeySize)
		sealer, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		apps, err := appliance.New(appliance.Config{Store: fs})
		if err != nil {
			t.Fatal(err)
		}
		c, err := core.New(core.Config{Store: fs, Sealer: sealer, Appliances: apps, CacheTTL: -1, MaxDevicesPerUser: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_all", URL: "https://a.example/", Events: []string{"*"},
			Secret: store.Sealed{KeyID: "k", Ciphertext: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		admin := core.Actor{Name: "admin", Role: core.RoleAdmin}
		lockout := store.Lockout{Threshold: 1, Base: time.Hour}
		// device makes an active MFA device of a new user.
		n := 0
		device := func(t *testing.T) (store.User, store.Device) {
			n++
			u := store.User{Username: "user" + string(rune('a'+n))}
			if err := fs.Store.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			d := store.Device{UserID: u.ID, Name: "phone", Kind: store.KindAuthenticatorApp, Status: store.StatusActive,
				Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: store.Sealed{KeyID: "k", Ciphertext: []byte("x")}}
			if err := fs.Store.CreateDevice(ctx, &d); err != nil {
				t.Fatal(err)
			}
			return u, d
		}
		tests := []struct {
			name, event string
			// do makes the change through the core; done reports
			// whether it was made.
			do func(t *testing.T) (done func() bool, err error)
		}{
			{"DeleteDevice", events.DeviceDeleted, func(t *testing.T) (func() bool, error) {
				u, d := device(t)
				return func() bool {
					_, err := fs.Store.Device(ctx, d.ID)
					return errors.Is(err, store.ErrNotFound)
				}, c.DeleteDevice(ctx, admin, u, d.ID)
			}},
			{"UnlockDevice", events.DeviceUnlocked, func(t *testing.T) (func() bool, error) {
				u, d := device(t)
				if _, err := fs.Store.RecordFailure(ctx, d.ID, lockout, time.Now()); err != nil {
					t.Fatal(err)
				}
				return func() bool {
					d, err := fs.Store.Device(ctx, d.ID)
					return err == nil && d.LockedUntil.IsZero()
				}, c.UnlockDevice(ctx, admin, u, d.ID)
			}},
			{"SetDisabled", events.UserDisabled, func(t *testing.T) (func() bool, error) {
				u, _ := device(t)
				return func() bool {
					u, err := fs.Store.UserByID(ctx, u.ID)
					return err == nil && u.Disabled
				}, c.SetDisabled(ctx, admin, u, true)
			}},
			{"CreateUser(admin)", events.AdminChanged, func(t *testing.T) (func() bool, error) {
				n++
				name := "admin" + string(rune('a'+n))
				_, err := c.CreateUser(ctx, admin, core.NewUser{Username: name, Admin: true})
				return func() bool {
					_, err := fs.Store.UserByName(ctx, name)
					return err == nil
				}, err
			}},
			{"ChangeSettings", events.AdminChanged, func(t *testing.T) (func() bool, error) {
				st, err := c.Settings(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n++
				st.Issuer = "Issuer " + string(rune('a'+n))
				return func() bool {
					m, err := fs.Store.Settings(ctx)
					return err == nil && m["issuer"] == st.Issuer
				}, c.ChangeSettings(ctx, admin, st, "issuer")
			}},
		}
		want := 0
		for _, tc := range tests {
			for _, fault := range []string{"change", "audit", ""} {
				t.Run(tc.name+"/fault="+fault, func(t *testing.T) {
					fs.change, fs.audit = fault == "change", fault == "audit"
					done, err := tc.do(t)
					fs.change, fs.audit = false, false
					if fault != "" {
						if !errors.Is(err, errFault) {
							t.Fatalf("with a fault after the %s: err = %v, want %v", fault, err, errFault)
						}
					} else if err != nil {
						t.Fatal(err)
					} else {
						want++
					}
					if done() != (fault == "") {
						t.Errorf("with a fault after the %q: change made = %v, want %v", fault, done(), fault == "")
					}
					ds, err := fs.Deliveries(ctx, store.DeliveryPending, 100)
					if err != nil {
						t.Fatal(err)
					}
					if len(ds) != want {
						t.Fatalf("with a fault after the %q: %d events in the outbox, want %d", fault, len(ds), want)
					}
					if fault == "" && ds[0].Event.Type != tc.event {
						t.Errorf("newest event = %s, want %s", ds[0].Event.Type, tc.event)
					}
				})
			}
		}
	})
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testAtomic checks that a change and its audit and outbox rows commit
// together: a fault after the change, before the commit, leaves neither;
// a change that fails leaves no event; without a fault both are there.
func testAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_all", URL: "https://a.example/hook",
		Events: []string{"*"}, Secret: store.Sealed{KeyID: "k1", Ciphertext: []byte("sealed")}, Created: t0}))
	alice := mkUser(t, s, "alice")
	rule := store.Lockout{Threshold: 1, Base: time.Minute}
	fault := errors.New("injected fault")

	// Each change, done inside Atomic, and how to tell it was made.
	changes := []struct {
		name   string
		change func(ctx context.Context, d store.Device) error
		// done reports whether the change is visible under ctx.
		done func(ctx context.Context, d store.Device) bool
	}{
		{"DeleteDevice", func(ctx context.Context, d store.Device) error { return s.DeleteDevice(ctx, d.ID) },
			func(ctx context.Context, d store.Device) bool {
				_, err := s.Device(ctx, d.ID)
				return errors.Is(err, store.ErrNotFound)
			}},
		{"RecordFailure", func(ctx context.Context, d store.Device) error {
			f, err := s.RecordFailure(ctx, d.ID, rule, t0)
			if err == nil && !f.Locked {
				err = fmt.Errorf("RecordFailure = %+v, want locked", f)
			}
			return err
		}, func(ctx context.Context, d store.Device) bool {
			got, err := s.Device(ctx, d.ID)
			return err == nil && !got.LockedUntil.IsZero()
		}},
		{"DisableUser", func(ctx context.Context, d store.Device) error {
			u, err := s.UserByID(ctx, d.UserID)
			if err != nil {
				return err
			}
			u.Disabled = true
			return s.UpdateUser(ctx, u)
		}, func(ctx context.Context, d store.Device) bool {
			u, err := s.UserByID(ctx, d.UserID)
			return err == nil && u.Disabled
		}},
		{"SetSetting", func(ctx context.Context, d store.Device) error {
			return s.SetSetting(ctx, "issuer", fmt.Sprint("changed by ", d.Name))
		}, func(ctx context.Context, d store.Device) bool {
			st, err := s.Settings(ctx)
			return err == nil && st["issuer"] == "changed by "+d.Name
		}},
	}
	events := 0
	for i, c := range changes {
		for _, fail := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/fault=%v", c.name, fail), func(t *testing.T) {
				u := alice
				if c.name == "DisableUser" {
					u = mkUser(t, s, fmt.Sprintf("user%d%v", i, fail))
				}
				d := mkActive(t, s, u.ID, fmt.Sprintf("d%d%v", i, fail))
				id := fmt.Sprintf("msg_%d_%v", i, fail)
				err := s.Atomic(ctx, func(ctx context.Context) error {
					if err := c.change(ctx, d); err != nil {
						return err
					}
					// The change is visible inside its transaction.
					if !c.done(ctx, d) {
						return errors.New("change not visible inside its transaction")
					}
					if err := s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: c.name, Target: id},
						store.WebhookEvent{ID: id, Type: "test.change", Time: t0}); err != nil {
						return err
					}
					if fail {
						return fault
					}
					return nil
				})
				if fail {
					wantErr(t, "Atomic(fault)", err, fault)
				} else {
					must(t, "Atomic", err)
					events++
				}
				if got := c.done(ctx, d); got == fail {
					t.Errorf("change made = %v after Atomic(fault=%v), want %v", got, fail, !fail)
				}
				if got := eventCount(t, s); got != events {
					t.Errorf("outbox deliveries = %d after Atomic(fault=%v), want %d", got, fail, events)
				}
			})
		}
	}

	// No event without its change: a change that fails takes its
	// transaction, and so its event, with it.
	err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "device.delete"},
			store.WebhookEvent{ID: "msg_gone", Type: "test.change", Time: t0}); err != nil {
			return err
		}
		return s.DeleteDevice(ctx, 999999)
	})
	wantErr(t, "Atomic(DeleteDevice(missing))", err, store.ErrNotFound)
	if got := eventCount(t, s); got != events {
		t.Errorf("outbox deliveries = %d after a failed change, want %d", got, events)
	}

	// A nested Atomic joins the outer transaction: its rows go when the
	// outer one fails.
	err = s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.Atomic(ctx, func(ctx context.Context) error {
			return s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"},
				store.WebhookEvent{ID: "msg_nested", Type: "test.change", Time: t0})
		}); err != nil {
			return err
		}
		return fault
	})
	wantErr(t, "Atomic(nested, fault)", err, fault)
	if got := eventCount(t, s); got != events {
		t.Errorf("outbox deliveries = %d after a nested Atomic rolled back, want %d", got, events)
	}
	audit, err := s.AuditAfter(ctx, store.AuditQuery{Limit: 1000})
	must(t, "AuditAfter", err)
	if len(audit) != events {
		t.Errorf("audit rows = %d, want %d: one per committed change", len(audit), events)
	}
}

func eventCount(t *testing.T, s store.Store) int {
	t.Helper()
	ds, err := s.Deliveries(t.Context(), store.DeliveryPending, 1000)
	must(t, "Deliveries", err)
	return len(ds)
}

package core

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestEventsFire: each change of the core that the webhook events name
// writes its event to the outbox, once, in order: a scripted session
// through the core with an endpoint subscribed to every event.
func TestEventsFire(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	root := Actor{Name: "root", Role: RoleAdmin}
	if _, _, err := f.core.CreateWebhook(ctx, root, "https://hooks.example.com/totp", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	st := DefaultSettings()
	st.LockoutThreshold, st.LockoutClear = 2, 5*time.Minute
	if err := f.core.ChangeSettings(ctx, root, st, "lockout"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateUser(ctx, root, NewUser{Username: "second-admin", Admin: true}); err != nil {
		t.Fatal(err)
	}
	u, d, _ := f.registered("alice") // a user (no event), then device.registered
	f.clock.Advance(30 * time.Second)
	for range 2 {
		f.verify("alice", "000000")
	}
	if !f.device(d.ID).LockedUntil.After(f.clock.Now()) {
		t.Fatal("two wrong codes did not lock the device")
	}
	if err := f.core.UnlockDevice(ctx, root, u, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.core.DeleteDevice(ctx, root, u, d.ID); err != nil {
		t.Fatal(err)
	}
	f.pending(u, "Later")
	f.clock.Advance(time.Hour)
	f.core.Sweep(ctx)
	if err := f.core.SetDisabled(ctx, root, u, true); err != nil {
		t.Fatal(err)
	}
	k := f.kiosk()
	app := k.pair("Front desk")
	if err := f.core.UnpairAppliance(ctx, root, app); err != nil {
		t.Fatal(err)
	}

	ds, err := f.st.Deliveries(ctx, store.DeliveryPending, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(ds) - 1; i >= 0; i-- {
		got = append(got, ds[i].Event.Type)
	}
	want := []string{
		events.AdminChanged, // the endpoint itself
		events.AdminChanged, // settings
		events.AdminChanged, // an admin created
		events.DeviceRegistered, events.DeviceLocked, events.DeviceUnlocked, events.DeviceDeleted,
		events.RegistrationExpired, events.UserDisabled, events.AppliancePaired, events.ApplianceUnpaired,
	}
	if !slices.Equal(got, want) {
		t.Errorf("outbox = %v,\nwant %v", got, want)
	}
}

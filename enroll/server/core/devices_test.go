package core

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestStartRegistration: what a new registration refuses, with its
// status and message, and what it makes: a pending device that expires
// after the registration timeout.
func TestStartRegistration(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.settings(func(st *Settings) { st.MaxDevices = 2 })
	u := f.user("alice")
	d, k := f.pending(u, "Phone")
	if d.Status != store.StatusPending || d.Kind != store.KindAuthenticatorApp || !d.ExpiresAt.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("pending device = %+v, want pending, an authenticator app, expiring in 10 minutes", d)
	}
	if k.Issuer != "totpbox" || len(k.Secret) == 0 {
		t.Fatalf("key = issuer %q, %d secret bytes", k.Issuer, len(k.Secret))
	}
	disabled := f.user("dora")
	if err := f.core.SetDisabled(ctx, System, disabled, true); err != nil {
		t.Fatal(err)
	}
	disabled.Disabled = true
	for _, tc := range []struct {
		name   string
		u      store.User
		dev    string
		kind   store.DeviceKind
		status int
		msg    string
	}{
		{"same name", u, "Phone", "", 409, `already has an MFA device named "Phone"`},
		{"empty name", u, " ", "", 400, "friendly name is empty"},
		{"bad kind", u, "Tablet", "hardware", 400, `kind must be "authenticator-app" or "appliance", not "hardware"`},
		{"disabled user", disabled, "Phone", "", 409, `user "dora" is disabled`},
		{"second device", u, "Tablet", store.KindAppliance, 0, ""},
		{"over the limit", u, "Laptop", "", 409, "already has 2 MFA devices, the most allowed"},
	} {
		_, _, err := f.core.StartRegistration(ctx, System, tc.u, tc.dev, tc.kind)
		failure(t, tc.name, err, tc.status, tc.msg)
	}
	// An expired registration no longer counts against the limit.
	f.clock.Advance(11 * time.Minute)
	if _, _, err := f.core.StartRegistration(ctx, System, u, "Laptop", ""); err != nil {
		t.Errorf("a registration after the others expired: %v", err)
	}
}

// TestConfirmRegistration: the codes a registration accepts (current,
// typed late but after it began) and refuses (wrong, too old, too few),
// and the state and audit that follow.
func TestConfirmRegistration(t *testing.T) {
	for _, tc := range []struct {
		name      string
		twoCodes  bool
		codes     func(k enroll.Key, now time.Time) []string
		status    int
		msg       string
		outOfSync bool
		audit     string
	}{
		{"current code", false, func(k enroll.Key, now time.Time) []string { return []string{enroll.Code(k, now)} }, 0, "", false, "device.register"},
		{"code 3 minutes late", false, func(k enroll.Key, now time.Time) []string { return []string{enroll.Code(k, now.Add(-3*time.Minute))} }, 0, "", true, "device.register"},
		{"wrong code", false, func(k enroll.Key, now time.Time) []string { return []string{enroll.CodeAt(k, enroll.Step(k, now)+40)} }, 400, "the code does not match", false, "device.register.fail"},
		{"code from before the registration", false, func(k enroll.Key, now time.Time) []string { return []string{enroll.Code(k, now.Add(-20*time.Minute))} }, 400, "minutes old, too old to register", false, "device.register.fail"},
		{"two codes asked, one typed", true, func(k enroll.Key, now time.Time) []string { return []string{enroll.Code(k, now)} }, 400, "type 2 consecutive codes, not 1", false, ""},
		{"two codes in a row", true, func(k enroll.Key, now time.Time) []string {
			s := enroll.Step(k, now)
			return []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}
		}, 0, "", false, "device.register"},
		{"two codes out of order", true, func(k enroll.Key, now time.Time) []string {
			s := enroll.Step(k, now)
			return []string{enroll.CodeAt(k, s), enroll.CodeAt(k, s-1)}
		}, 400, "the codes do not match", false, "device.register.fail"},
		{"not digits", false, func(enroll.Key, time.Time) []string { return []string{"12ab56"} }, 400, "code", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tc.twoCodes {
				f.settings(func(st *Settings) { st.RegistrationCodes = 2 })
			}
			u := f.user("bob")
			f.clock.Set(start.Add(-8 * time.Minute))
			d, k := f.pending(u, "Phone")
			f.clock.Set(start)
			got, err := f.core.ConfirmRegistration(context.Background(), Actor{Name: "bob"}, u, d.ID, tc.codes(k, f.clock.Now()))
			failure(t, "confirm", err, tc.status, tc.msg)
			want := store.StatusPending
			if tc.status == 0 {
				want = store.StatusActive
				if got.OutOfSync != tc.outOfSync || got.DriftSteps != 0 {
					t.Errorf("registered out of sync %v, drift %d; want out of sync %v, drift 0", got.OutOfSync, got.DriftSteps, tc.outOfSync)
				}
			}
			if s := f.device(d.ID).Status; s != want {
				t.Errorf("status after confirm = %s, want %s", s, want)
			}
			if acts := f.actions(); tc.audit != "" && !slices.Contains(acts, tc.audit) {
				t.Errorf("audit %v lacks %s", acts, tc.audit)
			}
		})
	}
}

// TestConfirmTwiceAndExpired: a registered device cannot be confirmed
// again; a registration past its timeout is refused with 410, removed by
// the sweep, and then still answered 410 with its name kept for "start
// again"; another user's device is a 404.
func TestConfirmTwiceAndExpired(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, d, k := f.registered("carol")
	_, err := f.core.ConfirmRegistration(ctx, System, u, d.ID, []string{enroll.Code(k, f.clock.Now())})
	failure(t, "second confirm", err, 409, "already registered")

	p, pk := f.pending(u, "Spare")
	other := f.user("mallory")
	_, err = f.core.ConfirmRegistration(ctx, System, other, p.ID, []string{enroll.Code(pk, f.clock.Now())})
	failure(t, "confirm of another user's device", err, 404, "no MFA device")

	f.clock.Advance(10*time.Minute + time.Second)
	_, err = f.core.ConfirmRegistration(ctx, System, u, p.ID, []string{enroll.Code(pk, f.clock.Now())})
	failure(t, "confirm after the timeout", err, 410, "expired")
	f.core.Sweep(ctx)
	if _, err := f.st.Device(ctx, p.ID); err == nil {
		t.Fatal("the sweep left the expired registration")
	}
	_, err = f.core.UserDevice(ctx, u, p.ID)
	failure(t, "the expired registration after the sweep", err, 410, "start again")
	if name := f.core.ExpiredName(ctx, u, p.ID); name != "Spare" {
		t.Errorf("ExpiredName = %q, want Spare", name)
	}
	if name := f.core.ExpiredName(ctx, other, p.ID); name != "" {
		t.Errorf("ExpiredName for another user = %q, want none", name)
	}
	if !slices.Contains(f.actions(), "device.expire") {
		t.Errorf("no device.expire in %v", f.actions())
	}
	if n, err := f.st.CountPending(ctx); err != nil || n != 0 {
		t.Errorf("pending after the sweep = %d, %v", n, err)
	}
}

// TestExpireRegistration: a page that finds its registration expired
// removes it at once, and one not yet due is left alone.
func TestExpireRegistration(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.user("erin")
	d, _ := f.pending(u, "Phone")
	f.core.ExpireRegistration(ctx, u, d)
	if _, err := f.st.Device(ctx, d.ID); err != nil {
		t.Fatalf("a registration not yet due was removed: %v", err)
	}
	f.clock.Advance(10 * time.Minute)
	f.core.ExpireRegistration(ctx, u, d)
	if _, err := f.st.Device(ctx, d.ID); err == nil {
		t.Fatal("an expired registration was kept")
	}
}

// TestResyncDevice: two codes in a row from a clock far off set the drift
// at once and verify follows it; the same codes again, a pending device
// and codes that are no pair are refused.
func TestResyncDevice(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, d, k := f.registered("finn")
	skew := 40 * 30 * time.Second // the device's clock is 20 minutes fast
	pair := func() []string {
		s := enroll.Step(k, f.clock.Now().Add(skew))
		return []string{enroll.CodeAt(k, s-1), enroll.CodeAt(k, s)}
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("finn", enroll.Code(k, f.clock.Now().Add(skew))); res.OK {
		t.Fatal("a code 20 minutes ahead was accepted before a resync")
	}
	codes := pair()
	got, err := f.core.ResyncDevice(ctx, Actor{Name: "finn"}, u, d.ID, codes)
	if err != nil {
		t.Fatal(err)
	}
	if got.DriftSteps != 40 {
		t.Fatalf("drift after resync = %d steps, want 40", got.DriftSteps)
	}
	_, err = f.core.ResyncDevice(ctx, Actor{Name: "finn"}, u, d.ID, codes)
	failure(t, "the same codes again", err, 409, "already used")
	f.clock.Advance(30 * time.Second)
	if res := f.verify("finn", enroll.Code(k, f.clock.Now().Add(skew))); !res.OK {
		t.Fatalf("verify at the learned drift = %+v", res)
	}
	_, err = f.core.ResyncDevice(ctx, System, u, d.ID, []string{"111111", "222222"})
	failure(t, "codes that are no pair", err, 400, "not two codes in a row")
	_, err = f.core.ResyncDevice(ctx, System, u, d.ID, []string{"111111"})
	failure(t, "one code", err, 400, "type 2 consecutive codes")
	p, pk := f.pending(u, "Spare")
	_, err = f.core.ResyncDevice(ctx, System, u, p.ID, []string{enroll.Code(pk, f.clock.Now()), enroll.Code(pk, f.clock.Now())})
	failure(t, "resync of a pending device", err, 409, "not registered yet")
	acts := f.actions()
	if !slices.Contains(acts, "device.resync") || !slices.Contains(acts, "device.resync.fail") {
		t.Errorf("audit %v lacks device.resync and device.resync.fail", acts)
	}
}

// TestRenameAndDeleteDevice: a rename checks the name and refuses one the
// user already has; a delete removes the device, so its codes no longer
// verify; another user's device is a 404 to both.
func TestRenameAndDeleteDevice(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, d, k := f.registered("gus")
	f.pending(u, "Spare")
	other := f.user("mallory")
	for _, tc := range []struct {
		name, to string
		u        store.User
		status   int
		msg      string
	}{
		{"new name", "Work phone", u, 0, ""},
		{"taken name", "Spare", u, 409, `already has an MFA device named "Spare"`},
		{"bad name", "a/b", u, 400, "not “/”"},
		{"another user's device", "Mine", other, 404, "no MFA device"},
	} {
		got, err := f.core.RenameDevice(ctx, System, tc.u, d.ID, tc.to)
		failure(t, tc.name, err, tc.status, tc.msg)
		if err == nil && got.Name != tc.to {
			t.Errorf("%s: renamed to %q, want %q", tc.name, got.Name, tc.to)
		}
	}
	failure(t, "delete of another user's device", f.core.DeleteDevice(ctx, System, other, d.ID), 404, "no MFA device")
	if err := f.core.DeleteDevice(ctx, System, u, d.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if res := f.verify("gus", enroll.Code(k, f.clock.Now())); res.OK || res.Reason != ReasonNoDevice {
		t.Errorf("verify after the delete = %+v, want %q", res, ReasonNoDevice)
	}
	failure(t, "unlock of a deleted device", f.core.UnlockDevice(ctx, System, u, d.ID), 404, "no MFA device")
	acts := f.actions()
	for _, a := range []string{"device.rename", "device.delete"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %s", acts, a)
		}
	}
}

// TestPendingKey: the key of a pending registration comes back with the
// issuer and label for its QR code, and the same secret; an active
// device's key is never shown again.
func TestPendingKey(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u := f.user("hal")
	d, k := f.pending(u, "Phone")
	got, err := f.core.PendingKey(ctx, u, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretBase32() != k.SecretBase32() || got.Issuer != "totpbox" || got.Account == "" {
		t.Fatalf("pending key: issuer %q account %q, same secret %v", got.Issuer, got.Account, got.SecretBase32() == k.SecretBase32())
	}
	if _, err := f.core.ConfirmRegistration(ctx, System, u, d.ID, []string{enroll.Code(k, f.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	_, err = f.core.PendingKey(ctx, u, f.device(d.ID))
	failure(t, "key of an active device", err, 409, "already registered")
}

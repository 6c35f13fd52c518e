package uplink

import (
	"context"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// activeDevice stores an active MFA device with uid for user, as a
// confirmed registration leaves it.
func activeDevice(t *testing.T, st store.Store, user *store.User, uid string) store.Device {
	t.Helper()
	ctx := context.Background()
	if user.ID == 0 {
		if err := st.CreateUser(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	d := store.Device{UserID: user.ID, UID: uid, Name: uid, Kind: store.KindAppliance, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: store.Sealed{KeyID: "test", Ciphertext: []byte("sealed")}, Registered: time.Now()}
	if err := st.CreateDevice(ctx, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPairAgainReconcilesAccounts: the server forgets an appliance that
// holds two accounts it placed; one MFA device is deleted meanwhile. Paired
// again, the appliance keeps the active one, which the server places on it
// again (so deleting it later removes it from the appliance) and marks
// active, wipes the deleted one, and keeps its local account.
func TestPairAgainReconcilesAccounts(t *testing.T) {
	st := storetest.OpenSQLite(t)
	s := newServerOn(t, st, false)
	ctx := context.Background()
	lena := &store.User{Username: "lena"}
	activeDevice(t, st, lena, "dev-keep")
	gone := activeDevice(t, st, lena, "dev-gone")

	a := startApp(t, s, t.TempDir())
	first := a.pair(s, "A")
	for _, dev := range []string{"dev-keep", "dev-gone"} {
		sendOffer(t, s, first, dev, "lena", dev)
		if _, err := a.hooks.take(t).Accept(); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 10*time.Second, "the accept of "+dev, func() bool { return offerState(t, s, dev) == proto.StateAccepted })
	}
	if _, err := a.vault.Add(vault.Account{Key: newKey(t, "local")}); err != nil {
		t.Fatal(err)
	}

	if err := s.api.Forget(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteDevice(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the appliance to learn it was forgotten", func() bool { return !a.c.Status().Paired })
	second := a.pair(s, "B")

	// The reconcile wipes, then activates, in two writes of the vault:
	// wait for both.
	testkit.WaitFor(t, 10*time.Second, "the deleted device's account wiped and the kept one active", func() bool {
		_, gone := a.account("dev-gone")
		acc, kept := a.account("dev-keep")
		return !gone && (!kept || acc.State == vault.Active)
	})
	if acc, ok := a.account("dev-keep"); !ok {
		t.Fatalf("the active device's account was wiped; accounts %v", a.accounts())
	} else if acc.State != vault.Active {
		// Its registration was confirmed while the appliance was away.
		t.Errorf("the adopted account is %v, want active as its MFA device is", acc.State)
	}
	local := 0
	for _, acc := range a.accounts() {
		if acc.IsLocal() {
			local++
		}
	}
	if local != 1 {
		t.Errorf("local accounts = %d, want the one added on the appliance", local)
	}
	if os, err := s.api.OfferState(ctx, "dev-keep"); err != nil || os.ApplianceID != second || os.State != proto.StateAccepted {
		t.Fatalf("dev-keep is placed %+v, %v; want accepted on %s", os, err, second)
	}

	// Deleting the device now reaches the appliance through the sync.
	if err := s.api.DeviceChanged(ctx, appliance.DeviceChange{Kind: store.ChangeDelete, DeviceUID: "dev-keep"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the re-adopted account removed", func() bool { _, ok := a.account("dev-keep"); return !ok })
}

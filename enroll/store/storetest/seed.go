package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// SeedUsers creates n users, user0000, user0001, …, each with one active
// SHA-1 MFA device named "token" sealed by sealer and registered at at
// (the step before at used), as benchmarks of the verify path need them,
// and returns the devices' keys in the users' order.
func SeedUsers(tb testing.TB, st store.Store, sealer *store.Sealer, n int, at time.Time) []enroll.Key {
	tb.Helper()
	ctx := context.Background()
	keys := make([]enroll.Key, 0, n)
	users := make([]store.User, 0, n)
	devices := make([][]store.Device, 0, n)
	for i := range n {
		u := store.User{Username: fmt.Sprintf("user%04d", i)}
		k, err := enroll.NewKey("bench", u.Username)
		if err != nil {
			tb.Fatal(err)
		}
		d := store.Device{Name: "token", Kind: store.KindAppliance, Status: store.StatusPending,
			Algorithm: "SHA1", Digits: 6, PeriodSec: 30, ExpiresAt: at.Add(time.Hour)}
		keys = append(keys, k)
		users = append(users, u)
		devices = append(devices, []store.Device{d})
	}
	if bulk, ok := st.(store.BulkCreator); ok {
		// Registered as ActivateDevice would have it.
		for i := range devices {
			d := &devices[i][0]
			d.Status, d.Registered, d.LastUsed, d.ExpiresAt = store.StatusActive, at, at, time.Time{}
			d.LastUsedStep = enroll.Step(keys[i], at) - 1
		}
		i := 0
		seal := func(d *store.Device) error {
			err := sealer.SealDevice(d, keys[i].Secret)
			i++
			return err
		}
		if err := bulk.CreateUsersDevices(ctx, users, devices, seal); err != nil {
			tb.Fatal(err)
		}
		return keys
	}
	for i := range users {
		u, d := &users[i], &devices[i][0]
		if err := st.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
		d.UserID = u.ID
		if err := sealer.SealDevice(d, keys[i].Secret); err != nil {
			tb.Fatal(err)
		}
		if err := st.CreateDevice(ctx, d); err != nil {
			tb.Fatal(err)
		}
		if err := st.ActivateDevice(ctx, d.ID, store.UseStep{DeviceID: d.ID, Step: enroll.Step(keys[i], at) - 1, At: at}); err != nil {
			tb.Fatal(err)
		}
	}
	return keys
}

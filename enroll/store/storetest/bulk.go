package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testCreateUsersDevices checks the bulk creation of users with their MFA
// devices: every row as CreateUser and CreateDevice would write it, and
// nothing at all when one of them is refused.
func testCreateUsersDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	bulk, ok := s.(store.BulkCreator)
	if !ok {
		t.Skipf("%v does not implement store.BulkCreator", s)
	}
	mkActive(t, s, mkUser(t, s, "taken").ID, "Phone")
	var users []store.User
	var devices [][]store.Device
	for i := range 3 {
		users = append(users, store.User{Username: fmt.Sprintf("Bulk%d", i), Email: fmt.Sprintf("bulk%d@example.com", i), Created: t0})
		var ds []store.Device
		for j := range i {
			d := pending(0, fmt.Sprintf("Token %d", j), time.Time{})
			d.Status, d.Registered, d.LastUsedStep, d.LastUsed = store.StatusActive, t0, step0, t0
			ds = append(ds, d)
		}
		devices = append(devices, ds)
	}
	must(t, "CreateUsersDevices", bulk.CreateUsersDevices(ctx, users, devices, nil))
	for i, u := range users {
		if u.ID == 0 {
			t.Fatalf("CreateUsersDevices left user %d without an ID", i)
		}
		gotU, gotDevs, err := s.UserDevices(ctx, u.Username)
		must(t, "UserDevices("+u.Username+")", err)
		if gotU.ID != u.ID || gotU.Email != u.Email || !gotU.Created.Equal(u.Created) {
			t.Errorf("UserDevices(%s) user = %+v, want %+v", u.Username, gotU, u)
		}
		if len(gotDevs) != len(devices[i]) {
			t.Fatalf("UserDevices(%s) = %d devices, want %d", u.Username, len(gotDevs), len(devices[i]))
		}
		for j, d := range devices[i] {
			if d.UserID != u.ID || d.ID == 0 || d.UID == "" {
				t.Errorf("CreateUsersDevices left device %d/%d with user %d, ID %d, UID %q", i, j, d.UserID, d.ID, d.UID)
			}
			if !equalDevice(gotDevs[j], d) {
				t.Errorf("UserDevices(%s)[%d] = %+v\nwant %+v", u.Username, j, gotDevs[j], d)
			}
		}
	}

	// A taken username in the middle refuses the whole batch.
	again := []store.User{{Username: "fresh1"}, {Username: "TAKEN"}, {Username: "fresh2"}}
	if err := bulk.CreateUsersDevices(ctx, again, make([][]store.Device, 3), nil); err == nil {
		t.Fatal("CreateUsersDevices with a taken username succeeded")
	}
	for _, name := range []string{"fresh1", "fresh2"} {
		_, err := s.UserByName(ctx, name)
		wantErr(t, "UserByName("+name+") after a refused batch", err, store.ErrNotFound)
	}
	if err := bulk.CreateUsersDevices(ctx, []store.User{{Username: "x"}}, nil, nil); err == nil {
		t.Error("CreateUsersDevices with fewer device lists than users succeeded")
	}
}

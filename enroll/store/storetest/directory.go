package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

func testDirectoryLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	d := s.(store.Directory)
	alice := &store.User{Username: "alice"}
	bob := &store.User{Username: "bob"}
	for _, u := range []*store.User{alice, bob} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.UserLink(ctx, alice.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserLink(local user) = %v, want ErrNotFound", err)
	}
	la := store.DirectoryLink{UserID: alice.ID, Source: "ldap", ExternalID: "uid=alice,ou=people"}
	if err := d.LinkUser(ctx, la); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "LinkUser(another user, same entry)", d.LinkUser(ctx, store.DirectoryLink{UserID: bob.ID, Source: "ldap", ExternalID: la.ExternalID}), store.ErrConflict)
	wantErr(t, "LinkUser(no such user)", d.LinkUser(ctx, store.DirectoryLink{UserID: 9999, Source: "ldap", ExternalID: "x"}), store.ErrNotFound)
	la.DisabledBySource = true
	if err := d.LinkUser(ctx, la); err != nil {
		t.Fatalf("LinkUser(update) = %v", err)
	}
	if err := d.LinkUser(ctx, store.DirectoryLink{UserID: bob.ID, Source: "scim", ExternalID: "b-1"}); err != nil {
		t.Fatal(err)
	}
	links, err := d.DirectoryLinks(ctx, "ldap")
	if err != nil || len(links) != 1 || links[0] != la {
		t.Fatalf("DirectoryLinks(ldap) = %+v, %v; want [%+v]", links, err, la)
	}
	if got, err := d.LinkByExternalID(ctx, "ldap", la.ExternalID); err != nil || got != la {
		t.Fatalf("LinkByExternalID = %+v, %v; want %+v", got, err, la)
	}
	if _, err := d.LinkByExternalID(ctx, "scim", la.ExternalID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LinkByExternalID(other source) = %v, want ErrNotFound", err)
	}
	if got, err := d.UserLink(ctx, bob.ID); err != nil || got.Source != "scim" {
		t.Fatalf("UserLink(bob) = %+v, %v", got, err)
	}
	if err := d.UnlinkUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UserLink(ctx, bob.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserLink after UnlinkUser = %v, want ErrNotFound", err)
	}
}

func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := s.(store.Leases)
	take := func(holder string, at time.Time) bool {
		t.Helper()
		ok, err := l.TryLease(ctx, "sync", holder, at, time.Minute)
		if err != nil {
			t.Fatalf("TryLease(%s) = %v", holder, err)
		}
		return ok
	}
	if !take("a", t0) {
		t.Fatal("a could not take a free lease")
	}
	if take("b", t0.Add(30*time.Second)) {
		t.Fatal("b took a's lease before it ran out")
	}
	if !take("a", t0.Add(50*time.Second)) {
		t.Fatal("a could not renew its own lease")
	}
	if take("b", t0.Add(100*time.Second)) {
		t.Fatal("b took a's renewed lease before it ran out")
	}
	if !take("b", t0.Add(111*time.Second)) {
		t.Fatal("b could not take a's lease once it ran out")
	}
	if err := l.ReleaseLease(ctx, "sync", "a"); err != nil {
		t.Fatal(err)
	}
	if take("a", t0.Add(112*time.Second)) {
		t.Fatal("a's release gave up b's lease")
	}
	if err := l.ReleaseLease(ctx, "sync", "b"); err != nil {
		t.Fatal(err)
	}
	// Of many holders racing for a free lease, exactly one gets it.
	var mu sync.Mutex
	won := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := l.TryLease(ctx, "race", string(rune('a'+i)), t0, time.Minute)
			if err != nil {
				t.Errorf("TryLease = %v", err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d holders took one lease, want 1", won)
	}
}

func testSCIM(t *testing.T, s store.Store) {
	ctx := context.Background()
	var users []*store.User
	for _, n := range []string{"alice", "bob", "carol"} {
		u := &store.User{Username: n, DisplayName: n}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	alice, bob, carol := users[0], users[1], users[2]
	a := store.SCIMUser{UserID: alice.ID, ID: "id-a", ExternalID: "ext-a", GivenName: "Alice", FamilyName: "Liddell", Active: true}
	if err := s.PutSCIMUser(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSCIMUser(ctx, store.SCIMUser{UserID: bob.ID, ID: "id-b", ExternalID: "ext-b", Active: true}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "PutSCIMUser(another user's id)", s.PutSCIMUser(ctx, store.SCIMUser{UserID: carol.ID, ID: "id-a"}), store.ErrConflict)
	wantErr(t, "PutSCIMUser(no such user)", s.PutSCIMUser(ctx, store.SCIMUser{UserID: 9999, ID: "id-x"}), store.ErrNotFound)
	wantErr(t, "PutSCIMUsers(one taken id)", s.PutSCIMUsers(ctx, []store.SCIMUser{{UserID: carol.ID, ID: "id-c"}, {UserID: 9999, ID: "id-y"}}), store.ErrNotFound)
	if _, err := s.SCIMUserByID(ctx, "id-c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutSCIMUsers that failed stored a row: %v", err)
	}
	got, err := s.SCIMUserByID(ctx, "id-a")
	if err != nil || got.UserID != alice.ID || got.ExternalID != "ext-a" || got.GivenName != "Alice" || !got.Active || got.User.Username != "alice" || got.Created.IsZero() {
		t.Fatalf("SCIMUserByID(id-a) = %+v, %v", got, err)
	}
	if _, err := s.SCIMUserByID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SCIMUserByID(nope) = %v, want ErrNotFound", err)
	}
	if _, err := s.SCIMUserByUserID(ctx, carol.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SCIMUserByUserID(local user) = %v, want ErrNotFound", err)
	}
	a.Active, a.Deleted = false, true
	if err := s.PutSCIMUser(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SCIMUserByUserID(ctx, alice.ID); err != nil || got.Active || !got.Deleted || !got.Created.Equal(got.Created) {
		t.Fatalf("SCIMUserByUserID after update = %+v, %v", got, err)
	}
	for _, c := range []struct {
		q     store.SCIMUserQuery
		ids   []string
		total int
	}{
		{store.SCIMUserQuery{Limit: 10}, []string{"id-b"}, 1},
		{store.SCIMUserQuery{UserName: "BOB", Limit: 10}, []string{"id-b"}, 1},
		{store.SCIMUserQuery{ExternalID: "EXT-B", Limit: 10}, nil, 0},
		{store.SCIMUserQuery{ExternalID: "ext-b"}, nil, 1},
		{store.SCIMUserQuery{UserName: "alice", Limit: 10}, nil, 0},
	} {
		us, total, err := s.SCIMUsers(ctx, c.q)
		var ids []string
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		if err != nil || total != c.total || len(ids) != len(c.ids) || len(ids) > 0 && ids[0] != c.ids[0] {
			t.Errorf("SCIMUsers(%+v) = %v, %d, %v; want %v, %d", c.q, ids, total, err, c.ids, c.total)
		}
	}

	g := store.SCIMGroup{ID: "g-1", DisplayName: "Kiosk Users", ExternalID: "eg-1", Members: []int64{alice.ID, bob.ID, bob.ID}}
	if err := s.PutSCIMGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "PutSCIMGroup(same name)", s.PutSCIMGroup(ctx, store.SCIMGroup{ID: "g-2", DisplayName: "kiosk users"}), store.ErrConflict)
	wantErr(t, "PutSCIMGroup(member no user)", s.PutSCIMGroup(ctx, store.SCIMGroup{ID: "g-3", DisplayName: "x", Members: []int64{9999}}), store.ErrNotFound)
	if err := s.PutSCIMGroup(ctx, store.SCIMGroup{ID: "g-2", DisplayName: "Admins", Members: []int64{carol.ID}}); err != nil {
		t.Fatal(err)
	}
	gg, err := s.SCIMGroupByID(ctx, "g-1")
	if err != nil || gg.DisplayName != "Kiosk Users" || len(gg.Members) != 2 || gg.Members[0] != alice.ID || gg.Members[1] != bob.ID {
		t.Fatalf("SCIMGroupByID(g-1) = %+v, %v", gg, err)
	}
	g.Members = []int64{bob.ID}
	if err := s.PutSCIMGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if of, err := s.SCIMGroupsOf(ctx, alice.ID); err != nil || len(of) != 0 {
		t.Fatalf("SCIMGroupsOf(alice) after removal = %+v, %v", of, err)
	}
	if of, err := s.SCIMGroupsOf(ctx, bob.ID); err != nil || len(of) != 1 || of[0].ID != "g-1" {
		t.Fatalf("SCIMGroupsOf(bob) = %+v, %v", of, err)
	}
	if gs, total, err := s.SCIMGroups(ctx, store.SCIMGroupQuery{DisplayName: "KIOSK USERS", Limit: 5}); err != nil || total != 1 || len(gs) != 1 || len(gs[0].Members) != 1 {
		t.Fatalf("SCIMGroups(displayName) = %+v, %d, %v", gs, total, err)
	}
	if gs, total, err := s.SCIMGroups(ctx, store.SCIMGroupQuery{Offset: 1, Limit: 5}); err != nil || total != 2 || len(gs) != 1 || gs[0].ID != "g-1" {
		t.Fatalf("SCIMGroups(offset 1) = %+v, %d, %v", gs, total, err)
	}
	if err := s.DeleteSCIMGroup(ctx, "g-1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteSCIMGroup(again)", s.DeleteSCIMGroup(ctx, "g-1"), store.ErrNotFound)
	if of, err := s.SCIMGroupsOf(ctx, bob.ID); err != nil || len(of) != 0 {
		t.Fatalf("SCIMGroupsOf(bob) after delete = %+v, %v", of, err)
	}
}

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

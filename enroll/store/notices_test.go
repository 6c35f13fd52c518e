package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestPostgresNotices: a notice sent through one store reaches a listener
// on another store of the same schema, and not one of another schema.
func TestPostgresNotices(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	open := func(schema string) store.Notices {
		s, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(dsn, schema))
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		n, ok := s.(store.Notices)
		if !ok {
			t.Fatalf("the PostgreSQL store does not implement store.Notices")
		}
		return n
	}
	a, b := open(schema), open(schema)
	other := open(storetest.CreateSchema(t, dsn))

	listen := func(n store.Notices) <-chan string {
		got := make(chan string, 10)
		up := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Listen(ctx, func() { close(up) }, func(p string) { got <- p }) }()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-up:
		case err := <-done:
			t.Fatalf("Listen: %v", err)
		}
		return got
	}
	onB, onOther := listen(b), listen(other)
	if err := a.Notify(t.Context(), "app abc"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	select {
	case p := <-onB:
		if p != "app abc" {
			t.Errorf("listener got %q, want %q", p, "app abc")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice reached the listener of the same schema")
	}
	// A notice on the other schema's channel, sent after ours, arrives
	// before any stray one of ours could be noticed there.
	if err := other.Notify(t.Context(), "marker"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if p := <-onOther; p != "marker" {
		t.Errorf("listener of another schema got %q", p)
	}
	if err := a.Notify(t.Context(), string(make([]byte, 8000))); err == nil {
		t.Error("Notify of 8000 bytes: no error")
	}
}

// TestPostgresTakeToken: the shared bucket starts full, refuses when
// empty, refills with time, never beyond its burst, and counts takes of
// two stores (two replicas) as one.
func TestPostgresTakeToken(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	var bs []store.RateBuckets
	for range 2 {
		s, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(dsn, schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		bs = append(bs, s.(store.RateBuckets))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	take := func(i int, at time.Time) bool {
		ok, _, err := bs[i%2].TakeToken(t.Context(), "verify-user", "alice", 1, 3, at)
		if err != nil {
			t.Fatalf("TakeToken: %v", err)
		}
		return ok
	}
	var got []bool
	for i := range 5 {
		got = append(got, take(i, now))
	}
	if want := []bool{true, true, true, false, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("takes at once from two stores = %v, want %v", got, want)
	}
	if !take(0, now.Add(1500*time.Millisecond)) || take(1, now.Add(1500*time.Millisecond)) {
		t.Error("after 1.5 s at 1/s: want one token, then none")
	}
	// An hour idle refills to the burst, not beyond.
	later := now.Add(time.Hour)
	got = got[:0]
	for i := range 4 {
		got = append(got, take(i, later))
	}
	if want := []bool{true, true, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("takes after an hour = %v, want %v", got, want)
	}
	if ok, _, _ := bs[0].TakeToken(t.Context(), "signin-user", "alice", 1, 3, later); !ok {
		t.Error("another scope shares alice's bucket")
	}
	if n, err := bs[0].DeleteIdleBuckets(t.Context(), later.Add(time.Second)); err != nil || n != 2 {
		t.Errorf("DeleteIdleBuckets = %d, %v, want 2", n, err)
	}
}

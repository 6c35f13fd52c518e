package store_test

import (
	"context"
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

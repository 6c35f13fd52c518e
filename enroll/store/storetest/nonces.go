package storetest

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

func testNonces(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := t0.Add(5 * time.Minute)
	must(t, "UseNonce(k1, n1)", s.UseNonce(ctx, "k1", "n1", exp))
	wantErr(t, "UseNonce(k1, n1) again", s.UseNonce(ctx, "k1", "n1", exp), store.ErrConflict)
	wantErr(t, "UseNonce(k1, n1) with a later expiry", s.UseNonce(ctx, "k1", "n1", exp.Add(time.Hour)), store.ErrConflict)
	must(t, "UseNonce(k2, n1)", s.UseNonce(ctx, "k2", "n1", exp))
	must(t, "UseNonce(k1, n2)", s.UseNonce(ctx, "k1", "n2", exp.Add(time.Minute)))
	if err := s.UseNonce(ctx, "", "n3", exp); err == nil {
		t.Error("UseNonce with an empty key id succeeded")
	}

	n, err := s.DeleteExpiredNonces(ctx, exp.Add(-time.Second))
	must(t, "DeleteExpiredNonces(before any expiry)", err)
	if n != 0 {
		t.Errorf("DeleteExpiredNonces(before any expiry) = %d, want 0", n)
	}
	n, err = s.DeleteExpiredNonces(ctx, exp) // at expiry counts as expired
	must(t, "DeleteExpiredNonces(exp)", err)
	if n != 2 {
		t.Errorf("DeleteExpiredNonces(exp) = %d, want 2", n)
	}
	// The pruned nonces are free again; the unexpired one is not.
	must(t, "UseNonce(k1, n1) after pruning", s.UseNonce(ctx, "k1", "n1", exp.Add(time.Hour)))
	wantErr(t, "UseNonce(k1, n2) after pruning", s.UseNonce(ctx, "k1", "n2", exp), store.ErrConflict)
	n, err = s.DeleteExpiredNonces(ctx, exp.Add(time.Minute))
	must(t, "DeleteExpiredNonces(exp+1m)", err)
	if n != 1 {
		t.Errorf("DeleteExpiredNonces(exp+1m) = %d, want 1 (k1/n2)", n)
	}
}

func testConcurrentNonce(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers = 32
	exp := t0.Add(5 * time.Minute)
	ok, dup := concurrentRefused(t, workers, store.ErrConflict, func() error {
		return s.UseNonce(ctx, "key", "nonce", exp)
	})
	if ok != 1 || dup != workers-1 {
		t.Errorf("concurrent UseNonce: %d succeeded and %d conflicted, want 1 and %d", ok, dup, workers-1)
	}
}

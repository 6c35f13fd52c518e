package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestTxPreparedStatements checks that a transaction's statement runs
// unprepared the first time, is prepared once the transaction has ended,
// and runs prepared in later transactions, plain and under Atomic, with
// the same results.
func TestTxPreparedStatements(t *testing.T) {
	ctx := t.Context()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	const q = `INSERT INTO audit_events (time, actor, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?)`
	insert := func(ctx context.Context, actor string) error {
		return s.tx(ctx, "insert", func(t *txq) error {
			_, err := t.exec(ctx, q, s.d.timeArg(micro(time.Now())), actor, "test", "", "", "")
			return err
		})
	}
	if s.w.prepared(q) != nil {
		t.Fatal("statement prepared before its first use")
	}
	if err := insert(ctx, "first"); err != nil {
		t.Fatalf("first insert: %v", err)
	}
	if s.w.prepared(q) == nil {
		t.Fatal("statement not prepared after the first transaction")
	}
	if err := insert(ctx, "second"); err != nil {
		t.Fatalf("second insert: %v", err)
	}
	err = s.Atomic(ctx, func(ctx context.Context) error {
		if err := insert(ctx, "atomic"); err != nil {
			return err
		}
		_, err := s.exec(ctx, q, s.d.timeArg(micro(time.Now())), "joined", "test", "", "", "")
		return err
	})
	if err != nil {
		t.Fatalf("Atomic: %v", err)
	}
	evs, err := s.AuditAfter(ctx, AuditQuery{Action: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Actor)
	}
	if want := []string{"first", "second", "atomic", "joined"}; !slices.Equal(got, want) {
		t.Errorf("actors = %v, want %v", got, want)
	}
}

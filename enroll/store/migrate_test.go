package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib"
)

func TestSchemaVersion(t *testing.T) {
	sv, err := store.SchemaVersion("sqlite")
	if err != nil || sv < 1 {
		t.Fatalf("SchemaVersion(sqlite) = %d, %v", sv, err)
	}
	pv, err := store.SchemaVersion("postgres")
	if err != nil || pv != sv {
		t.Errorf("SchemaVersion(postgres) = %d, %v; want %d like sqlite: write every migration for both", pv, err, sv)
	}
}

func TestOpenSQLiteFile(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := store.Open(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "alice"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, store.SQLiteFile)
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	// Reopening keeps the data and does not migrate again.
	s, err = store.Open(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.UserByName(ctx, "alice"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	if _, err := store.Open(ctx, "", ""); err == nil {
		t.Errorf("Open with no data dir and no DSN succeeded")
	}
}

// setVersion writes a schema version directly, as a newer binary would.
func setVersion(t *testing.T, driver, dsn string, v int) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `UPDATE schema_version SET version = ?`
	if driver == "pgx" {
		q = `UPDATE schema_version SET version = $1`
	}
	if _, err := db.Exec(q, v); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.SQLiteFile)
	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	v, _ := store.SchemaVersion("sqlite")
	setVersion(t, "sqlite", path, v+1)
	_, err = store.OpenSQLite(t.Context(), path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("OpenSQLite(newer schema) = %v, want ErrSchemaTooNew", err)
	}
}

func TestPostgresNewerSchemaRefused(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dsn = storetest.WithSearchPath(dsn, storetest.CreateSchema(t, dsn))
	s, err := store.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	v, _ := store.SchemaVersion("postgres")
	setVersion(t, "pgx", dsn, v+1)
	_, err = store.OpenPostgres(t.Context(), dsn)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("OpenPostgres(newer schema) = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://u:hunter2@[::1", // unparsable
	} {
		s, err := store.OpenPostgres(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", dsn)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") {
			t.Errorf("OpenPostgres error leaks the password: %s", msg)
		}
	}
}

// openTwice opens two stores on one database at once, as two server
// processes or replicas do, and checks they migrate without a clash and
// still accept a code only once between them.
func openTwice(t *testing.T, open func() (store.Store, error)) {
	var (
		wg     sync.WaitGroup
		stores [2]store.Store
		errs   [2]error
	)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = open() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ctx := t.Context()
	u := store.User{Username: "alice"}
	if err := stores[0].CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	d := store.Device{UserID: u.ID, Name: "Phone", Kind: store.KindAuthenticatorApp, Status: store.StatusActive,
		Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: store.Sealed{KeyID: "k", Ciphertext: []byte("0123456789abcdef0123")}}
	if err := stores[1].CreateDevice(ctx, &d); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ok := 0
	for i := range 32 {
		wg.Go(func() {
			err := stores[i%2].RecordUse(context.Background(), store.UseStep{DeviceID: d.ID, Step: 100, At: time.Now()})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrStale):
				t.Errorf("RecordUse: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("32 RecordUse of one step over two stores: %d succeeded, want 1", ok)
	}
}

func TestSQLiteTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.SQLiteFile)
	openTwice(t, func() (store.Store, error) { return store.OpenSQLite(t.Context(), path) })
}

func TestPostgresTwoStoresOneSchema(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dsn = storetest.WithSearchPath(dsn, storetest.CreateSchema(t, dsn))
	openTwice(t, func() (store.Store, error) { return store.OpenPostgres(t.Context(), dsn) })
}

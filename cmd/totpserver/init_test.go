package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestInitPostgresCreatesDataDir: init with a PostgreSQL database creates
// the data directory it keeps the master key in, as it does for SQLite.
func TestInitPostgresCreatesDataDir(t *testing.T) {
	dsn := storetest.CreateDatabase(t, storetest.PostgresDSN(t))
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	t.Setenv("TOTPSERVER_DATABASE_DSN", dsn)
	data := filepath.Join(t.TempDir(), "new", "data")
	if err, out := run(t, "init", "--data", data); err != nil {
		t.Fatalf("init --data %s on PostgreSQL: %v\n%s", data, err, out)
	}
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatalf("data directory after init: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode = %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(data, "totpserver.db")); err == nil {
		t.Error("init on PostgreSQL created a SQLite database in the data directory")
	}
}

// Package storetest is the conformance suite every store.Store passes, and
// helpers that open a fresh store for tests: SQLite in a temporary
// directory, PostgreSQL in a schema of its own.
package storetest

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/totpbox/totpbox/enroll/store"
)

// Environment variables of the PostgreSQL tests.
const (
	// PostgresDSNEnv names the database the PostgreSQL tests use; each
	// OpenPostgres call creates, and drops at the end, a schema of its own.
	PostgresDSNEnv = "TOTPBOX_TEST_POSTGRES_DSN"
	// RequirePartsEnv set to 1 (CI sets it) turns a skipped PostgreSQL test
	// into a failure (testkit.RequirePartsEnv).
	RequirePartsEnv = testkit.RequirePartsEnv
)

// OpenSQLite returns a fresh SQLite store in a temporary directory, closed
// at the end of the test.
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), store.SQLiteFile))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresDSN returns the DSN of the test database from PostgresDSNEnv. When
// it is unset the test is skipped, or fails when RequirePartsEnv is 1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	testkit.RequirePart(t, dsn == "", "PostgreSQL ("+PostgresDSNEnv+" names its test database)")
	return dsn
}

// OpenPostgres returns a store in a new schema of the test database (see
// PostgresDSN), so parallel tests and runs never meet; the schema is
// dropped at the end of the test. An unreachable server fails the test.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	dsn := PostgresDSN(t)
	schema := CreateSchema(t, dsn)
	s, err := store.OpenPostgres(t.Context(), WithSearchPath(dsn, schema))
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	// Registered after CreateSchema's cleanup, so it runs before the drop.
	t.Cleanup(func() { s.Close() })
	return s
}

// CreateSchema creates a schema with a random name in the database at dsn
// and drops it, with everything in it, when the test ends.
func CreateSchema(t testing.TB, dsn string) string {
	t.Helper()
	return createTemporary(t, dsn, "SCHEMA", " CASCADE")
}

// createTemporary creates a kind ("SCHEMA" or "DATABASE") with a random
// name on the server of dsn, and drops it (the statement ending in
// dropSuffix) when the test ends. It returns the name.
func createTemporary(t testing.TB, dsn, kind, dropSuffix string) string {
	t.Helper()
	what := strings.ToLower(kind)
	var b [6]byte
	rand.Read(b[:])
	name := "totpbox_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL test database (%s): %v", PostgresDSNEnv, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE "+kind+" "+name); err != nil {
		t.Fatalf("create %s %s: %v", what, name, err)
	}
	t.Cleanup(func() {
		// DROP DATABASE waits for a checkpoint, which on a busy server can
		// take longer than the create did.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop %s %s: %v", what, name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP "+kind+" "+name+dropSuffix); err != nil {
			t.Errorf("drop %s %s: %v", what, name, err)
		}
	})
	return name
}

// CreateDatabase creates a database with a random name on the server of
// dsn (a postgres:// URL) and drops it, with every connection still open
// to it, when the test ends; it returns the DSN of the new database. For
// tests that need a database of their own: its statistics
// (pg_stat_database) count only their work.
func CreateDatabase(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL to create a database beside it", PostgresDSNEnv)
	}
	name := createTemporary(t, dsn, "DATABASE", " WITH (FORCE)")
	u.Path = "/" + name
	return u.String()
}

// WithSearchPath returns dsn (a URL or key=value string) with its
// search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Each runs f once per database as a subtest: "sqlite", and "postgres"
// (skipped, or failed when RequirePartsEnv is 1, without PostgresDSNEnv).
// open returns a fresh store of that database.
func Each(t *testing.T, f func(t *testing.T, open func(testing.TB) store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, OpenSQLite) })
	t.Run("postgres", func(t *testing.T) { f(t, OpenPostgres) })
}

// WithHostPort returns dsn (a URL or key=value string) connecting to
// hostport instead, as through a proxy.
func WithHostPort(dsn, hostport string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Host = hostport
			return u.String()
		}
	}
	host, port, _ := strings.Cut(hostport, ":")
	return dsn + " host=" + host + " port=" + port
}

// PostgresAddr returns the host:port of the database at dsn.
func PostgresAddr(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: cannot parse", PostgresDSNEnv)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

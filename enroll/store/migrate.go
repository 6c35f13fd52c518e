package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migrations are numbered, up-only SQL files, one directory per dialect:
// migrations/<dialect>/NNNN_what.sql. Each runs in its own transaction,
// which also records the new version in schema_version. Released files
// never change; a schema change is a new file, written for both dialects.
//
//go:embed migrations
var migrationFS embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the dialect's migrations in order; their numbers
// must run 1, 2, 3... without gaps.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %v", err)
	}
	var ms []migration
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %v", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	for i, m := range ms { // ReadDir sorts by name; numbers are zero-padded
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this binary brings, per dialect
// ("sqlite", "postgres"); a database at a higher version was written by a
// newer binary and is refused.
func SchemaVersion(dialect string) (int, error) {
	ms, err := loadMigrations(dialect)
	return len(ms), err
}

// ErrSchemaTooNew: the database was migrated by a newer totpserver.
var ErrSchemaTooNew = errors.New("database schema is newer than this totpserver")

// migrator is what a dialect adds to a migration transaction.
type migrator interface {
	dialect
	// lockMigrations runs first in every migration transaction, so
	// several servers starting at once migrate one after another.
	lockMigrations(ctx context.Context, tx *sql.Tx) error
}

// migrate brings the database to the binary's schema version, one
// transaction per migration, and refuses a database that is newer.
func migrate(ctx context.Context, db *sql.DB, d migrator) error {
	ms, err := loadMigrations(d.name())
	if err != nil {
		return err
	}
	for {
		done, err := migrateOne(ctx, db, d, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, if any, in one transaction; it
// reports whether the schema is up to date.
func migrateOne(ctx context.Context, db *sql.DB, d migrator, ms []migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %v", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := d.lockMigrations(ctx, tx); err != nil {
		return false, fmt.Errorf("migrate: lock: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return false, fmt.Errorf("migrate: %v", err)
	}
	var cur int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&cur); err {
	case nil, sql.ErrNoRows:
	default:
		return false, fmt.Errorf("migrate: read schema version: %v", err)
	}
	if cur > len(ms) {
		return false, fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade totpserver",
			ErrSchemaTooNew, cur, len(ms))
	}
	if cur == len(ms) {
		return true, tx.Commit()
	}
	m := ms[cur]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %v", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return false, fmt.Errorf("migration %s: %v", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_version (version) VALUES (?)`), m.version); err != nil {
		return false, fmt.Errorf("migration %s: %v", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %v", m.name, err)
	}
	return false, nil
}

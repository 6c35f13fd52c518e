package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

type postgresDialect struct{}

func (postgresDialect) name() string           { return "postgres" }
func (postgresDialect) rebind(q string) string { return rebindDollar(q) }
func (postgresDialect) ilike() string          { return "ILIKE" }

func (postgresDialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func (postgresDialect) isUnique(err error) bool     { return pgCode(err) == "23505" }
func (postgresDialect) isForeignKey(err error) bool { return pgCode(err) == "23503" }

// migrationLockKey is the advisory lock that serialises migrations of
// several servers sharing one database.
const migrationLockKey = 0x746f7470626f78 // "totpbox"

func (postgresDialect) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey))
	return err
}

// OpenPostgres connects to the PostgreSQL database named by dsn (a URL or
// key=value string as libpq takes; pool_max_conns sets the pool size,
// default max(16, 4 × GOMAXPROCS)) and migrates it. Tables go in the first schema of
// the search path, which the DSN may set (search_path=...). Several
// servers may share the database; migrations take an advisory lock, and
// the store implements Notices so they can tell each other of changes.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, errors.New("open postgres: cannot parse the DSN")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// More connections than pgx's default (max(4, CPUs)) let more
		// commits share one WAL flush when many verifies run at once.
		cfg.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0)))
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetConnMaxLifetime(cfg.MaxConnLifetime)
	db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %v", where, err)
	}
	if err := migrate(ctx, db, postgresDialect{}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	p := newPool(db, postgresDialect{}, false)
	s := &sqlStore{d: postgresDialect{}, w: p, r: p}
	schema, err := currentSchema(ctx, s)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: schema: %v", where, err)
	}
	return &pgStore{sqlStore: s, conn: cfg.ConnConfig.Copy(), channel: noticeChannel(schema)}, nil
}

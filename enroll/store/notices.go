package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Notices is implemented by stores that several server replicas share
// (PostgreSQL): one replica's notice reaches every replica listening on
// the same database and schema, through LISTEN/NOTIFY. SQLite, whose
// file only one server opens, does not implement it; callers test for it
// with a type assertion.
type Notices interface {
	// Notify sends payload (at most 7999 bytes) to every listener,
	// including those of this process.
	Notify(ctx context.Context, payload string) error
	// Listen opens a connection of its own, calls listening once it
	// receives notices, then fn with each notice's payload, in order, until
	// ctx is done or the connection fails: it returns the error. Notices
	// sent while no Listen is running are lost; callers re-read what they
	// cache after Listen starts again.
	Listen(ctx context.Context, listening func(), fn func(payload string)) error
}

// pgStore is the PostgreSQL store: the SQL store and its notices.
type pgStore struct {
	*sqlStore
	conn    *pgx.ConnConfig
	channel string
}

var _ Notices = (*pgStore)(nil)

// noticeChannel names the channel of the store's schema: notices are
// database-wide, and databases shared by several schemas (tests, or
// several deployments) must not hear each other.
func noticeChannel(schema string) string { return "totpbox:" + schema }

func (s *pgStore) Notify(ctx context.Context, payload string) error {
	if len(payload) >= 8000 {
		return fmt.Errorf("notify: payload of %d bytes is over 7999", len(payload))
	}
	_, err := s.w.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, s.channel, payload)
	return err
}

func (s *pgStore) Listen(ctx context.Context, listening func(), fn func(payload string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.conn)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("listen: %w", err)
		}
		fn(n.Payload)
	}
}

// currentSchema returns the schema tables are created in.
func currentSchema(ctx context.Context, s *sqlStore) (string, error) {
	var schema string
	err := s.r.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema)
	if err == nil && schema == "" {
		err = errors.New("no schema on the search path")
	}
	return schema, err
}

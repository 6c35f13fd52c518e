package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SQLiteFile is the name of the SQLite database in the data directory.
const SQLiteFile = "totpserver.db"

// Open returns the server's store: PostgreSQL at dsn when dsn is not
// empty, else SQLite in dataDir/totpserver.db, creating dataDir (mode
// 0700) when missing.
func Open(ctx context.Context, dataDir, dsn string) (Store, error) {
	if dsn != "" {
		return OpenPostgres(ctx, dsn)
	}
	if dataDir == "" {
		return nil, errors.New("open store: no data directory and no PostgreSQL DSN")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %v", err)
	}
	return OpenSQLite(ctx, filepath.Join(dataDir, SQLiteFile))
}

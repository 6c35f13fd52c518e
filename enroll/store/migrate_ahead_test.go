package store_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store/storetest"

	_ "modernc.org/sqlite"
)

// TestAheadStepsMigration: migration 0014 turns each device's old range
// of steps used ahead into the list of those steps, every one, so no
// code used ahead is accepted again after the upgrade (issue 22, item 4).
func TestAheadStepsMigration(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var db *sql.DB
			var err error
			if dialect == "sqlite" {
				db, err = sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
			} else {
				db, err = sql.Open("pgx", storetest.PostgresDSN(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			table := "mfa_devices"
			if dialect == "postgres" {
				schema := fmt.Sprintf("m%d", time.Now().UnixNano())
				for _, q := range []string{"CREATE SCHEMA " + schema, "SET search_path TO " + schema} {
					if _, err := db.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
			}
			for _, q := range []string{
				`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, ahead_from BIGINT NOT NULL DEFAULT 0, ahead_to BIGINT NOT NULL DEFAULT 0)`,
				`INSERT INTO ` + table + ` (id, ahead_from, ahead_to) VALUES (1, 0, 0), (2, 100, 103), (3, 7, 7)`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			up, err := os.ReadFile(filepath.Join("migrations", dialect, "0014_ahead_steps.sql"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(string(up)); err != nil {
				t.Fatalf("migration 0014: %v", err)
			}
			want := map[int]string{1: "", 2: ",100,101,102,103,", 3: ",7,"}
			rows, err := db.Query(`SELECT id, ahead_steps FROM ` + table)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id int
				var got string
				if err := rows.Scan(&id, &got); err != nil {
					t.Fatal(err)
				}
				if got != want[id] {
					t.Errorf("device %d: ahead_steps %q, want %q", id, got, want[id])
				}
				delete(want, id)
			}
			if len(want) != 0 {
				t.Errorf("devices missing after the migration: %v", want)
			}
		})
	}
}

package vault

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
)

var writeFixture = flag.Bool("write-fixture", false, "write testdata/v1 from the current code (only to start a new format version)")

// fixtureAccounts are the accounts testdata/v1 holds. The key there is a
// test key, used nowhere else.
func fixtureAccounts() []Account {
	return []Account{
		{Issuer: "ACME", Label: "ACME prod", Key: enroll.Key{Issuer: "ACME", Account: "alice", Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}, State: Active},
		{Issuer: "Corp", Key: enroll.Key{Issuer: "Corp", Account: "bob", Secret: []byte("abcdefghijabcdefghijabcdefghij12"), Algorithm: enroll.SHA256, Digits: 8, Period: 60 * time.Second}, State: Pending, Source: "device-7f3a"},
	}
}

// TestOpensVersion1Fixture opens a vault written by format version 1 and
// checked in: a later change to the format must keep reading it (or move
// to a new version with a migration), never lose the accounts in it.
func TestOpensVersion1Fixture(t *testing.T) {
	src := filepath.Join("testdata", "v1")
	if *writeFixture {
		os.RemoveAll(src)
		v, err := Open(src, Config{Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range fixtureAccounts() {
			if _, err := v.Add(a); err != nil {
				t.Fatal(err)
			}
		}
		v.Close()
		os.Remove(filepath.Join(src, "vault.lock"))
	}
	// Work on a copy: opening takes a lock and tightens permissions.
	dir := t.TempDir()
	for _, name := range []string{VaultFileName, KeyFileName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatalf("fixture: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v, err := Open(dir, Config{})
	if err != nil {
		t.Fatalf("Open(version 1 vault) = %v", err)
	}
	defer v.Close()
	got := v.List()
	want := fixtureAccounts()
	if len(got) != len(want) {
		t.Fatalf("fixture holds %d accounts, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Issuer != w.Issuer || g.Label != w.Label || g.State != w.State || g.Key.URI() != w.Key.URI() ||
			(w.Source != "" && g.Source != w.Source) || g.Created.IsZero() {
			t.Errorf("fixture account %d = %v, want %v", i, g, w)
		}
	}
}

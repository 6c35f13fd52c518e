package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

// run runs totpserver with args and returns its error and output.
func run(t *testing.T, args ...string) (error, string) {
	t.Helper()
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return err, out.String()
}

func TestCommandsRefuseDataWithoutDatabase(t *testing.T) {
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	for _, args := range [][]string{
		{"token", "list"},
		{"token", "create", "ci"},
		{"token", "revoke", "ci"},
		{"admin", "create", "--username", "root"},
		{"serve", "--listen", "127.0.0.1:0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for _, exists := range []bool{false, true} {
				data := filepath.Join(t.TempDir(), "mistyped")
				if exists {
					os.Mkdir(data, 0o700)
				}
				err, _ := run(t, append(args, "--data", data)...)
				want := "no database at " + filepath.Join(data, store.SQLiteFile)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("%v with --data %s (exists %v) = %v, want %q", args, data, exists, err, want)
				}
				entries, _ := os.ReadDir(data)
				if _, err := os.Stat(data); exists != (err == nil) || len(entries) > 0 {
					t.Fatalf("%v touched %s: %v", args, data, entries)
				}
			}
		})
	}
}

func TestServeValidatesBeforeTouchingDisk(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new")
	err, _ := run(t, "serve", "--data", data, "--listen", "127.0.0.1:99999")
	if err == nil || !strings.Contains(err.Error(), `listen "127.0.0.1:99999" has port 99999, outside 0..65535`) {
		t.Fatalf("serve --listen 127.0.0.1:99999 = %v", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("serve with a bad listen address created %s", data)
	}
}

// TestStartRefusesMissingMasterKey restores a database without its
// master key, or points at the wrong key: init and serve refuse, naming
// the key id and where keys were looked for, and create no key.
func TestStartRefusesMissingMasterKey(t *testing.T) {
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	data := t.TempDir()
	if err, out := run(t, "init", "--data", data); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	keyFile := filepath.Join(data, "master.key")
	sealer, err := store.LoadSealer(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), data, "")
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "mia"}
	if err := st.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	d := store.Device{UserID: u.ID, Name: "token", Kind: store.KindAuthenticatorApp, Status: store.StatusActive, Algorithm: "SHA1", Digits: 6, PeriodSec: 30}
	if err := sealer.SealDevice(&d, []byte("12345678901234567890")); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(t.Context(), &d); err != nil {
		t.Fatal(err)
	}
	st.Close()
	id := sealer.PrimaryKeyID()

	other := filepath.Join(t.TempDir(), "other.key")
	if err := store.NewKeyFile(other); err != nil {
		t.Fatal(err)
	}
	os.Rename(keyFile, keyFile+".saved")
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"serve, key file lost", []string{"serve", "--listen", "127.0.0.1:0"}, "", "master key " + id + " is missing: key file " + keyFile + " does not exist"},
		{"init, key file lost", []string{"init"}, "", "master key " + id + " is missing: key file " + keyFile + " does not exist"},
		{"serve, wrong key file", []string{"serve", "--listen", "127.0.0.1:0"}, other, "master key " + id + " is missing: the database holds secrets sealed with it, and key file " + other + " does not hold it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TOTPSERVER_MASTER_KEY_FILE", tt.env)
			err, _ := run(t, append(tt.args, "--data", data)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v = %v, want %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%v created a new master key", tt.args)
			}
		})
	}
}

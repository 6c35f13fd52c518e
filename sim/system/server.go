package system

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/serve"
	"github.com/totpbox/totpbox/enroll/store"
)

// AdminUser is the console admin the simulator creates on first run.
const AdminUser = "admin"

// regServer is the registration server running in the simulator's
// process, assembled as totpserver assembles it (enroll/server/serve):
// SQLite in the data directory, on its own loopback listener.
type regServer struct {
	asm      *serve.Assembly
	store    store.Store
	srv      *server.Server
	password string // the admin's password, from the data directory
}

// startServer opens (or creates) the server's state under dir and its
// listener on addr.
func startServer(ctx context.Context, dir, addr string, log *slog.Logger) (*regServer, error) {
	c := serve.Defaults()
	c.Data, c.Listen = dir, addr
	// The key beside the database: a new one only for a database holding
	// no sealed secrets.
	c.MasterKeyFile = filepath.Join(dir, "master.key")
	asm, err := serve.Assemble(ctx, c, serve.Options{Logger: log.With("part", "server"), Create: true})
	if err != nil {
		if le, ok := errors.AsType[*serve.ListenError](err); ok {
			return nil, &ListenError{Part: PartServer, Addr: addr, Err: le.Err}
		}
		return nil, err
	}
	rs := &regServer{asm: asm, store: asm.Store(), srv: asm.Server()}
	if rs.password, err = ensureAdmin(ctx, rs.store, filepath.Join(dir, "admin-password")); err != nil {
		asm.Close()
		return nil, err
	}
	return rs, nil
}

// ensureAdmin creates the admin with a random password on first run and
// keeps the password in a 0600 file, so every later run can print it.
func ensureAdmin(ctx context.Context, st store.Store, pwFile string) (string, error) {
	if b, err := os.ReadFile(pwFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if _, err := st.UserByName(ctx, AdminUser); err == nil {
		return "", fmt.Errorf("the simulator's admin exists but %s is missing; set a password with totpserver, or remove the data directory", pwFile)
	}
	pw := rand.Text()[:16]
	if _, err := core.CreateAdmin(ctx, st, AdminUser, pw); err != nil {
		return "", err
	}
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

// URL returns the server's base URL.
func (rs *regServer) URL() string { return rs.asm.URL() }

// run serves until ctx is done, then shuts the server down in order and
// closes its store.
func (rs *regServer) run(ctx context.Context) error { return rs.asm.Run(ctx) }

package system

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/store"
)

// AdminUser is the console admin the simulator creates on first run.
const AdminUser = "admin"

// regServer is the registration server running in the simulator's
// process: SQLite in the data directory, on its own loopback listener.
type regServer struct {
	store    store.Store
	srv      *server.Server
	ln       net.Listener
	password string // the admin's password, from the data directory
}

// startServer opens (or creates) the server's state under dir and its
// listener on addr.
func startServer(ctx context.Context, dir, addr string, log *slog.Logger) (*regServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server data: %w", err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "totpserver.db"))
	if err != nil {
		return nil, err
	}
	// A new key only for a database holding no sealed secrets.
	sealer, err := store.LoadSealerFor(ctx, st, filepath.Join(dir, "master.key"), "")
	if err != nil {
		st.Close()
		return nil, err
	}
	rs := &regServer{store: st}
	if rs.password, err = ensureAdmin(ctx, st, filepath.Join(dir, "admin-password")); err != nil {
		st.Close()
		return nil, err
	}
	rs.srv, err = server.New(server.Config{Store: st, Sealer: sealer, Logger: log.With("part", "server")})
	if err != nil {
		st.Close()
		return nil, err
	}
	if rs.ln, err = net.Listen("tcp", addr); err != nil {
		st.Close()
		return nil, &ListenError{Part: PartServer, Addr: addr, Err: err}
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
func (rs *regServer) URL() string { return "http://" + rs.ln.Addr().String() }

// run serves until ctx is done.
func (rs *regServer) run(ctx context.Context) error {
	hs := &http.Server{Handler: rs.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go rs.srv.Run(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		hs.Close() // long-polls
	}()
	err := hs.Serve(rs.ln)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, rs.store.Close())
}

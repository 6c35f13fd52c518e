// Package serve assembles a running registration server from its
// configuration, in one place, as device/daemon assembles an appliance:
// config → master key → store → server (enroll/server) → listeners (HTTP,
// metrics, RADIUS) → http.Server timeouts → cancelling held long-polls →
// an ordered shutdown that flushes everything the server holds in memory.
// totpserver and the simulator (sim/system) both run the server through it.
//
//	a, err := serve.Assemble(ctx, cfg, serve.Options{})
//	...
//	err = a.Run(ctx) // until ctx ends; then shuts down in order
package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/server/directory"
	"github.com/totpbox/totpbox/enroll/server/events/syslog"
	"github.com/totpbox/totpbox/enroll/server/oidc"
	"github.com/totpbox/totpbox/enroll/server/scim"
	"github.com/totpbox/totpbox/enroll/store"
)

// Options are what a caller of Assemble adds to the configuration.
type Options struct {
	// Logger receives the server's logs; nil means cfg.Logger().
	Logger *slog.Logger
	// Create creates the data directory and its SQLite database when
	// missing (totpserver init, the simulator). Without it a data
	// directory lacking its database is refused.
	Create bool
	// Clock tells the server the time; nil means the real clock.
	Clock server.Clock
	// PasswordChecks bounds concurrent sign-in password checks; zero is the
	// server's default.
	PasswordChecks int
}

// ListenError is an address the server could not listen on.
type ListenError struct {
	// Key is the configuration key naming the address: listen,
	// metrics.listen or radius.listen.
	Key  string
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return fmt.Sprintf("%s %s: %v", e.Key, e.Addr, e.Err) }

func (e *ListenError) Unwrap() error { return e.Err }

// Assembly is a registration server assembled and listening, not yet
// serving: Run serves it. Close releases it when Run is never called.
type Assembly struct {
	cfg   Config
	log   *slog.Logger
	store store.Store
	srv   *server.Server
	ln    net.Listener      // the main listener
	mln   net.Listener      // metrics.listen, or nil
	rpc   net.PacketConn    // radius.listen, or nil
	sync  *directory.Syncer // directory.ldap's sync, or nil
	oidc  *oidc.Provider    // oidc's relying party, or nil
}

// Assemble opens cfg's store and master key, builds the server and opens
// its listeners. It refuses to start when the store holds secrets sealed
// with a master key it cannot find, and closes what it opened when it
// fails.
func Assemble(ctx context.Context, cfg Config, opts Options) (_ *Assembly, err error) {
	log := opts.Logger
	if log == nil {
		log = cfg.Logger()
	}
	a := &Assembly{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.store, err = OpenStore(ctx, cfg, opts.Create); err != nil {
		return nil, err
	}
	sealer, err := cfg.LoadSealerFor(ctx, a.store)
	if err != nil {
		return nil, err
	}
	log.Info("master key", "from", cfg.KeySource().String())
	rc, err := cfg.radiusConfig()
	if err != nil {
		return nil, err
	}
	proxies, err := server.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	sl, err := cfg.syslogConfig()
	if err != nil {
		return nil, err
	}
	if sl != nil {
		host, _ := os.Hostname()
		sl.Header = syslog.Header{Hostname: host, ProcID: strconv.Itoa(os.Getpid())}
	}
	var ldap *directory.LDAP
	if cfg.Directory.LDAP.Enabled() {
		if ldap, err = directory.NewLDAP(cfg.Directory.LDAP); err != nil {
			return nil, err
		}
	}
	sc := server.Config{
		TrustedProxies:      proxies,
		Store:               a.store,
		Sealer:              sealer,
		Clock:               opts.Clock,
		Logger:              log,
		SecureCookies:       cfg.SecureCookies,
		RegistrationTimeout: cfg.RegistrationTimeout,
		LabelTemplate:       cfg.LabelTemplate,
		SessionLifetime:     cfg.SessionLifetime,
		ResyncWindow:        cfg.ResyncWindow,
		HOTPLookAhead:       cfg.HOTPLookAhead,
		HOTPResyncWindow:    cfg.HOTPResyncWindow,
		MaxDevicesPerUser:   cfg.MaxDevicesPerUser,
		CacheTTL:            cfg.CacheTTL,
		JanitorInterval:     cfg.JanitorInterval,
		PasswordChecks:      opts.PasswordChecks,
		Limits:              cfg.limits(),
		Passwords:           cfg.passwords(),
		Appliance:           cfg.applianceConfig(),
		RADIUS:              rc,
		Syslog:              sl,
		Webhooks:            server.Webhooks{AllowPrivateTargets: cfg.Webhooks.AllowPrivateTargets},
		SCIM:                scim.Config{UsersGroup: cfg.Directory.SCIM.UsersGroup, AdminsGroup: cfg.Directory.SCIM.AdminsGroup},
	}
	if cfg.OIDC.Enabled() {
		// Discovery runs in the background and again while it fails: an
		// identity provider that is down does not stop the server, whose
		// local break-glass sign-in keeps working.
		if sc.OIDC, err = oidc.New(cfg.OIDC, oidc.Options{Logger: log}); err != nil {
			return nil, err
		}
		a.oidc = sc.OIDC
	}
	if ldap != nil {
		sc.Directory = ldap
		sc.DirectoryStatus = func() error { return a.sync.Status().Err }
	}
	if a.srv, err = server.New(sc); err != nil {
		return nil, err
	}
	if ldap != nil {
		a.sync = directory.NewSyncer(ldap, a.srv.Core(), a.store, log, leaseHolder(), cfg.Directory.LDAP.WithDefaults().SyncInterval)
		if err := a.srv.Core().RegisterMetrics(a.sync.Collectors()...); err != nil {
			return nil, err
		}
	}
	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, &ListenError{Key: "listen", Addr: cfg.Listen, Err: err}
	}
	if cfg.Metrics.Listen != "" {
		if a.mln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return nil, &ListenError{Key: "metrics.listen", Addr: cfg.Metrics.Listen, Err: err}
		}
	}
	if cfg.RADIUS.Listen != "" {
		if a.rpc, err = net.ListenPacket("udp", cfg.RADIUS.Listen); err != nil {
			return nil, &ListenError{Key: "radius.listen", Addr: cfg.RADIUS.Listen, Err: err}
		}
	}
	return a, nil
}

// OpenStore opens cfg's store; callers close it. Unless create is set, a
// data directory without its SQLite database is refused, naming the path:
// a missing or mistyped --data must not quietly create an empty database
// that no server uses. With create set (init) the data directory is made,
// mode 0700, whichever database is configured.
func OpenStore(ctx context.Context, cfg Config, create bool) (store.Store, error) {
	if !create && cfg.Database.DSN == "" && cfg.Data != "" {
		db := filepath.Join(cfg.Data, store.SQLiteFile)
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: check --data (or the config's data), or create it with: totpserver init --data %s", db, cfg.Data)
		}
	}
	if create && cfg.Data != "" {
		// The master key file lives in the data directory whichever
		// database holds the rest (store.Open creates it for SQLite).
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %v", err)
		}
	}
	return store.Open(ctx, cfg.Data, cfg.Database.DSN)
}

// Store returns the server's store, open until Run returns.
func (a *Assembly) Store() store.Store { return a.store }

// Server returns the assembled server.
func (a *Assembly) Server() *server.Server { return a.srv }

// URL returns the main listener's base URL, http:// or https://.
func (a *Assembly) URL() string {
	scheme := "http"
	if a.cfg.TLS.Cert != "" {
		scheme = "https"
	}
	return scheme + "://" + a.ln.Addr().String()
}

// MetricsAddr returns the metrics listener's address, or "" without one.
func (a *Assembly) MetricsAddr() string {
	if a.mln == nil {
		return ""
	}
	return a.mln.Addr().String()
}

// RADIUSAddr returns the RADIUS listener's address, or "" without one.
func (a *Assembly) RADIUSAddr() string {
	if a.rpc == nil {
		return ""
	}
	return a.rpc.LocalAddr().String()
}

// Close closes the listeners and the store of an assembly that Run never
// served.
func (a *Assembly) Close() error {
	for _, c := range []interface{ Close() error }{a.ln, a.mln, a.rpc} {
		if c != nil {
			c.Close()
		}
	}
	if a.store != nil {
		return a.store.Close()
	}
	return nil
}

// ShutdownGrace is how long requests in flight may finish at shutdown
// before their contexts are cancelled (held long-polls among them).
const ShutdownGrace = 2 * time.Second

// shutdownTimeout bounds the whole of the listeners' shutdown.
const shutdownTimeout = 10 * time.Second

// Run serves until ctx ends or a listener fails, then shuts down in
// order: the listeners stop taking requests and those in flight finish
// (held long-polls are cancelled after ShutdownGrace), the RADIUS
// listener answers what it holds, the janitor stops and the server
// flushes what it holds in memory (verify counts, refused sign-ins) to
// the store, and last the store is closed. It returns the listener's
// failure, or nil after ctx ended.
func (a *Assembly) Run(ctx context.Context) error {
	log := a.log
	if n, err := a.store.CountAdmins(ctx); err == nil && n == 0 {
		log.Warn("no admin yet; create one with: totpserver admin create --data " + a.cfg.Data + " --username NAME")
	}
	// Requests' contexts end shortly after shutdown begins, so held
	// long-polls return instead of holding the shutdown for a minute.
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	hs := httpServer(reqCtx, a.srv.Handler(), log, proto.MaxWait+30*time.Second)
	errc := make(chan error, 3)

	janitorCtx, stopJanitor := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJanitor()
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		a.srv.Run(janitorCtx)
	}()
	var syncDone sync.WaitGroup
	if a.oidc != nil {
		syncDone.Go(func() { a.oidc.Run(janitorCtx) })
	}
	if a.sync != nil {
		log.Info("directory sync", "source", a.cfg.Directory.LDAP.URL, "every", a.cfg.Directory.LDAP.WithDefaults().SyncInterval)
		syncDone.Go(func() { a.sync.Run(janitorCtx) })
	}

	var ms *http.Server
	if a.mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.srv.MetricsHandler())
		mux.Handle("GET /healthz", a.srv.Handler())
		mux.Handle("GET /readyz", a.srv.Handler())
		ms = httpServer(context.Background(), mux, log, 30*time.Second)
		log.Info("metrics listening", "url", "http://"+a.mln.Addr().String()+"/metrics")
		go func() { errc <- ms.Serve(a.mln) }()
	}

	radiusCtx, stopRADIUS := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRADIUS()
	var radiusDone sync.WaitGroup
	if a.rpc != nil {
		log.Info("RADIUS listening", "addr", a.rpc.LocalAddr().String(), "clients", len(a.cfg.RADIUS.Clients))
		radiusDone.Go(func() {
			defer a.rpc.Close()
			if err := a.srv.ServeRADIUS(radiusCtx, a.rpc); err != nil {
				errc <- fmt.Errorf("radius: %w", err)
			}
		})
	}

	log.Info("totpserver listening", "url", a.URL(), "store", a.storeName())
	go func() {
		if a.cfg.TLS.Cert != "" {
			errc <- hs.ServeTLS(a.ln, a.cfg.TLS.Cert, a.cfg.TLS.Key)
			return
		}
		errc <- hs.Serve(a.ln)
	}()

	var failed error
	select {
	case failed = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down")

	// 1. The listeners: no new request; those in flight finish, held
	// long-polls are cancelled after the grace.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	grace := time.AfterFunc(ShutdownGrace, endRequests)
	defer grace.Stop()
	if ms != nil {
		ms.Shutdown(sctx)
	}
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) && failed == nil {
		failed = err
	}
	// 2. RADIUS answers what it holds.
	stopRADIUS()
	radiusDone.Wait()
	// 3. The janitor stops; its last act flushes the verify counts and the
	// refused sign-ins of the last minute into the store.
	stopJanitor()
	<-janitorDone
	syncDone.Wait()
	// 4. The store.
	if err := a.store.Close(); err != nil && failed == nil {
		failed = err
	}
	if errors.Is(failed, http.ErrServerClosed) {
		failed = nil
	}
	return failed
}

// httpServer is an HTTP server for h whose requests' contexts derive from
// reqCtx; write is its write timeout (the main listener's covers
// appliances' long-polls, held up to proto.MaxWait).
func httpServer(reqCtx context.Context, h http.Handler, log *slog.Logger, write time.Duration) *http.Server {
	return &http.Server{
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      write,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func (a *Assembly) storeName() string {
	if a.cfg.Database.DSN != "" {
		return "postgresql"
	}
	return "sqlite"
}

// leaseHolder names this process for the leases replicas share: host
// and process id.
func leaseHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// DirectorySync builds what `totpserver directory sync` needs without
// listening: the store, the master key, the server's core and the sync
// of directory.ldap. close releases the store.
func DirectorySync(ctx context.Context, cfg Config, log *slog.Logger) (_ *directory.Syncer, close func() error, err error) {
	if !cfg.Directory.LDAP.Enabled() {
		return nil, nil, errors.New("directory.ldap.url is not set: no directory is configured")
	}
	ldap, err := directory.NewLDAP(cfg.Directory.LDAP)
	if err != nil {
		return nil, nil, err
	}
	st, err := OpenStore(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	sealer, err := cfg.LoadSealerFor(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	srv, err := server.New(server.Config{Store: st, Sealer: sealer, Logger: log, Directory: ldap,
		Limits: cfg.limits(), Appliance: cfg.applianceConfig()})
	if err != nil {
		return nil, nil, err
	}
	return directory.NewSyncer(ldap, srv.Core(), st, log, leaseHolder(), cfg.Directory.LDAP.WithDefaults().SyncInterval), st.Close, nil
}

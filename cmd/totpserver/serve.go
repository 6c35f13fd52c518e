package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server"
	"github.com/totpbox/totpbox/enroll/store"
)

func serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (on a data directory made by init)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return serve(cmd, c)
		},
	}
	cmd.Flags().String("listen", "", "address to listen on (overrides the config's listen)")
	return cmd
}

// serve runs the server until SIGINT or SIGTERM: open the store and the
// sealer, build the server, listen, serve (and the metrics listener), and
// shut down gracefully.
func serve(cmd *cobra.Command, c config) error {
	log := c.logger()
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := openStore(ctx, c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := newServer(ctx, c, st, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	// Requests' contexts end shortly after shutdown begins, so held
	// long-polls return instead of holding the shutdown for a minute.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	hs := httpServer(reqCtx, srv.Handler(), log)
	go srv.Run(ctx)
	errc := make(chan error, 3)
	ms, err := serveMetrics(c, srv, log, errc)
	if err != nil {
		ln.Close()
		return err
	}
	radiusDone, err := serveRADIUS(ctx, c, srv, log, errc)
	if err != nil {
		ln.Close()
		return err
	}
	go func() { errc <- serveMain(c, hs, ln, log) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err = shutdown(hs, ms, endRequests, log)
	<-radiusDone
	return err
}

// serveRADIUS starts the RADIUS listener when radius.listen is set,
// sending a failure to errc. The channel it returns is closed once the
// listener has stopped after ctx ended (at once when there is none).
func serveRADIUS(ctx context.Context, c config, srv *server.Server, log *slog.Logger, errc chan<- error) (<-chan struct{}, error) {
	done := make(chan struct{})
	if c.RADIUS.Listen == "" {
		close(done)
		return done, nil
	}
	pc, err := net.ListenPacket("udp", c.RADIUS.Listen)
	if err != nil {
		return nil, fmt.Errorf("radius.listen: %w", err)
	}
	log.Info("RADIUS listening", "addr", pc.LocalAddr().String(), "clients", len(c.RADIUS.Clients))
	go func() {
		defer close(done)
		defer pc.Close()
		if err := srv.ServeRADIUS(ctx, pc); err != nil {
			errc <- err
		}
	}()
	return done, nil
}

// newServer loads the sealer and builds the server on st with c's
// settings, warning when there is no admin yet. It refuses to start when
// the store holds secrets sealed with a master key the sealer lacks.
func newServer(ctx context.Context, c config, st store.Store, log *slog.Logger) (*server.Server, error) {
	sealer, err := c.loadSealerFor(ctx, st)
	if err != nil {
		return nil, err
	}
	log.Info("master key", "from", c.masterKey().String())
	rc, err := c.radiusConfig()
	if err != nil {
		return nil, err
	}
	if n, err := st.CountAdmins(ctx); err == nil && n == 0 {
		log.Warn("no admin yet; create one with: totpserver admin create --data " + c.Data + " --username NAME")
	}
	proxies, err := server.ParseTrustedProxies(c.TrustedProxies)
	if err != nil {
		return nil, err
	}
	return server.New(server.Config{
		TrustedProxies:      proxies,
		Store:               st,
		Sealer:              sealer,
		Logger:              log,
		SecureCookies:       c.SecureCookies,
		RegistrationTimeout: c.RegistrationTimeout,
		LabelTemplate:       c.LabelTemplate,
		SessionLifetime:     c.SessionLifetime,
		ResyncWindow:        c.ResyncWindow,
		MaxDevicesPerUser:   c.MaxDevicesPerUser,
		CacheTTL:            c.CacheTTL,
		JanitorInterval:     c.JanitorInterval,
		Limits:              c.limits(),
		Appliance:           c.applianceConfig(),
		RADIUS:              rc,
	})
}

// httpServer is the main listener's HTTP server for h; requests' contexts
// derive from reqCtx.
func httpServer(reqCtx context.Context, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Appliances' long-polls are held up to proto.MaxWait.
		WriteTimeout: proto.MaxWait + 30*time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveMetrics starts the metrics listener when metrics.listen is set,
// sending its end to errc; it returns nil when there is none.
func serveMetrics(c config, srv *server.Server, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	if c.Metrics.Listen == "" {
		return nil, nil
	}
	mln, err := net.Listen("tcp", c.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.MetricsHandler())
	mux.Handle("GET /healthz", srv.Handler())
	mux.Handle("GET /readyz", srv.Handler())
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		log.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		errc <- ms.Serve(mln)
	}()
	return ms, nil
}

// serveMain serves hs on ln, over TLS when c has a certificate.
func serveMain(c config, hs *http.Server, ln net.Listener, log *slog.Logger) error {
	scheme := "http"
	if c.TLS.Cert != "" {
		scheme = "https"
	}
	log.Info("totpserver listening", "url", scheme+"://"+ln.Addr().String(), "store", storeName(c))
	if c.TLS.Cert != "" {
		return hs.ServeTLS(ln, c.TLS.Cert, c.TLS.Key)
	}
	return hs.Serve(ln)
}

// shutdown stops the listeners, letting requests in flight finish for
// shutdownGrace before endRequests cancels them.
func shutdown(hs, ms *http.Server, endRequests func(), log *slog.Logger) error {
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	grace := time.AfterFunc(shutdownGrace, endRequests)
	defer grace.Stop()
	if ms != nil {
		ms.Shutdown(sctx)
	}
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdownGrace is how long requests in flight may finish at shutdown
// before their contexts are cancelled.
const shutdownGrace = 2 * time.Second

func storeName(c config) string {
	if c.Database.DSN != "" {
		return "postgresql"
	}
	return "sqlite"
}

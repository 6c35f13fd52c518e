// Package radius is totpserver's RADIUS listener (RFC 2865 over UDP): VPN
// concentrators, Wi-Fi controllers, jump hosts and PAM (pam_radius_auth)
// ask it whether a user's code is right. It is a thin layer over the core:
// every code is checked by core.Verify, the operation behind
// /api/v1/verify, with its replay protection, lockout, limits and audit.
//
// Each RADIUS client (NAS) is known by its address range and shared
// secret; requests from other addresses are dropped and counted. Requests
// must carry a Message-Authenticator (RFC 3579) unless the client is
// allowed to omit it, and every reply carries one. A retransmitted
// request (same source, identifier and authenticator) is answered from a
// reply cache and never verified twice.
//
// A client signs users in in one of two modes: ModeCode, where
// User-Password is the code, or ModePasswordCode, where it is the user's
// password followed by the code, or the password alone, which is answered
// with an Access-Challenge whose State the code then comes back with.
package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"layeh.com/radius"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/ratelimit"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// Mode is how a client's users sign in.
type Mode string

// Sign-in modes.
const (
	// ModeCode: User-Password is the 6- or 8-digit code.
	ModeCode Mode = "code"
	// ModePasswordCode: User-Password is the user's password followed by
	// the code, or the password alone, answered with an Access-Challenge
	// for the code.
	ModePasswordCode Mode = "password+code"
)

// Rate is a token-bucket limit: Burst events at once, refilled at
// PerSecond; a negative PerSecond means no limit.
type Rate = ratelimit.Rate

// Client is a RADIUS client (a NAS) allowed to ask.
type Client struct {
	// Name names the client in audit rows, logs and metrics; the CIDR
	// when empty.
	Name string
	// Prefix is the range of source addresses the client sends from.
	Prefix netip.Prefix
	// Secret is the shared secret. It is never logged.
	Secret []byte
	// Mode is how its users sign in.
	Mode Mode
	// TrustStationID takes the end user's address, for the per-address
	// limit and the audit log, from the request's Framed-IP-Address or
	// Calling-Station-Id (when it is an IP address). When false the NAS's
	// own address is used: only trust a NAS that fills them in honestly.
	TrustStationID bool
	// AllowMissingMessageAuthenticator accepts requests without a
	// Message-Authenticator, for clients that cannot send one (such as
	// pam_radius_auth before 3.0). A Message-Authenticator that is present
	// is always checked.
	AllowMissingMessageAuthenticator bool
}

// Config configures a Server. Core and at least one client are required.
type Config struct {
	// Core checks codes and passwords and records audit events.
	Core *core.Core
	// Clients are the NASes allowed to ask; the first whose Prefix holds
	// a request's source address answers for it.
	Clients []Client
	// ChallengeTimeout is how long the code may take to follow the
	// password in ModePasswordCode's challenge; default 2 minutes.
	ChallengeTimeout time.Duration
	// ReplyCacheTTL is how long a reply is kept to answer retransmissions
	// of its request; default 30 seconds.
	ReplyCacheTTL time.Duration
	// PasswordPerUser limits password checks (ModePasswordCode) for one
	// username through one client (NAS): attempts through one NAS never
	// spend the user's budget on another. Guesses against one user are
	// bounded by the number of clients times this budget. Zero PerSecond
	// means no limit.
	PasswordPerUser Rate
	// PasswordPerIP limits password checks per end user address, for
	// clients with TrustStationID only: without it the address is the
	// NAS's, shared by all its users, and is not limited. Zero PerSecond
	// means no limit.
	PasswordPerIP Rate
	// Limits makes the per-user password limit (LimitPasswordUser),
	// shared by every replica on PostgreSQL; nil keeps it in this process.
	Limits ratelimit.Factory
	// Clock tells the time; nil means the real clock.
	Clock core.Clock
	// Logger receives the listener's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server answers Access-Requests. It is safe for concurrent use.
type Server struct {
	cfg     Config
	core    *core.Core
	clients []Client
	clock   core.Clock
	log     *slog.Logger
	metrics *metrics

	replies    *replyCache
	challenges *challenges
	pwUser     ratelimit.Limit
	pwIP       *ratelimit.Limiter
	rejects    rejects
	// hashing bounds concurrent password checks (argon2id, 19 MiB each).
	hashing chan struct{}
}

// New returns a server for cfg, or an error naming the bad field.
func New(cfg Config) (*Server, error) {
	if cfg.Core == nil {
		return nil, errors.New("radius: Config.Core is required")
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("radius: no clients: give at least one")
	}
	if cfg.ChallengeTimeout == 0 {
		cfg.ChallengeTimeout = 2 * time.Minute
	}
	if cfg.ReplyCacheTTL == 0 {
		cfg.ReplyCacheTTL = 30 * time.Second
	}
	if cfg.ChallengeTimeout < 0 || cfg.ReplyCacheTTL < 0 {
		return nil, fmt.Errorf("radius: ChallengeTimeout %v and ReplyCacheTTL %v must be positive", cfg.ChallengeTimeout, cfg.ReplyCacheTTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	noLimit := func(r Rate) Rate {
		if r.PerSecond == 0 {
			return Rate{PerSecond: -1}
		}
		return r
	}
	clients := make([]Client, len(cfg.Clients))
	names := map[string]bool{}
	for i, c := range cfg.Clients {
		if !c.Prefix.IsValid() {
			return nil, fmt.Errorf("radius: client %d: no cidr", i+1)
		}
		c.Prefix = c.Prefix.Masked()
		if c.Name == "" {
			c.Name = c.Prefix.String()
		}
		if names[c.Name] {
			return nil, fmt.Errorf("radius: client %d: name %q is used twice", i+1, c.Name)
		}
		names[c.Name] = true
		if len(c.Secret) == 0 {
			return nil, fmt.Errorf("radius: client %q: empty secret", c.Name)
		}
		if c.Mode != ModeCode && c.Mode != ModePasswordCode {
			return nil, fmt.Errorf("radius: client %q: mode %q is not %q or %q", c.Name, c.Mode, ModeCode, ModePasswordCode)
		}
		clients[i] = c
	}
	s := &Server{
		cfg:        cfg,
		core:       cfg.Core,
		clients:    clients,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		replies:    newReplyCache(cfg.ReplyCacheTTL),
		challenges: newChallenges(cfg.ChallengeTimeout),
		pwUser:     cfg.Limits.New(LimitPasswordUser, noLimit(cfg.PasswordPerUser)),
		pwIP:       ratelimit.New(noLimit(cfg.PasswordPerIP)),
		hashing:    make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	s.metrics = newMetrics(clients)
	if err := cfg.Core.RegisterMetrics(s.metrics.collectors()...); err != nil {
		return nil, fmt.Errorf("radius: metrics: %w", err)
	}
	return s, nil
}

// LimitPasswordUser names the per-user, per-client password limit for
// Config.Limits.
const LimitPasswordUser = "radius-password-user"

// Sweep is the listener's pass of the janitor: it forgets password-limit
// state that has refilled (so however many usernames were tried, none is
// held past its window) and writes the audit rows of the rejects of
// minutes that have ended.
func (s *Server) Sweep(ctx context.Context) {
	now := s.clock.Now()
	s.pwUser.Prune(now)
	s.pwIP.Prune(now)
	s.rejects.flush(ctx, s.core, now, false)
}

// FlushRejects writes the audit rows of the rejects still held, whatever
// their minute; Serve calls it as it returns.
func (s *Server) FlushRejects(ctx context.Context) {
	s.rejects.flush(ctx, s.core, s.clock.Now(), true)
}

// maxInFlight bounds the requests handled at once; the read loop waits
// (and the socket's buffer holds new requests) when they are all busy.
const maxInFlight = 256

// Serve answers requests arriving on pc until ctx ends, then stops
// reading, lets the requests in flight answer, and returns nil. It
// returns early with the error of a failed read. It does not close pc.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	// Last, once the requests in flight have answered.
	defer s.FlushRejects(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	// Requests in flight finish even when ctx ends: their NAS is waiting.
	hctx := context.WithoutCancel(ctx)
	busy := make(chan struct{}, maxInFlight)
	for {
		buf := make([]byte, radius.MaxPacketLength)
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("radius: %w", err)
		}
		busy <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-busy; wg.Done() }()
			s.handle(hctx, pc, buf[:n], addr)
		}()
	}
}

// ListenAndServe listens on UDP address addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	defer pc.Close()
	s.log.Info("RADIUS listening", "addr", pc.LocalAddr().String(), "clients", len(s.clients))
	return s.Serve(ctx, pc)
}

// client returns the client whose range holds ip, or nil.
func (s *Server) client(ip netip.Addr) *Client {
	for i := range s.clients {
		if s.clients[i].Prefix.Contains(ip) {
			return &s.clients[i]
		}
	}
	return nil
}

// ReadSecret reads a client's shared secret from file, or, when file is
// empty, from the systemd credential named credential (a file in
// $CREDENTIALS_DIRECTORY). Surrounding white space is dropped. Errors
// name the file, never the secret.
func ReadSecret(file, credential string) ([]byte, error) {
	path := file
	if path == "" {
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, fmt.Errorf("RADIUS secret: credential %q: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)", credential)
		}
		path = filepath.Join(dir, credential)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("RADIUS secret: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) == 0 {
		return nil, fmt.Errorf("RADIUS secret: %s is empty", path)
	}
	return secret, nil
}

// newState returns a random State for an Access-Challenge.
func newState() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// Package scim serves SCIM 2.0 provisioning (RFC 7643, RFC 7644) at
// /scim/v2, for identity providers such as Entra ID and Okta: Users and
// Groups, and the discovery endpoints. Users a client creates are
// directory users of source "scim" (core.ApplyDirectoryUser): active
// false, or leaving the mapped users group, disables them at once on every
// replica; a DELETE disables them and hides them from SCIM, never touching
// their MFA devices. Callers hold a bearer token of scope "scim"
// (`totpserver token create NAME --scope scim`); no other token reaches
// it.
package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// PathPrefix is where the SCIM service lives.
const PathPrefix = "/scim/v2"

// MaxBody bounds a request body; larger ones get a SCIM error, 413.
const MaxBody = 64 << 10

// SourceSCIM is the identity source of users a SCIM client provisions.
const SourceSCIM = core.SourceSCIM

// Store is what the SCIM service reads and keeps itself: its tokens, and
// the SCIM rows of users and groups. Users change through the core.
type Store interface {
	store.SCIM
	TokenByHash(ctx context.Context, hash []byte) (store.Token, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
	UserByName(ctx context.Context, username string) (store.User, error)
}

// Config configures the SCIM service. Core and Store are required.
type Config struct {
	// Core creates, updates and disables users.
	Core *core.Core
	// Store holds tokens and SCIM rows.
	Store Store
	// Clock tells the time; nil means the real clock.
	Clock core.Clock
	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
	// UsersGroup is the display name of the SCIM group whose members may
	// use totpbox; empty: every active user provisioned may.
	UsersGroup string
	// AdminsGroup is the display name of the SCIM group whose members are
	// admins; empty: admin rights are set in totpbox.
	AdminsGroup string
	// BaseURL, when set (https://host), makes meta.location absolute;
	// empty: locations are taken from the request's Host.
	BaseURL string
}

// Service serves /scim/v2. It is safe for concurrent use.
type Service struct {
	cfg   Config
	core  *core.Core
	store Store
	clock core.Clock
	log   *slog.Logger
}

// New returns the service for cfg, or an error naming what is missing.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Core == nil:
		return nil, errors.New("scim: Config.Core is required")
	case cfg.Store == nil:
		return nil, errors.New("scim: Config.Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Clock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Service{cfg: cfg, core: cfg.Core, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger}, nil
}

// Register adds the service's routes to mux, and a SCIM 404 for any
// other path under /scim/v2.
func (s *Service) Register(mux *http.ServeMux) {
	p := PathPrefix
	mux.HandleFunc("GET "+p+"/ServiceProviderConfig", s.auth(s.serviceProviderConfig))
	mux.HandleFunc("GET "+p+"/ResourceTypes", s.auth(s.resourceTypes))
	mux.HandleFunc("GET "+p+"/ResourceTypes/{name}", s.auth(s.resourceType))
	mux.HandleFunc("GET "+p+"/Schemas", s.auth(s.schemas))
	mux.HandleFunc("GET "+p+"/Schemas/{urn}", s.auth(s.schema))
	mux.HandleFunc("POST "+p+"/Users", s.auth(s.userCreate))
	mux.HandleFunc("GET "+p+"/Users", s.auth(s.userList))
	mux.HandleFunc("GET "+p+"/Users/{id}", s.auth(s.userGet))
	mux.HandleFunc("PUT "+p+"/Users/{id}", s.auth(s.userReplace))
	mux.HandleFunc("PATCH "+p+"/Users/{id}", s.auth(s.userPatch))
	mux.HandleFunc("DELETE "+p+"/Users/{id}", s.auth(s.userDelete))
	mux.HandleFunc("POST "+p+"/Groups", s.auth(s.groupCreate))
	mux.HandleFunc("GET "+p+"/Groups", s.auth(s.groupList))
	mux.HandleFunc("GET "+p+"/Groups/{id}", s.auth(s.groupGet))
	mux.HandleFunc("PUT "+p+"/Groups/{id}", s.auth(s.groupReplace))
	mux.HandleFunc("PATCH "+p+"/Groups/{id}", s.auth(s.groupPatch))
	mux.HandleFunc("DELETE "+p+"/Groups/{id}", s.auth(s.groupDelete))
	mux.HandleFunc(p+"/", s.auth(func(w http.ResponseWriter, r *http.Request, a core.Actor) error {
		return Errorf(http.StatusNotFound, "", "no SCIM endpoint %s %s", r.Method, r.URL.Path)
	}))
}

// handler is a SCIM endpoint: it writes its answer, or returns an error
// (an *Error, a core Failure, or any other, answered 500).
type handler func(w http.ResponseWriter, r *http.Request, a core.Actor) error

// Error is a SCIM error answer (RFC 7644 3.12).
type Error struct {
	Status int
	// Type is the scimType where RFC 7644 defines one (invalidFilter,
	// invalidPath, invalidValue, invalidSyntax, uniqueness, noTarget,
	// mutability, tooMany); empty otherwise.
	Type   string
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Errorf returns an *Error.
func Errorf(status int, scimType, format string, args ...any) error {
	return &Error{Status: status, Type: scimType, Detail: fmt.Sprintf(format, args...)}
}

// ErrorSchema is the schema of SCIM error answers.
const ErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
}

// WriteError answers with a SCIM error: status as a string, scimType when
// given, and detail.
func WriteError(w http.ResponseWriter, status int, scimType, detail string) {
	writeJSON(w, status, errorBody{Schemas: []string{ErrorSchema}, Status: fmt.Sprint(status), ScimType: scimType, Detail: detail})
}

// auth wraps h with bearer-token authentication: only a token of scope
// scim passes; any other valid token gets a plain 403.
func (s *Service) auth(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		value, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="totpserver"`)
			WriteError(w, http.StatusUnauthorized, "", "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		t, err := s.store.TokenByHash(r.Context(), core.HashToken(value))
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && t.Revoked:
			w.Header().Set("WWW-Authenticate", `Bearer realm="totpserver", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "", "invalid or revoked token")
			return
		case err != nil:
			s.fail(w, r, err)
			return
		case t.Scope != store.ScopeSCIM:
			http.Error(w, "forbidden: this token is not for SCIM; make one with totpserver token create NAME --scope scim", http.StatusForbidden)
			return
		}
		if now := s.clock.Now(); now.Sub(t.LastUsed) >= time.Minute {
			if err := s.store.TouchToken(r.Context(), t.ID, now.UTC()); err != nil {
				s.log.Error("touch token", "token", t.Name, "err", err)
			}
		}
		// Provisioning creates, disables and makes admins: it acts with
		// the admin role, whatever role the token carries elsewhere.
		if err := h(w, r, core.Actor{Name: "token:" + t.Name, IP: core.ClientIP(r), Role: core.RoleAdmin}); err != nil {
			s.fail(w, r, err)
		}
	}
}

// fail answers err as a SCIM error.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *Error
	if errors.As(err, &se) {
		WriteError(w, se.Status, se.Type, se.Detail)
		return
	}
	status, msg := core.Explain(err)
	if status >= http.StatusInternalServerError {
		s.log.Error("SCIM request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", core.RetryAfter)
	}
	scimType := ""
	switch status {
	case http.StatusConflict:
		// A name taken ("already exists", "already belongs to"); other
		// conflicts (the last admin) have no scimType of their own.
		if strings.Contains(msg, "already") {
			scimType = "uniqueness"
		}
	case http.StatusBadRequest:
		scimType = "invalidValue"
	}
	WriteError(w, status, scimType, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"schemas":["`+ErrorSchema+`"],"status":"500","detail":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/scim+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// base is the URL the service's locations start with.
func (s *Service) base(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL + PathPrefix
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + PathPrefix
}

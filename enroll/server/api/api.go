package api

import (
	"bytes"
	"github.com/totpbox/totpbox/enroll/server/core"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// maxBody bounds API request bodies.
const maxBody = 64 << 10

// apiHandler is an admin API endpoint; it returns the status and the value
// to encode, or an error.
type apiHandler func(w http.ResponseWriter, r *http.Request, a core.Actor) (int, any, error)

type apiError struct {
	Error string `json:"error"`
}

// api wraps h with bearer-token authentication, for tokens whose role
// may do op (core.Allow), and JSON encoding.
func (s *API) api(op core.Op, h apiHandler) http.HandlerFunc { return s.apiFor(roleFor(op), h) }

// adminToken allows admin API tokens: those without a scope. A SCIM
// token (scope scim) reaches only /scim/v2 and is refused here, 403.
func adminToken(t store.Token) error {
	if t.Scope != "" {
		return core.Fail(http.StatusForbidden, "this token has scope %s and reaches only /scim/v2, not the admin API", t.Scope)
	}
	return nil
}

// roleFor allows the admin API tokens (adminToken) whose role may do op;
// others get a 403 naming the role needed.
func roleFor(op core.Op) func(store.Token) error {
	return func(t store.Token) error {
		if err := adminToken(t); err != nil {
			return err
		}
		return core.Allow(core.Actor{Name: "token:" + t.Name, Role: tokenRole(t)}, op)
	}
}

// auditReader allows the tokens that may read the audit log: admin and
// auditor tokens.
var auditReader = roleFor(core.OpReadAudit)

// apiFor wraps h with bearer-token authentication, allowing the tokens
// allow accepts (a 403 naming why otherwise), and JSON encoding.
func (s *API) apiFor(allow func(store.Token) error, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		value, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok || strings.TrimSpace(value) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="totpserver"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"missing bearer token: send Authorization: Bearer <token>"})
			return
		}
		t, err := s.token(r.Context(), strings.TrimSpace(value))
		if err == nil {
			err = allow(t)
		}
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		status, v, err := h(w, r, tokenActor(r, t))
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
	}
}

// tokenActor is the actor behind a request made with token t.
func tokenActor(r *http.Request, t store.Token) core.Actor {
	return core.Actor{Name: "token:" + t.Name, IP: core.ClientIP(r), Role: tokenRole(t)}
}

// tokenRole is what token t may do: its role, admin for a token stored
// without one, none for a role this server does not know.
func tokenRole(t store.Token) core.Role {
	if t.Role == "" {
		return core.RoleAdmin
	}
	role, err := core.ParseRole(t.Role)
	if err != nil {
		return ""
	}
	return role
}

func (s *API) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := core.Explain(err)
	if status >= http.StatusInternalServerError {
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", core.RetryAfter)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="totpserver", error="invalid_token"`)
	}
	writeJSON(w, status, apiError{msg})
}

func (s *API) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decode reads one JSON object from the body into dst, refusing unknown
// fields, trailing data and bodies over maxBody, with a 400 naming the
// problem.
func decode(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return core.Fail(http.StatusUnsupportedMediaType, "Content-Type must be application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return core.Fail(http.StatusRequestEntityTooLarge, "request body is over %d bytes", maxBody)
		}
		return core.Fail(400, "request body could not be read: %v", err)
	}
	if len(body) > maxBody {
		return core.Fail(http.StatusRequestEntityTooLarge, "request body is over %d bytes", maxBody)
	}
	return decodeJSON(body, dst)
}

// decodeJSON decodes body, one JSON object, into dst, refusing unknown
// fields and trailing data.
func decodeJSON(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return core.Fail(400, "malformed JSON: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return core.Fail(400, "malformed JSON: data after the object")
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body, want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body ends in the middle of the object"
	case errors.As(err, &syn):
		return fmt.Sprintf("%v at byte %d", syn, syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("want a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// apiUser is a user as the API shows it.
type apiUser struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email,omitempty"`
	Admin       bool      `json:"admin"`
	Disabled    bool      `json:"disabled"`
	Created     time.Time `json:"created"`
}

func toAPIUser(u store.User) apiUser {
	return apiUser{Username: u.Username, DisplayName: u.DisplayName, Email: u.Email, Admin: u.Admin, Disabled: u.Disabled, Created: u.Created.UTC()}
}

// apiDevice is an MFA device as the API shows it: never its secret.
type apiDevice struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Type is "totp", or "hotp" for an event token (a hardware token).
	Type         string     `json:"type"`
	Status       string     `json:"status"`
	Algorithm    string     `json:"algorithm"`
	Digits       int        `json:"digits"`
	Period       int        `json:"period"`
	Created      time.Time  `json:"created"`
	Registered   *time.Time `json:"registered,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	LastUsed     *time.Time `json:"last_used,omitempty"`
	DriftSeconds int64      `json:"drift_seconds"`
	// FailCount is the failed codes that still count: one leaks away
	// a day; an accepted code does not clear them.
	FailCount int `json:"fail_count"`
	// LockedUntil is when a lock ends; LockedUntilUnlocked says the
	// lock lasts until an admin (or the user, in the portal) unlocks it,
	// and then LockedUntil is absent.
	LockedUntil         *time.Time `json:"locked_until,omitempty"`
	LockedUntilUnlocked bool       `json:"locked_until_unlocked"`
	// Lockouts is the lockout level: the whole lockout thresholds the
	// fail count held at its last failure; each doubles the next lock.
	Lockouts int `json:"lockouts"`
	// OutOfSync says the device was registered with a late code: resync
	// it (POST .../resync with two consecutive codes) to clear the mark.
	OutOfSync bool `json:"out_of_sync"`
	// State is the registration's state: pending, offered, accepted,
	// rejected or active (see docs/API.md).
	State string `json:"state,omitempty"`
	// Appliance names the appliance holding the account (it accepted
	// the offer); empty when none does.
	Appliance string `json:"appliance,omitempty"`
	// Offer is where the registration's latest offer to an appliance
	// stands, for a device sent to one.
	Offer *apiOfferState `json:"offer,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toAPIDevice(d store.Device, now time.Time) apiDevice {
	a := apiDevice{
		ID: d.ID, Name: d.Name, Kind: string(d.Kind), Type: "totp", Status: string(d.Status),
		Algorithm: d.Algorithm, Digits: d.Digits, Period: d.PeriodSec,
		Created: d.Created.UTC(), Registered: optTime(d.Registered), LastUsed: optTime(d.LastUsed),
		DriftSeconds: d.DriftSteps * int64(d.PeriodSec),
		Lockouts:     d.Lockouts, OutOfSync: d.OutOfSync,
	}
	if d.HOTP {
		a.Type, a.Period, a.DriftSeconds = "hotp", 0, 0
	}
	a.FailCount, _ = d.Failures(now, core.FailureLeak)
	if d.Status == store.StatusPending {
		a.ExpiresAt = optTime(d.ExpiresAt)
	}
	switch {
	case d.LockedIndefinitely():
		a.LockedUntilUnlocked = true
	case d.LockedUntil.After(now):
		a.LockedUntil = optTime(d.LockedUntil)
	}
	return a
}

// retryAfter sets Retry-After in whole seconds.
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(d.Seconds()))))
}

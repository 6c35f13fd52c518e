package appliance

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, proto.Error{Code: code, Message: msg})
}

// authenticate reads the body of r and checks its signature, without
// recording its nonce: the caller looks the key up first and records the
// nonce (fresh) only for a key the server knows, so requests signed by
// unknown keys never fill the replay cache or the nonce table. It writes
// the error response and returns ok false when the check fails.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (pub ed25519.PublicKey, body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, proto.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, proto.CodeBadRequest, fmt.Sprintf("request body is over %d bytes", proto.MaxBody))
		return nil, nil, false
	}
	now := a.clock.Now()
	pub, err = a.verifier.Check(r, body, now)
	if err != nil {
		if a.unauthLimited(w, r) {
			return nil, nil, false
		}
		a.refuse(w, r, err, now)
		return nil, nil, false
	}
	return pub, body, true
}

// fresh records the nonce of r, signed by pub, a key the server knows: in
// memory (this process) and in the store (across restarts and replicas).
// It writes the error response and returns false for a replay, a full
// replay cache or a store failure.
func (a *API) fresh(w http.ResponseWriter, r *http.Request, pub ed25519.PublicKey) bool {
	now := a.clock.Now()
	err := a.verifier.Remember(r, pub, now)
	if err == nil {
		err = a.useNonce(r, pub)
		if err != nil && !errors.Is(err, proto.ErrReplay) {
			a.internal(w, r, err)
			return false
		}
	}
	if err != nil {
		a.refuse(w, r, err, now)
		return false
	}
	return true
}

// refuse answers a request whose signature or nonce was refused.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, err error, now time.Time) {
	code := proto.CodeBadSignature
	status := http.StatusUnauthorized
	switch {
	case errors.Is(err, proto.ErrUnsigned):
		code = proto.CodeUnsigned
	case errors.Is(err, proto.ErrClockSkew):
		writeJSON(w, status, proto.Error{Code: proto.CodeClockSkew, Message: err.Error(), ServerTime: now.UTC()})
		a.log.Info("appliance request refused", "path", r.URL.Path, "err", err)
		return
	case errors.Is(err, proto.ErrReplay):
		code = proto.CodeReplay
	case errors.Is(err, proto.ErrReplayCacheFull):
		status, code = http.StatusServiceUnavailable, proto.CodeBusy
		w.Header().Set("Retry-After", "10")
	}
	a.log.Info("appliance request refused", "path", r.URL.Path, "addr", a.cfg.ClientIP(r), "err", err)
	writeError(w, status, code, err.Error())
}

// unauthLimited spends one of the address's unauthenticated requests (a
// bad signature, a key the server does not know) and answers 429 when none
// is left.
func (a *API) unauthLimited(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := a.unauth.Allow(a.cfg.ClientIP(r), a.clock.Now())
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	writeError(w, http.StatusTooManyRequests, proto.CodeRateLimited, "too many unauthenticated requests from this address")
	return true
}

// paired authenticates r as a paired appliance allowed to use the path's
// {id}. The key is looked up before its nonce is recorded.
func (a *API) paired(w http.ResponseWriter, r *http.Request) (app store.Appliance, body []byte, ok bool) {
	pub, body, ok := a.authenticate(w, r)
	if !ok {
		return app, nil, false
	}
	app, err := a.store.ApplianceByKey(r.Context(), pub)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !a.unauthLimited(w, r) {
			writeError(w, http.StatusUnauthorized, proto.CodeNotPaired, "this appliance's key is not paired with the server")
		}
		return app, nil, false
	case err != nil:
		a.internal(w, r, err)
		return app, nil, false
	}
	if !a.fresh(w, r, pub) {
		return app, nil, false
	}
	if r.PathValue("id") != app.ID {
		a.log.Warn("appliance asked for another appliance's resource", "appliance", app.ID, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, proto.CodeForbidden, "this appliance may use only its own changes")
		return app, nil, false
	}
	return app, body, true
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the appliance went away
	}
	a.log.Error("appliance API", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	if store.IsUnavailable(err) {
		// The appliance comes back after Retry-After instead of backing
		// off: the database (or this replica) is back within seconds.
		writeError(w, http.StatusServiceUnavailable, proto.CodeBusy, "the server's database is unavailable; try again in a few seconds")
		return
	}
	writeError(w, http.StatusInternalServerError, proto.CodeInternal, "the server could not complete the request")
}

// rateLimited spends one of the address's pairing requests and answers
// 429 when none is left. The limit in this process is asked first, then
// the shared one: the shared bucket is one row every replica updates, and
// a burst of pairings from one address (a fleet behind one NAT) all
// waiting on that row would time out; refused here they never reach it,
// and together the replicas still grant no more than the shared budget.
func (a *API) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	ip, now := a.cfg.ClientIP(r), a.clock.Now()
	ok, wait := a.pairingHere.Allow(ip, now)
	if ok && a.pairingShared {
		ok, wait = a.pairing.Allow(ip, now)
	}
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	writeError(w, http.StatusTooManyRequests, proto.CodeRateLimited, "too many pairing requests from this address")
	return true
}

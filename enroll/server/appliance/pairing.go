package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

// handleRequestCode answers POST pairing: it returns the key's live
// pairing code, or a new one, or says the key is paired. The request is
// signed by the key it is for, which proves the appliance holds it.
func (a *API) handleRequestCode(w http.ResponseWriter, r *http.Request) {
	if a.rateLimited(w, r) {
		return
	}
	pub, body, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	req, err := parsePairingRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, proto.CodeBadRequest, err.Error())
		return
	}
	// The nonce of a paired key is recorded, as for all its requests; a
	// key not paired yet is bounded by the address's pairing budget
	// instead, so its requests never fill the replay cache or the nonce
	// table. A replay of its request gains nothing: it hands out the same
	// key's code again, or a new one for the same keys.
	st, ok := a.unpairedState(w, r, pub)
	if !ok {
		return
	}
	now := a.clock.Now()
	// A live code is handed out again unless it is about to lapse or was
	// issued for another box key; otherwise a new one is made.
	if st.State == proto.PairingWaiting && st.ExpiresAt.Sub(now) > time.Minute && string(st.boxKey) == string(req.BoxKey) {
		writeJSON(w, http.StatusOK, st.Pairing)
		return
	}
	pc := store.PairingCode{SignKey: pub, BoxKey: req.BoxKey, Version: req.Version,
		Created: now, Expires: now.Add(a.cfg.PairingCodeTTL)}
	for try := 0; ; try++ {
		pc.Code = newCode()
		err = a.store.CreatePairingCode(r.Context(), pc)
		if !errors.Is(err, store.ErrConflict) || try == 4 {
			break
		}
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.log.Info("pairing code issued", "key", fingerprint(pub), "addr", a.cfg.ClientIP(r), "expires", pc.Expires)
	writeJSON(w, http.StatusOK, proto.Pairing{State: proto.PairingWaiting, Code: pc.Code, ExpiresAt: pc.Expires.UTC()})
}

// handlePairingStatus answers GET pairing?wait=S, held up to S seconds
// while the key waits to be paired.
func (a *API) handlePairingStatus(w http.ResponseWriter, r *http.Request) {
	pub, _, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	// A key that is not paired (waiting with a pairing code, or with
	// neither) spends its address's budget of unauthenticated requests,
	// and its nonce is not recorded: the answer changes nothing, so a
	// replay of it gains nothing, and a flood of such keys cannot fill the
	// replay cache or the nonce table. A paired key's nonce is recorded.
	st, ok := a.unpairedState(w, r, pub)
	if !ok {
		return
	}
	if a.unauthLimited(w, r) {
		return
	}
	wait := a.waitParam(r)
	if st.State == proto.PairingNone {
		wait = 0
	}
	timeout, expired, end := a.holdUpTo(keyTopic(pub), wait, true)
	defer end()
	for {
		ch, release := a.notify.watch(keyTopic(pub))
		st, err := a.pairingState(r.Context(), pub)
		if err != nil {
			release()
			a.internal(w, r, err)
			return
		}
		if st.State != proto.PairingWaiting || expired {
			release()
			writeJSON(w, http.StatusOK, st.Pairing)
			return
		}
		lapse := time.NewTimer(max(st.ExpiresAt.Sub(a.clock.Now()), 0))
		select {
		case <-ch:
		case <-lapse.C:
		case <-timeout:
			expired = true
		case <-r.Context().Done():
			lapse.Stop()
			release()
			return
		}
		lapse.Stop()
		release()
	}
}

// unpairedState reads pub's pairing state for a pairing request. It
// answers the request itself, and returns false, when the read fails or
// the key is paired already (recording its nonce, as for all a paired
// key's requests).
func (a *API) unpairedState(w http.ResponseWriter, r *http.Request, pub ed25519.PublicKey) (pairingState, bool) {
	st, err := a.pairingState(r.Context(), pub)
	if err != nil {
		a.internal(w, r, err)
		return st, false
	}
	if st.State == proto.PairingPaired {
		if a.fresh(w, r, pub) {
			writeJSON(w, http.StatusOK, st.Pairing)
		}
		return st, false
	}
	return st, true
}

// holdUpTo holds a long-poll on topic for up to wait (see hold; not at
// all when wait is zero or too many are held). It returns the channel
// that fires when the wait is over, whether it is over already, and the
// function that ends the hold.
func (a *API) holdUpTo(topic string, wait time.Duration, pairing bool) (timeout <-chan time.Time, expired bool, end func()) {
	var done func()
	if wait > 0 {
		if done = a.hold(topic, pairing); done == nil {
			wait = 0 // too many held: answered at once
		}
	}
	t := time.NewTimer(wait)
	return t.C, wait == 0, func() {
		t.Stop()
		if done != nil {
			done()
		}
	}
}

func (a *API) waitParam(r *http.Request) time.Duration {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, a.cfg.MaxWait)
}

type pairingState struct {
	proto.Pairing
	boxKey []byte
}

// pairingState reads whether pub is paired, waits with a live code, or
// neither. Pairing consumes the code and creates the appliance in one
// transaction, possibly on another replica between this read's two
// lookups; so a key found with neither is looked up once more as an
// appliance before it is told "none".
func (a *API) pairingState(ctx context.Context, pub ed25519.PublicKey) (pairingState, error) {
	if st, ok, err := a.pairedState(ctx, pub); ok || err != nil {
		return st, err
	}
	pc, err := a.store.PairingCodeByKey(ctx, pub, a.clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		if st, ok, err := a.pairedState(ctx, pub); ok || err != nil {
			return st, err
		}
		return pairingState{Pairing: proto.Pairing{State: proto.PairingNone}}, nil
	}
	if err != nil {
		return pairingState{}, err
	}
	return pairingState{Pairing: proto.Pairing{State: proto.PairingWaiting, Code: pc.Code, ExpiresAt: pc.Expires.UTC()}, boxKey: pc.BoxKey}, nil
}

// pairedState returns pub's pairing and true when it is paired.
func (a *API) pairedState(ctx context.Context, pub ed25519.PublicKey) (pairingState, bool, error) {
	app, err := a.store.ApplianceByKey(ctx, pub)
	switch {
	case err == nil:
		return pairingState{Pairing: proto.Pairing{State: proto.PairingPaired, ApplianceID: app.ID, Name: app.Name}}, true, nil
	case errors.Is(err, store.ErrNotFound):
		return pairingState{}, false, nil
	default:
		return pairingState{}, false, err
	}
}

// keyTopic is the notifier topic of the pairing of the appliance with
// public key pub. It is text (the key id), as the fleet bus carries it in
// a PostgreSQL NOTIFY payload, where raw key bytes are refused.
func keyTopic(pub []byte) string { return "key:" + proto.KeyID(pub) }

// fingerprint names a key in logs: the first 12 characters of its key id.
func fingerprint(pub []byte) string { return proto.KeyID(pub)[:12] }

// newCode returns a random pairing code.
func newCode() string {
	b := make([]byte, proto.CodeLen)
	for i := range b {
		b[i] = proto.CodeAlphabet[randIntn(len(proto.CodeAlphabet))]
	}
	return string(b)
}

// randIntn returns a uniform random int in [0, n), n <= 256, by rejection.
func randIntn(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// NormalizeCode returns a pairing code as typed (any case, with spaces or
// dashes) in canonical form, or ErrBadCode when it cannot be one.
func NormalizeCode(s string) (string, error) {
	c := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if len(c) != proto.CodeLen || strings.Trim(c, proto.CodeAlphabet) != "" {
		return "", ErrBadCode
	}
	return c, nil
}

// MaxNameLen is the longest appliance name, in characters.
const MaxNameLen = 64

// checkName validates a friendly appliance name and returns it trimmed.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New("appliance name is empty")
	case !utf8.ValidString(name):
		return "", errors.New("appliance name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", fmt.Errorf("appliance name is over %d characters", MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", errors.New("appliance name contains a control character")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0:
		return "", errors.New("appliance name holds an invisible format character (a bidi control or zero-width character)")
	}
	return name, nil
}

func newApplianceID() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

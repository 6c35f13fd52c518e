package appliance

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
)

// nonceMargin keeps a nonce stored past the last instant its request's
// timestamp is accepted (timestamp + proto.Window, inclusive), so pruning
// at that instant cannot make the request acceptable again.
const nonceMargin = time.Second

// useNonce records the nonce of r, whose signature by pub has verified,
// in the store. It returns an error wrapping proto.ErrReplay when the
// nonce was already used with this key, by this or any other server
// sharing the store, and another error when the store fails.
func (a *API) useNonce(r *http.Request, pub ed25519.PublicKey) error {
	// Verify has checked both headers; the key id is re-encoded from the
	// key so that another spelling of the same key cannot slip past.
	expires, err := nonceExpires(r)
	if err != nil {
		return err
	}
	err = a.store.UseNonce(r.Context(), proto.KeyID(pub), r.Header.Get(proto.HeaderNonce), expires)
	if errors.Is(err, store.ErrConflict) {
		return proto.ErrReplay
	}
	return err
}

// nonceExpires is how long the nonce of r, whose signature has verified,
// must be remembered: past the last instant its timestamp is accepted.
func nonceExpires(r *http.Request) (time.Time, error) {
	sec, err := strconv.ParseInt(r.Header.Get(proto.HeaderTimestamp), 10, 64)
	if err != nil {
		return time.Time{}, errors.New("use nonce: timestamp is not Unix seconds")
	}
	return time.Unix(sec, 0).Add(proto.Window + nonceMargin), nil
}

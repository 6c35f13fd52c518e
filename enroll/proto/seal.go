package proto

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll"
)

// BoxKeySize is the size of X25519 keys.
const BoxKeySize = 32

// offerSecret is the plaintext sealed in an offer. DeviceID binds it to
// the change that carries it, so a sealed secret cannot be replayed under
// another MFA device's id.
type offerSecret struct {
	V         int    `json:"v"`
	DeviceID  string `json:"device_id"`
	Issuer    string `json:"issuer"`
	Account   string `json:"account"`
	Secret    []byte `json:"secret"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int64  `json:"period"`
}

// SealOffer seals key for the appliance whose X25519 public key is boxKey,
// bound to the MFA device deviceID, with an anonymous nacl/box: only the
// holder of the matching private key can open it.
func SealOffer(boxKey []byte, deviceID string, key enroll.Key) ([]byte, error) {
	if len(boxKey) != BoxKeySize {
		return nil, fmt.Errorf("seal offer: box key is %d bytes, want %d", len(boxKey), BoxKeySize)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("seal offer: %w", err)
	}
	plain, err := json.Marshal(offerSecret{
		V: 1, DeviceID: deviceID, Issuer: key.Issuer, Account: key.Account, Secret: key.Secret,
		Algorithm: key.Algorithm.String(), Digits: key.Digits, Period: int64(key.Period / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("seal offer: %w", err)
	}
	defer clear(plain)
	return box.SealAnonymous(nil, plain, (*[32]byte)(boxKey), rand.Reader)
}

// ErrSealed is returned by OpenOffer for a sealed offer it cannot open or
// that belongs to another MFA device.
var ErrSealed = errors.New("sealed offer cannot be opened with this appliance's key")

// OpenOffer opens an offer sealed by SealOffer with the appliance's box key
// pair and checks that it belongs to deviceID.
func OpenOffer(sealed []byte, deviceID string, pub, priv *[32]byte) (enroll.Key, error) {
	plain, ok := box.OpenAnonymous(nil, sealed, pub, priv)
	if !ok {
		return enroll.Key{}, ErrSealed
	}
	defer clear(plain)
	var s offerSecret
	if err := json.Unmarshal(plain, &s); err != nil {
		return enroll.Key{}, fmt.Errorf("sealed offer: %w", errors.New("malformed contents"))
	}
	if s.V != 1 {
		return enroll.Key{}, fmt.Errorf("sealed offer: version %d is not supported", s.V)
	}
	if s.DeviceID != deviceID {
		return enroll.Key{}, fmt.Errorf("%w: it was sealed for another MFA device", ErrSealed)
	}
	alg, err := enroll.ParseAlgorithm(s.Algorithm)
	if err != nil {
		return enroll.Key{}, fmt.Errorf("sealed offer: %w", err)
	}
	k := enroll.Key{Issuer: s.Issuer, Account: s.Account, Secret: s.Secret, Algorithm: alg,
		Digits: s.Digits, Period: time.Duration(s.Period) * time.Second}
	if err := k.Validate(); err != nil {
		return enroll.Key{}, fmt.Errorf("sealed offer: %w", err)
	}
	return k, nil
}

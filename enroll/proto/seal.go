package proto

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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
	// Sequence is the button sequence that accepts the offer on the
	// appliance (version 2 on): shown only on the console, so a press of
	// it proves the person at the appliance sees the console.
	Sequence []string `json:"sequence,omitempty"`
}

// The button sequence that accepts an offer: SequencePresses presses of
// next, back or ok, the last always ok.
const (
	SequencePresses = 4
	// maxSequence bounds a sealed sequence an appliance accepts.
	maxSequence = 8
)

// NewSequence draws the button sequence of a new offer with crypto/rand:
// SequencePresses-1 presses of "next", "back" or "ok", then "ok" (27
// sequences; three wrong tries reject the offer).
func NewSequence() []string {
	names := []string{"next", "back", "ok"}
	seq := make([]string, SequencePresses)
	for i := range SequencePresses - 1 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(names))))
		if err != nil {
			panic(err) // crypto/rand never fails (Go 1.24 on)
		}
		seq[i] = names[n.Int64()]
	}
	seq[SequencePresses-1] = "ok"
	return seq
}

// checkSequence checks a sequence as NewSequence draws it: 2 to
// maxSequence presses of next, back or ok, ending in ok.
func checkSequence(seq []string) error {
	if len(seq) < 2 || len(seq) > maxSequence {
		return fmt.Errorf("button sequence has %d presses, want 2 to %d", len(seq), maxSequence)
	}
	for _, b := range seq {
		if b != "next" && b != "back" && b != "ok" {
			return errors.New("button sequence holds an unknown button")
		}
	}
	if seq[len(seq)-1] != "ok" {
		return errors.New("button sequence does not end in ok")
	}
	return nil
}

// SealOffer seals key and the button sequence that accepts it (see
// NewSequence) for the appliance whose X25519 public key is boxKey, bound
// to the MFA device deviceID, with an anonymous nacl/box: only the holder
// of the matching private key can open it.
func SealOffer(boxKey []byte, deviceID string, key enroll.Key, seq []string) ([]byte, error) {
	if len(boxKey) != BoxKeySize {
		return nil, fmt.Errorf("seal offer: box key is %d bytes, want %d", len(boxKey), BoxKeySize)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("seal offer: %w", err)
	}
	if err := checkSequence(seq); err != nil {
		return nil, fmt.Errorf("seal offer: %w", err)
	}
	plain, err := json.Marshal(offerSecret{
		V: 2, Sequence: seq, DeviceID: deviceID, Issuer: key.Issuer, Account: key.Account, Secret: key.Secret,
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
// pair, checks that it belongs to deviceID, and returns its key and the
// button sequence that accepts it. An offer of version 1 (before the
// sequence) is refused: nothing could prove the person at the appliance
// sees the console.
func OpenOffer(sealed []byte, deviceID string, pub, priv *[32]byte) (enroll.Key, []string, error) {
	plain, ok := box.OpenAnonymous(nil, sealed, pub, priv)
	if !ok {
		return enroll.Key{}, nil, ErrSealed
	}
	defer clear(plain)
	var s offerSecret
	if err := json.Unmarshal(plain, &s); err != nil {
		return enroll.Key{}, nil, fmt.Errorf("sealed offer: %w", errors.New("malformed contents"))
	}
	if s.V != 2 {
		return enroll.Key{}, nil, fmt.Errorf("sealed offer: version %d is not supported", s.V)
	}
	if s.DeviceID != deviceID {
		return enroll.Key{}, nil, fmt.Errorf("%w: it was sealed for another MFA device", ErrSealed)
	}
	if err := checkSequence(s.Sequence); err != nil {
		return enroll.Key{}, nil, fmt.Errorf("sealed offer: %w", err)
	}
	alg, err := enroll.ParseAlgorithm(s.Algorithm)
	if err != nil {
		return enroll.Key{}, nil, fmt.Errorf("sealed offer: %w", err)
	}
	k := enroll.Key{Issuer: s.Issuer, Account: s.Account, Secret: s.Secret, Algorithm: alg,
		Digits: s.Digits, Period: time.Duration(s.Period) * time.Second}
	if err := k.Validate(); err != nil {
		return enroll.Key{}, nil, fmt.Errorf("sealed offer: %w", err)
	}
	return k, s.Sequence, nil
}

// takeoverVersion is the version of a sealed takeover: distinct from an
// offer's, so that neither opens as the other.
const takeoverVersion = 3

// SealTakeover seals the active account key of MFA device deviceID for the
// appliance whose X25519 public key is boxKey, as SealOffer does, for a
// takeover: the spare stores it once the person at the spare agreed to
// take over the batch. It carries no button sequence.
func SealTakeover(boxKey []byte, deviceID string, key enroll.Key) ([]byte, error) {
	if len(boxKey) != BoxKeySize {
		return nil, fmt.Errorf("seal takeover: box key is %d bytes, want %d", len(boxKey), BoxKeySize)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("seal takeover: %w", err)
	}
	plain, err := json.Marshal(offerSecret{
		V: takeoverVersion, DeviceID: deviceID, Issuer: key.Issuer, Account: key.Account, Secret: key.Secret,
		Algorithm: key.Algorithm.String(), Digits: key.Digits, Period: int64(key.Period / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("seal takeover: %w", err)
	}
	defer clear(plain)
	return box.SealAnonymous(nil, plain, (*[32]byte)(boxKey), rand.Reader)
}

// OpenTakeover opens a takeover sealed by SealTakeover with the
// appliance's box key pair and checks that it belongs to deviceID. A
// sealed offer does not open as a takeover.
func OpenTakeover(sealed []byte, deviceID string, pub, priv *[32]byte) (enroll.Key, error) {
	plain, ok := box.OpenAnonymous(nil, sealed, pub, priv)
	if !ok {
		return enroll.Key{}, ErrSealed
	}
	defer clear(plain)
	var s offerSecret
	if err := json.Unmarshal(plain, &s); err != nil {
		return enroll.Key{}, fmt.Errorf("sealed takeover: %w", errors.New("malformed contents"))
	}
	if s.V != takeoverVersion {
		return enroll.Key{}, fmt.Errorf("sealed takeover: version %d is not a takeover", s.V)
	}
	if s.DeviceID != deviceID {
		return enroll.Key{}, fmt.Errorf("%w: it was sealed for another MFA device", ErrSealed)
	}
	alg, err := enroll.ParseAlgorithm(s.Algorithm)
	if err != nil {
		return enroll.Key{}, fmt.Errorf("sealed takeover: %w", err)
	}
	k := enroll.Key{Issuer: s.Issuer, Account: s.Account, Secret: s.Secret, Algorithm: alg,
		Digits: s.Digits, Period: time.Duration(s.Period) * time.Second}
	if err := k.Validate(); err != nil {
		return enroll.Key{}, fmt.Errorf("sealed takeover: %w", err)
	}
	return k, nil
}

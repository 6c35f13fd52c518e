// Package tpm is the appliance's TPM 2.0: it seals small secrets (the
// vault's data key, the pairing identity) to the TPM, and holds TOTP
// secrets as keyed-hash objects whose HMACs only the TPM can compute.
//
// Everything hangs under one storage primary key made from the owner
// hierarchy's seed with a fixed template (the TCG's ECC P-256 SRK
// template), so it is re-created identically at every start and the TPM
// keeps nothing in its own memory between runs. Blobs are the TPM's
// wrapped public and private parts; they may be stored anywhere, since
// only the TPM that made them can load them: another TPM refuses them
// (ErrOtherTPM).
//
// Sealed objects carry no PCR policy: a Raspberry Pi has no measured boot
// (its boot ROM and firmware extend no PCRs), so a policy on PCRs would
// bind to nothing an attacker with the board cannot reproduce, and would
// only make a firmware update lock the owner out. The protection is the
// one asked for: a copy of the SD card does not open on another board.
//
// Secrets sent to the TPM (Create with sensitive data) and read from it
// (Unseal) travel in a session salted to the storage key with AES
// parameter encryption, so they do not cross the SPI bus in clear.
package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultDevice is the kernel's TPM resource manager device.
const DefaultDevice = "/dev/tpmrm0"

// Errors that callers may test for with errors.Is.
var (
	// ErrOtherTPM: a blob was made by another TPM (or this TPM was
	// cleared since), so this TPM cannot load it.
	ErrOtherTPM = errors.New("sealed by a different TPM")
	// ErrUnsupported: the TPM cannot hold an HMAC key for this hash or
	// secret size.
	ErrUnsupported = errors.New("not supported by the TPM")
	// ErrBadBlob: the bytes are not a blob this package wrote.
	ErrBadBlob = errors.New("not a TPM blob")
)

// Hash names the HMAC hash of a keyed-hash object.
type Hash int

// Hashes an SLB9670 (and swtpm) computes HMACs with.
const (
	SHA1 Hash = iota + 1
	SHA256
)

func (h Hash) alg() (tpm2.TPMIAlgHash, bool) {
	switch h {
	case SHA1:
		return tpm2.TPMAlgSHA1, true
	case SHA256:
		return tpm2.TPMAlgSHA256, true
	}
	return 0, false
}

// MaxHMACKey is the longest secret a keyed-hash object holds
// (MAX_SYM_DATA in the TPM 2.0 library specification).
const MaxHMACKey = 128

// MaxSealed is the most data a sealed object holds.
const MaxSealed = 128

// TPM is an open TPM with its storage primary key loaded. Its methods are
// safe for concurrent use; commands are sent one at a time.
type TPM struct {
	mu     sync.Mutex
	dev    transport.TPMCloser
	name   string
	srk    tpm2.TPMHandle
	srkPub tpm2.TPMTPublic
	srkNm  tpm2.TPM2BName
	closed bool
}

// Open opens the TPM at addr and creates the storage primary key:
//
//	/dev/tpmrm0                the kernel's resource manager (a Pi's SPI module)
//	unix:/path/to/swtpm.sock   swtpm --server type=unixio,path=...
//	tcp:127.0.0.1:2321         swtpm --server type=tcp,port=2321
//
// A socket is an emulator nobody else uses: Open flushes any transient
// objects a killed process left behind.
func Open(addr string) (*TPM, error) {
	var dev transport.TPMCloser
	var err error
	shared := false
	switch {
	case strings.HasPrefix(addr, "unix:"):
		dev, err = dial("unix", strings.TrimPrefix(addr, "unix:"))
	case strings.HasPrefix(addr, "tcp:"):
		dev, err = dial("tcp", strings.TrimPrefix(addr, "tcp:"))
	case addr == "":
		return nil, errors.New("tpm: no device given")
	default:
		dev, err = linuxtpm.Open(addr)
		shared = true
	}
	if err != nil {
		return nil, fmt.Errorf("tpm %s: %w", addr, err)
	}
	t := &TPM{dev: dev, name: addr}
	if !shared {
		t.flushTransients()
	}
	if err := t.createSRK(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("tpm %s: storage key: %w", addr, err)
	}
	return t, nil
}

// Present reports whether a TPM device exists at addr (for a socket:
// whether something listens there), without opening it.
func Present(addr string) bool {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		_, err := os.Stat(strings.TrimPrefix(addr, "unix:"))
		return err == nil
	case strings.HasPrefix(addr, "tcp:"):
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(addr, "tcp:"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	case addr == "":
		return false
	}
	fi, err := os.Stat(addr)
	return err == nil && fi.Mode()&os.ModeDevice != 0
}

// String returns the address the TPM was opened at.
func (t *TPM) String() string { return "TPM " + t.name }

// Close flushes the storage key and closes the device.
func (t *TPM) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.flush(t.srk)
	return t.dev.Close()
}

// srkTemplate is the TCG's ECC P-256 storage key template: deterministic,
// so the same TPM derives the same key at every start.
var srkTemplate = tpm2.ECCSRKTemplate

func (t *TPM) createSRK() error {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(srkTemplate),
	}.Execute(t.dev)
	if err != nil {
		return err
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		t.flush(rsp.ObjectHandle)
		return err
	}
	t.srk, t.srkPub, t.srkNm = rsp.ObjectHandle, *pub, rsp.Name
	return nil
}

func (t *TPM) flush(h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(t.dev)
}

// flushTransients flushes every transient object and session on an
// emulator, left there by a process that died without flushing them.
func (t *TPM) flushTransients() {
	for _, first := range []tpm2.TPMHandle{tpm2.TPMHandle(0x80000000), tpm2.TPMHandle(0x02000000), tpm2.TPMHandle(0x03000000)} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(t.dev)
		if err != nil {
			continue
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			continue
		}
		for _, h := range hs.Handle {
			if uint32(h)>>24 == uint32(first)>>24 {
				t.flush(h)
			}
		}
	}
}

// srkAuth is the storage key's authorization for a command whose secret
// parameters must not cross the bus in clear: a session salted to the
// storage key, encrypting the first parameter in dir.
func (t *TPM) srkAuth(dir tpm2.AuthOption) tpm2.AuthHandle {
	return tpm2.AuthHandle{
		Handle: t.srk, Name: t.srkNm,
		Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(t.srk, t.srkPub), dir),
	}
}

// Seal seals data (at most MaxSealed bytes) to this TPM and returns the
// blob; only this TPM's Unseal returns data from it.
func (t *TPM) Seal(data []byte) ([]byte, error) {
	if len(data) == 0 || len(data) > MaxSealed {
		return nil, fmt.Errorf("tpm seal: %d bytes, want 1..%d", len(data), MaxSealed)
	}
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, UserWithAuth: true, NoDA: true,
		},
	}
	return t.create(pub, data, "seal")
}

// Unseal returns the data sealed in blob. A blob from another TPM gives
// an error wrapping ErrOtherTPM.
func (t *TPM) Unseal(blob []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, name, err := t.load(blob)
	if err != nil {
		return nil, fmt.Errorf("tpm unseal: %w", err)
	}
	defer t.flush(h)
	rsp, err := tpm2.Unseal{
		ItemHandle: tpm2.AuthHandle{
			Handle: h, Name: name,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(t.srk, t.srkPub), tpm2.AESEncryption(128, tpm2.EncryptOut)),
		},
	}.Execute(t.dev)
	if err != nil {
		return nil, fmt.Errorf("tpm unseal: %w", err)
	}
	return rsp.OutData.Buffer, nil
}

// ImportHMAC makes a keyed-hash object holding secret, for HMACs with
// hash h, and returns its blob. The TPM never gives the secret back; the
// caller should clear its copy.
func (t *TPM) ImportHMAC(h Hash, secret []byte) ([]byte, error) {
	alg, ok := h.alg()
	if !ok {
		return nil, fmt.Errorf("tpm: hash %d: %w", int(h), ErrUnsupported)
	}
	if len(secret) == 0 || len(secret) > MaxHMACKey {
		return nil, fmt.Errorf("tpm: a %d-byte HMAC key: %w (at most %d bytes)", len(secret), ErrUnsupported, MaxHMACKey)
	}
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, UserWithAuth: true, NoDA: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{
				Scheme:  tpm2.TPMAlgHMAC,
				Details: tpm2.NewTPMUSchemeKeyedHash(tpm2.TPMAlgHMAC, &tpm2.TPMSSchemeHMAC{HashAlg: alg}),
			},
		}),
	}
	return t.create(pub, secret, "import HMAC key")
}

// create makes an object with template pub and sensitive data under the
// storage key, sent encrypted, and returns its blob.
func (t *TPM) create(pub tpm2.TPMTPublic, data []byte, what string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("tpm %s: closed", what)
	}
	rsp, err := tpm2.Create{
		ParentHandle: t.srkAuth(tpm2.AESEncryption(128, tpm2.EncryptIn)),
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: data}),
		}},
		InPublic: tpm2.New2B(pub),
	}.Execute(t.dev)
	if err != nil {
		return nil, fmt.Errorf("tpm %s: %w", what, err)
	}
	return marshalBlob(rsp.OutPublic, rsp.OutPrivate), nil
}

// HMAC returns the HMAC of msg with the keyed-hash object in blob,
// computed by the TPM.
func (t *TPM) HMAC(blob, msg []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, name, err := t.load(blob)
	if err != nil {
		return nil, fmt.Errorf("tpm hmac: %w", err)
	}
	defer t.flush(h)
	pub, _, _ := unmarshalBlob(blob)
	alg := tpm2.TPMAlgSHA256
	if c, err := pub.Contents(); err == nil {
		if kh, err := c.Parameters.KeyedHashDetail(); err == nil {
			if d, err := kh.Scheme.Details.HMAC(); err == nil {
				alg = d.HashAlg
			}
		}
	}
	rsp, err := tpm2.Hmac{
		Handle:  tpm2.AuthHandle{Handle: h, Name: name, Auth: tpm2.PasswordAuth(nil)},
		Buffer:  tpm2.TPM2BMaxBuffer{Buffer: msg},
		HashAlg: alg,
	}.Execute(t.dev)
	if err != nil {
		return nil, fmt.Errorf("tpm hmac: %w", err)
	}
	return rsp.OutHMAC.Buffer, nil
}

// load loads blob under the storage key; the caller flushes the handle.
func (t *TPM) load(blob []byte) (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	if t.closed {
		return 0, tpm2.TPM2BName{}, errors.New("closed")
	}
	pub, priv, err := unmarshalBlob(blob)
	if err != nil {
		return 0, tpm2.TPM2BName{}, err
	}
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: t.srk, Name: t.srkNm, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     pub,
		InPrivate:    priv,
	}.Execute(t.dev)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCIntegrity) {
			return 0, tpm2.TPM2BName{}, ErrOtherTPM
		}
		return 0, tpm2.TPM2BName{}, err
	}
	return rsp.ObjectHandle, rsp.Name, nil
}

// A blob is "TPB1", then the TPM2B_PUBLIC and TPM2B_PRIVATE as the TPM
// gave them (each already length-prefixed).
const blobMagic = "TPB1"

func marshalBlob(pub tpm2.TPM2BPublic, priv tpm2.TPM2BPrivate) []byte {
	b := []byte(blobMagic)
	b = append(b, tpm2.Marshal(pub)...)
	return append(b, tpm2.Marshal(priv)...)
}

func unmarshalBlob(b []byte) (tpm2.TPM2BPublic, tpm2.TPM2BPrivate, error) {
	var pub tpm2.TPM2BPublic
	var priv tpm2.TPM2BPrivate
	if len(b) < len(blobMagic)+4 || string(b[:len(blobMagic)]) != blobMagic {
		return pub, priv, ErrBadBlob
	}
	rest := b[len(blobMagic):]
	n := 2 + int(binary.BigEndian.Uint16(rest))
	if n > len(rest) {
		return pub, priv, ErrBadBlob
	}
	p, err := tpm2.Unmarshal[tpm2.TPM2BPublic](rest[:n])
	if err != nil {
		return pub, priv, ErrBadBlob
	}
	q, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](rest[n:])
	if err != nil || 2+len(q.Buffer) != len(rest[n:]) {
		return pub, priv, ErrBadBlob
	}
	return *p, *q, nil
}

// dial connects to an emulator's raw command socket (swtpm's
// --server type=tcp or type=unixio): each command is written whole and
// its response read by the length in its header.
func dial(network, addr string) (transport.TPMCloser, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c}, nil
}

type rawConn struct{ c net.Conn }

// Send writes one command and reads its response.
func (r *rawConn) Send(cmd []byte) ([]byte, error) {
	r.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.c.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(r.c, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < 10 || n > 1<<20 {
		return nil, fmt.Errorf("response of %d bytes", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	if _, err := io.ReadFull(r.c, rsp[10:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

func (r *rawConn) Close() error { return r.c.Close() }

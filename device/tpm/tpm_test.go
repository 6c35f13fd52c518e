package tpm_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"path/filepath"
	"testing"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/sim/swtpm"
)

func TestSealUnseal(t *testing.T) {
	d := tpmtest.Open(t, "")
	for _, data := range [][]byte{{0}, bytes.Repeat([]byte{0xA5}, 32), bytes.Repeat([]byte("x"), tpm.MaxSealed)} {
		blob, err := d.Seal(data)
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", len(data), err)
		}
		if bytes.Contains(blob, data) && len(data) > 4 {
			t.Errorf("Seal(%d bytes): the blob holds the data in clear", len(data))
		}
		got, err := d.Unseal(blob)
		if err != nil {
			t.Fatalf("Unseal: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("Unseal(Seal(%x)) = %x", data, got)
		}
	}
	if _, err := d.Seal(make([]byte, tpm.MaxSealed+1)); err == nil {
		t.Error("Seal(too much) succeeded")
	}
	if _, err := d.Unseal([]byte("garbage")); !errors.Is(err, tpm.ErrBadBlob) {
		t.Errorf("Unseal(garbage) = %v, want ErrBadBlob", err)
	}
}

// TestOtherTPMRefuses: a blob copied to another TPM does not open there,
// and still opens on its own TPM, also after that TPM restarts.
func TestOtherTPMRefuses(t *testing.T) {
	state := t.TempDir()
	addr := tpmtest.Start(t, state)
	d, err := tpm.Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the vault's data key, 32 bytes..")
	blob, err := d.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	hblob, err := d.ImportHMAC(tpm.SHA256, []byte("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	other := tpmtest.Open(t, "")
	if _, err := other.Unseal(blob); !errors.Is(err, tpm.ErrOtherTPM) {
		t.Errorf("Unseal on another TPM = %v, want ErrOtherTPM", err)
	}
	if _, err := other.HMAC(hblob, []byte("x")); !errors.Is(err, tpm.ErrOtherTPM) {
		t.Errorf("HMAC on another TPM = %v, want ErrOtherTPM", err)
	}

	again, err := tpm.Open(addr) // the same TPM, a new process's view
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := again.Unseal(blob)
	if err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Unseal on the original TPM = %q, %v", got, err)
	}
}

// TestStateSurvivesRestart: swtpm restarted on the same state directory
// is the same TPM (a Pi rebooting).
func TestStateSurvivesRestart(t *testing.T) {
	tpmtest.Require(t)
	state := filepath.Join(t.TempDir(), "tpm")
	open := func() (*tpm.TPM, *swtpm.Emulator) {
		e, err := swtpm.Start(state, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d, err := tpm.Open(e.Addr)
		if err != nil {
			e.Stop()
			t.Fatal(err)
		}
		return d, e
	}
	d, e := open()
	blob, err := d.Seal([]byte("kept"))
	d.Close()
	e.Stop()
	if err != nil {
		t.Fatal(err)
	}
	d, e = open()
	defer e.Stop()
	defer d.Close()
	got, err := d.Unseal(blob)
	if err != nil || string(got) != "kept" {
		t.Errorf("Unseal after restart = %q, %v", got, err)
	}
}

func TestHMAC(t *testing.T) {
	d := tpmtest.Open(t, "")
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		h   tpm.Hash
		new func() hash.Hash
	}{{tpm.SHA1, sha1.New}, {tpm.SHA256, sha256.New}} {
		blob, err := d.ImportHMAC(tc.h, key)
		if err != nil {
			t.Fatalf("ImportHMAC(%d): %v", tc.h, err)
		}
		if bytes.Contains(blob, key) {
			t.Errorf("ImportHMAC(%d): the blob holds the key in clear", tc.h)
		}
		for _, msg := range [][]byte{{0, 0, 0, 0, 0, 0, 0, 1}, {0, 0, 0, 0, 0x02, 0x35, 0x23, 0xEC}} {
			got, err := d.HMAC(blob, msg)
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(tc.new, key)
			m.Write(msg)
			if want := m.Sum(nil); !bytes.Equal(got, want) {
				t.Errorf("HMAC(%d, %x) = %x, want %x", tc.h, msg, got, want)
			}
		}
	}
	if _, err := d.ImportHMAC(tpm.SHA256, make([]byte, tpm.MaxHMACKey+1)); !errors.Is(err, tpm.ErrUnsupported) {
		t.Errorf("ImportHMAC(129 bytes) = %v, want ErrUnsupported", err)
	}
	if _, err := d.ImportHMAC(tpm.Hash(9), key); !errors.Is(err, tpm.ErrUnsupported) {
		t.Errorf("ImportHMAC(hash 9) = %v, want ErrUnsupported", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, addr := range []string{"", "/nonexistent/tpmrm0", "unix:/nonexistent/sock"} {
		if d, err := tpm.Open(addr); err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded", addr)
		}
	}
	if tpm.Present("/nonexistent/tpmrm0") {
		t.Error("Present(/nonexistent/tpmrm0) = true")
	}
}

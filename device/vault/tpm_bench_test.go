package vault

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/enroll"
)

// BenchmarkCode measures one code on swtpm (Load, HMAC, FlushContext of
// the account's keyed-hash object) beside the same code in software, in
// the same run. Each iteration asks for a new step, so the vault's code
// cache never answers.
func BenchmarkCode(b *testing.B) {
	d := tpmtest.Open(b, "")
	for _, alg := range []enroll.Algorithm{enroll.SHA1, enroll.SHA256} {
		for _, mode := range []string{"tpm", "software"} {
			b.Run(fmt.Sprintf("%v/%s", alg, mode), func(b *testing.B) {
				opts := Config{}
				if mode == "tpm" {
					opts.TPM = d
				}
				v, err := Open(b.TempDir(), opts)
				if err != nil {
					b.Fatal(err)
				}
				defer v.Close()
				a, err := v.Add(Account{Key: enroll.Key{Account: "b", Secret: bytes.Clone(rfcSeeds[alg]), Algorithm: alg, Digits: 6, Period: 30 * time.Second}, State: Active})
				if err != nil {
					b.Fatal(err)
				}
				if a.InTPM != (mode == "tpm") {
					b.Fatalf("InTPM = %v in %s mode", a.InTPM, mode)
				}
				b.ResetTimer()
				for i := range b.N {
					if _, err := a.CodeAt(int64(i)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpenTPM measures opening a vault of n active accounts in TPM
// mode (unsealing the data key, decrypting the file), beside tpm.Open
// itself (connecting and deriving the storage primary key), on swtpm.
func BenchmarkOpenTPM(b *testing.B) {
	addr := tpmtest.Start(b, "")
	d, err := tpm.Open(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, n := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			v, err := Open(dir, Config{TPM: d})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				if _, err := v.Add(Account{Key: testKey(b, "Example", fmt.Sprintf("u%d", i)), State: Active}); err != nil {
					b.Fatal(err)
				}
			}
			v.Close()
			b.ResetTimer()
			for range b.N {
				v, err := Open(dir, Config{TPM: d})
				if err != nil {
					b.Fatal(err)
				}
				v.Close()
			}
		})
	}
	b.Run("tpm.Open", func(b *testing.B) {
		d.Close() // swtpm serves one connection at a time
		for range b.N {
			t, err := tpm.Open(addr)
			if err != nil {
				b.Fatal(err)
			}
			t.Close()
		}
	})
}

// BenchmarkMoveIntoTPM measures a confirmation in TPM mode: the Update
// that imports the secret into the TPM (TPM2_Create in a salted,
// encrypted session) and rewrites the vault.
func BenchmarkMoveIntoTPM(b *testing.B) {
	d := tpmtest.Open(b, "")
	v, err := Open(b.TempDir(), Config{TPM: d})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	key := testKey(b, "Example", "new")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		a, err := v.Add(Account{Key: key})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := v.Update(a.ID, func(a *Account) error { a.State = Active; return nil }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		v.Remove(a.ID)
		b.StartTimer()
	}
}

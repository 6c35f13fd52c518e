package vault

import (
	"fmt"
	"testing"
)

// benchVault returns the directory of a closed vault holding n accounts.
func benchVault(b *testing.B, n int, opts Config) string {
	b.Helper()
	dir := b.TempDir()
	v, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	accounts := make([]Account, n)
	for i := range accounts {
		a := Account{Key: testKey(b, "Example", fmt.Sprintf("user%d@example.com", i)), Label: fmt.Sprintf("Account %d", i)}
		a.ID, a.Source = v.newID(), SourceLocal
		accounts[i] = a
	}
	// One write instead of n.
	if err := v.commit(accounts); err != nil {
		b.Fatal(err)
	}
	if err := v.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

var benchSizes = []int{0, 10, 100, 1000}

// BenchmarkAdd measures one durable Add to a vault of n accounts: seal,
// write, two fsyncs, rename. The account is removed again, untimed, so the
// vault stays at n.
func BenchmarkAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			v, err := Open(benchVault(b, n, Config{}), Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			key := testKey(b, "Example", "new")
			b.ResetTimer()
			for range b.N {
				a, err := v.Add(Account{Key: key})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := v.Remove(a.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSeal measures encoding and encrypting n accounts, without I/O.
func BenchmarkSeal(b *testing.B) {
	for _, n := range benchSizes[1:] {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			v, err := Open(benchVault(b, n, Config{}), Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.seal(v.accounts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures opening a vault of n accounts with an unwrapped
// key file: lock, read, decrypt, decode, validate.
func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			dir := benchVault(b, n, Config{})
			b.ReportAllocs()
			for b.Loop() {
				v, err := Open(dir, Config{})
				if err != nil {
					b.Fatal(err)
				}
				v.Close()
			}
		})
	}
}

// BenchmarkOpenPassphrase measures opening a vault of 10 accounts whose key
// file is wrapped with DefaultKDF: the argon2id cost paid at every start.
func BenchmarkOpenPassphrase(b *testing.B) {
	opts := Config{Passphrase: []byte("correct horse battery staple")}
	dir := benchVault(b, 10, opts)
	b.ReportAllocs()
	for b.Loop() {
		v, err := Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		v.Close()
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// benchStores runs fn against a fresh store of each kind; PostgreSQL only
// when the test database is set.
func benchStores(b *testing.B, fn func(b *testing.B, s store.Store)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.OpenSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, storetest.OpenPostgres(b)) })
}

// seed creates users user0..user(n-1), each with one active MFA device,
// and returns the device IDs.
func seed(b *testing.B, s store.Store, n int) []int64 {
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range n {
		u := store.User{Username: fmt.Sprintf("user%d", i)}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		for j, name := range []string{"Phone", "Kiosk"} {
			d := store.Device{UserID: u.ID, Name: name, Kind: store.KindAuthenticatorApp, Status: store.StatusActive,
				Algorithm: "SHA1", Digits: 6, PeriodSec: 30, Secret: store.Sealed{KeyID: "k", Ciphertext: make([]byte, 48)}}
			if err := s.CreateDevice(ctx, &d); err != nil {
				b.Fatal(err)
			}
			if j == 0 {
				ids[i] = d.ID
			}
		}
	}
	return ids
}

// BenchmarkRecordUse: one accepted code, one conditional UPDATE.
func BenchmarkRecordUse(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		id := seed(b, s, 1)[0]
		ctx := context.Background()
		step := int64(1)
		now := time.Now()
		for b.Loop() {
			step++
			if err := s.RecordUse(ctx, store.UseStep{DeviceID: id, Step: step, At: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecordUseParallel: 16 goroutines per CPU, each verifying its own
// users' devices, as concurrent verify requests do.
func BenchmarkRecordUseParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ids := seed(b, s, 64)
		var next atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := ids[int(next.Add(1)-1)%len(ids)]
			ctx := context.Background()
			now := time.Now()
			for step := int64(1); pb.Next(); step++ {
				// Goroutines sharing a device may lose a step; both
				// outcomes are one conditional UPDATE.
				if err := s.RecordUse(ctx, store.UseStep{DeviceID: id, Step: step, At: now}); err != nil && !isStale(err) {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkRecordUseReplay: a refused replay (the UPDATE changes nothing,
// then a lookup tells ErrStale from ErrNotFound).
func BenchmarkRecordUseReplay(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		id := seed(b, s, 1)[0]
		ctx := context.Background()
		u := store.UseStep{DeviceID: id, Step: 100, At: time.Now()}
		if err := s.RecordUse(ctx, u); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.RecordUse(ctx, u); !isStale(err) {
				b.Fatalf("replay: %v", err)
			}
		}
	})
}

// BenchmarkDevice: one MFA device by ID.
func BenchmarkDevice(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ids := seed(b, s, 64)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Device(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyLookup: what a verify reads, the user by name and their
// MFA devices, from 16 goroutines per CPU.
func BenchmarkVerifyLookupParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		const n = 64
		seed(b, s, n)
		var next atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				name := fmt.Sprintf("user%d", next.Add(1)%n)
				u, err := s.UserByName(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				ds, err := s.DevicesByUser(ctx, u.ID)
				if err != nil || len(ds) != 2 {
					b.Fatalf("DevicesByUser = %d devices, %v", len(ds), err)
				}
			}
		})
	})
}

func isStale(err error) bool { return err != nil && errors.Is(err, store.ErrStale) }

// BenchmarkSealDevice: sealing and opening a 20-byte TOTP secret.
func BenchmarkSealDevice(b *testing.B) {
	s, err := store.NewSealer(key(1))
	if err != nil {
		b.Fatal(err)
	}
	d := store.Device{UserID: 1, UID: store.NewDeviceUID()}
	secret := make([]byte, 20)
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			if err := s.SealDevice(&d, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.OpenDevice(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckPassword: one sign-in's password check with
// DefaultPasswordParams.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := store.HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !store.CheckPassword(h, "correct horse battery staple") {
			b.Fatal("no match")
		}
	}
}

// BenchmarkUseBatcherParallel: RecordUseParallel's load through a
// UseBatcher, which writes the uses of concurrent callers in shared
// transactions (group commit).
func BenchmarkUseBatcherParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ids := seed(b, s, 64)
		ub := store.NewUseBatcher(s)
		var next atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := ids[int(next.Add(1)-1)%len(ids)]
			ctx := context.Background()
			now := time.Now()
			for step := int64(1); pb.Next(); step++ {
				if err := ub.RecordUse(ctx, store.UseStep{DeviceID: id, Step: step, At: now}); err != nil && !isStale(err) {
					b.Fatal(err)
				}
			}
		})
	})
}

package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// signinFrom posts a sign-in form straight to the handler as if from addr.
func (h *harness) signinFrom(addr, username, password string) *httptest.ResponseRecorder {
	form := url.Values{"username": {username}, "password": {password}}
	req := httptest.NewRequest("POST", "/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// signinFlood sends n concurrent sign-ins for unknown users from addrs
// loopback addresses and returns the peak heap (bytes obtained from the
// OS for the heap and not returned) seen while they ran, with the
// statuses answered.
func signinFlood(t testing.TB, h *harness, n, addrs int) (peak uint64, statuses map[int]int) {
	runtime.GC()
	var stop atomic.Bool
	sampled := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var top uint64
		for !stop.Load() {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapSys-m.HeapReleased)
			time.Sleep(2 * time.Millisecond)
		}
		sampled <- top
	}()
	var mu sync.Mutex
	statuses = map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := h.signinFrom(fmt.Sprintf("127.0.0.%d", 1+i%addrs), fmt.Sprintf("nobody%d", i), "a guessed password")
			mu.Lock()
			statuses[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	stop.Store(true)
	return <-sampled, statuses
}

// TestSignInFloodMemory is the memory exhaustion attack: 150 concurrent
// sign-ins from 15 loopback addresses, each allowed by the per-address
// limit, each costing an argon2id hash of 19 MiB. Bounded hashing keeps
// the heap under 150 MiB; every attempt is answered 401 or 503.
func TestSignInFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes argon2id")
	}
	h := newHarness(t, storeSQLite(t), nil)
	peak, statuses := signinFlood(t, h, 150, 15)
	t.Logf("peak heap %d MiB, statuses %v", peak>>20, statuses)
	if peak > 150<<20 {
		t.Errorf("peak heap %d MiB during 150 concurrent sign-ins, want under 150 MiB", peak>>20)
	}
	for code, n := range statuses {
		if code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
			t.Errorf("%d sign-ins answered %d, want 401 or 503", n, code)
		}
	}
}

// BenchmarkSignInFlood measures the peak heap of the flood of
// TestSignInFloodMemory; see docs/BENCHMARKS.md.
func BenchmarkSignInFlood(b *testing.B) {
	var top uint64
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b, storetest.OpenSQLite(b), nil)
		b.StartTimer()
		peak, _ := signinFlood(b, h, 150, 15)
		top = max(top, peak)
	}
	b.ReportMetric(float64(top)/(1<<20), "peak-heap-MiB")
}

// TestSignInLockoutFromElsewhere is the lock-the-admin-out attack: an
// attacker hammers root's sign-in from one address, and root signs in
// from another with the right password. Refused attempts are audited as
// one row per user and address per minute, with a count.
func TestSignInLockoutFromElsewhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		h := newHarness(t, st, nil)
		h.admin()
		const attacker, owner = "198.51.100.66", "203.0.113.5"
		refused := 0
		for i := range 40 {
			switch code := h.signinFrom(attacker, "root", fmt.Sprintf("guess %d", i)).Code; code {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("attempt %d from the attacker: %d", i, code)
			}
		}
		if refused == 0 {
			t.Fatal("40 wrong passwords at once from one address were never refused")
		}
		// The attacker keeps going, one guess every 10 s.
		for i := range 6 {
			h.clock.Advance(10 * time.Second)
			h.signinFrom(attacker, "root", fmt.Sprintf("slow guess %d", i))
		}
		rec := h.signinFrom(owner, "root", adminPassword)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/users" {
			t.Fatalf("root from another address with the right password: %d %s, want 303 to /users", rec.Code, rec.Header().Get("Location"))
		}

		// One minute later the janitor writes the refusals, one row per
		// user, address and minute.
		h.clock.Advance(time.Minute)
		h.srv.Sweep(context.Background())
		evs, err := st.AuditEvents(context.Background(), 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		var rows []store.AuditEvent
		for _, e := range evs {
			if e.Action == "signin.limited" {
				rows = append(rows, e)
			}
		}
		if len(rows) == 0 || len(rows) > 2 {
			t.Fatalf("%d signin.limited rows for %d+ refusals, want one per minute: %v", len(rows), refused, rows)
		}
		for _, e := range rows {
			if e.IP != attacker || e.Actor != "root" || !strings.Contains(e.Detail, "attempts refused") {
				t.Errorf("signin.limited row %+v, want actor root, address %s and a count", e, attacker)
			}
		}
		if !strings.Contains(rows[len(rows)-1].Detail+rows[0].Detail, fmt.Sprint(refused)) {
			t.Errorf("rows %v do not count the %d refusals of the first minute", rows, refused)
		}
	})
}

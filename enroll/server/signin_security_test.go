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

// signinFrom posts a sign-in form straight to the handler as if from addr,
// from a browser that carries cookies.
func (h *harness) signinFrom(addr, username, password string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	form := url.Values{"username": {username}, "password": {password}}
	req := httptest.NewRequest("POST", "/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = addr + ":40000"
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// deviceCookie returns the device cookie a complete sign-in gave, or
// fails the test.
func deviceCookie(t testing.TB, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if strings.HasPrefix(c.Name, "totpserver_device_") && c.Value != "" {
			return c
		}
	}
	t.Fatalf("sign-in answered %d with no device cookie", rec.Code)
	return nil
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
// from the browser it signed in with before (its device cookie) with the
// right password. A browser without the cookie is refused meanwhile.
// Refused attempts are audited as one row per user and address per
// minute, with a count.
func TestSignInLockoutFromElsewhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		st := open(t)
		h := newHarness(t, st, nil)
		h.admin()
		const attacker, owner = "198.51.100.66", "203.0.113.5"
		dev := deviceCookie(t, h.signinFrom(owner, "root", adminPassword))
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
			if h.signinFrom(attacker, "root", fmt.Sprintf("slow guess %d", i)).Code == http.StatusTooManyRequests {
				refused++
			}
		}
		rec := h.signinFrom(owner, "root", adminPassword, dev)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/users" {
			t.Fatalf("root from its own browser with the right password: %d %s, want 303 to /users", rec.Code, rec.Header().Get("Location"))
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
		counted := 0
		for _, e := range rows {
			var n int
			if _, err := fmt.Sscanf(e.Detail, "%d sign-in attempts refused", &n); err != nil || e.IP != attacker || e.Actor != "root" {
				t.Errorf("signin.limited row %+v, want actor root, address %s and a count", e, attacker)
			}
			counted += n
		}
		if counted != refused {
			t.Errorf("rows %v count %d refusals, want %d", rows, counted, refused)
		}
	})
}

// TestSignInGuessesAcrossAddresses is guessing one account's password
// from many addresses: 50 addresses try root's password every 6 minutes
// for a day. However many addresses, the passwords evaluated stay within
// the per-user budget of clients without a device cookie (burst plus a
// day's refill), and root's own browser signs in at the end.
func TestSignInGuessesAcrossAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes argon2id")
	}
	perUser := Rate{PerSecond: 1.0 / 3600, Burst: 5}
	h := newHarness(t, storeSQLite(t), func(c *Config) { c.Limits.SignInPerUser = perUser })
	h.admin()
	const owner = "203.0.113.5"
	dev := deviceCookie(t, h.signinFrom(owner, "root", adminPassword))
	evaluated := 0
	const step = 6 * time.Minute
	for i := range int(24 * time.Hour / step) {
		for a := range 50 {
			switch code := h.signinFrom(fmt.Sprintf("198.51.%d.%d", 100+a/200, 1+a%200), "root", fmt.Sprintf("guess %d-%d", i, a)).Code; code {
			case http.StatusUnauthorized:
				evaluated++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("guess %d from address %d: %d", i, a, code)
			}
		}
		h.clock.Advance(step)
	}
	bound := perUser.Burst + int(perUser.PerSecond*24*3600)
	t.Logf("%d of %d guesses evaluated in a day, bound %d", evaluated, 50*240, bound)
	if evaluated > bound {
		t.Errorf("%d guesses against root evaluated in a day from 50 addresses, want at most %d", evaluated, bound)
	}
	if code := h.signinFrom(owner, "root", adminPassword).Code; code != http.StatusTooManyRequests {
		t.Errorf("root from a browser without its device cookie during the attack: %d, want 429", code)
	}
	rec := h.signinFrom(owner, "root", adminPassword, dev)
	if rec.Code != http.StatusSeeOther {
		t.Errorf("root from its own browser during the attack: %d, want 303", rec.Code)
	}
}

// TestSignInBusyKeepsOwnBrowser is the flood that keeps every password
// check busy: 250 addresses sign in as random names at once, which
// answers some of them 503. Root, signing in from its own browser (a
// device cookie) five times meanwhile, is never answered 503.
func TestSignInBusyKeepsOwnBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes argon2id")
	}
	h := newHarness(t, storeSQLite(t), func(c *Config) { c.PasswordChecks = 1 })
	h.admin()
	const owner = "203.0.113.5"
	dev := deviceCookie(t, h.signinFrom(owner, "root", adminPassword))
	var stop atomic.Bool
	var busy atomic.Int64
	var wg sync.WaitGroup
	for a := range 250 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if h.signinFrom(fmt.Sprintf("10.1.%d.%d", a/200, 1+a%200), fmt.Sprintf("nobody%d-%d", a, i), "guess").Code == http.StatusServiceUnavailable {
					busy.Add(1)
				}
			}
		})
	}
	for busy.Load() == 0 {
		runtime.Gosched()
	}
	var codes []int
	for range 5 {
		codes = append(codes, h.signinFrom(owner, "root", adminPassword, dev).Code)
	}
	stop.Store(true)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusSeeOther {
			t.Errorf("root's sign-in %d from its own browser during the flood: %d, want 303 (all: %v)", i+1, c, codes)
		}
	}
}

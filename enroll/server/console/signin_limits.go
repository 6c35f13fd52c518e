package console

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/minutes"
)

// Limiter is a set of rate limits, one per key. ratelimit.Limiter is the
// in-process one; a store-backed one can share limits between replicas.
type Limiter interface {
	// Allow takes one event for key at now; when refused it reports how
	// long until one is allowed again.
	Allow(key string, now time.Time) (bool, time.Duration)
}

// pruner is a Limiter that forgets idle keys when the janitor asks.
type pruner interface{ Prune(now time.Time) }

// DefaultPasswordChecks bounds concurrent password checks when
// Config.PasswordChecks is zero: twice the usable CPUs, at most 2. Each
// argon2id check holds 19 MiB, so 2 keep sign-in's live hashing memory
// under 40 MiB (and the heap, garbage included, well under 150 MiB:
// 104–122 MiB at the peak of five floods in a row, against 136 MiB with
// 3) however many attempts arrive at once; more would not check faster on
// the two to four cores the server runs on. One more check is kept for
// browsers with a device cookie (see hashSlots).
func DefaultPasswordChecks() int { return min(2*runtime.GOMAXPROCS(0), 2) }

// passwordWait is how long a sign-in waits for a free password check
// before it is answered 503.
const passwordWait = 500 * time.Millisecond

// hashSlots bounds concurrent password hashing: every sign-in attempt,
// known user or not, runs argon2id, whose memory is the cost an attacker
// can make the server pay. One slot more is kept for browsers with a
// device cookie, so a flood of untrusted attempts that holds every other
// slot does not answer a user's own browser 503.
type hashSlots struct {
	any     chan struct{} // for every attempt
	trusted chan struct{} // only for attempts with a device cookie
}

func newHashSlots(n int) hashSlots {
	return hashSlots{any: make(chan struct{}, n), trusted: make(chan struct{}, 1)}
}

// acquire takes a slot, waiting up to passwordWait; it returns the
// function that gives it back, or nil when none came free. A trusted
// attempt may take the reserved slot too.
func (h hashSlots) acquire(ctx context.Context, trusted bool) (release func()) {
	give := func(c chan struct{}) func() { return func() { <-c } }
	var reserved chan struct{} // nil (never ready) unless trusted
	if trusted {
		reserved = h.trusted
	}
	select {
	case h.any <- struct{}{}:
		return give(h.any)
	case reserved <- struct{}{}:
		return give(reserved)
	default:
	}
	t := time.NewTimer(passwordWait)
	defer t.Stop()
	select {
	case h.any <- struct{}{}:
		return give(h.any)
	case reserved <- struct{}{}:
		return give(reserved)
	case <-t.C:
		return nil
	case <-ctx.Done():
		return nil
	}
}

// refusals aggregates refused sign-in attempts, so a flood of them writes
// one audit row per user and address per minute, with a count, instead of
// one row each.
type refusals struct{ c minutes.Counts[refusalKey] }

type refusalKey struct{ user, ip string }

// maxRefusalKeys bounds the pairs held between flushes; past it, refusals
// are counted under user "*" and address "*".
const maxRefusalKeys = 4096

func (f *refusals) add(user, ip string, now time.Time) {
	f.c.Add(refusalKey{user: user, ip: ip}, now, maxRefusalKeys, func(refusalKey) refusalKey { return refusalKey{user: "*", ip: "*"} })
}

// flush writes one audit row for each pair whose minute has ended by now
// (every pair when all is true).
func (f *refusals) flush(ctx context.Context, c *core.Core, now time.Time, all bool) {
	byKey := func(a, b refusalKey) bool { return a.user < b.user || a.user == b.user && a.ip < b.ip }
	for _, m := range f.c.Take(now, all, byKey) {
		c.Audit(ctx, core.Actor{Name: m.Key.user, IP: m.Key.ip}, "signin.limited", "user:"+m.Key.user,
			fmt.Sprintf("%d sign-in attempts refused (too many) in the minute from %s", m.N, m.Start.Format("15:04 UTC")))
	}
}

// signinLimited checks the sign-in limits for name from ip. A browser
// with a valid device cookie for name (device not "") spends only that
// device's budget: nobody elsewhere can spend it, so nobody can lock the
// user out of their own browsers. Any other client spends first its
// address's budget and then, when the address allows, the budget every
// untrusted client of name shares, whatever its address: guesses against
// one account are bounded however many addresses they come from. It
// reports the wait when refused.
func (s *Console) signinLimited(name, ip, device string, now time.Time) (bool, time.Duration) {
	if device != "" {
		if ok, wait := s.signinDevice.Allow(device, now); !ok {
			return true, wait
		}
		return false, 0
	}
	if ok, wait := s.signinIP.Allow(ip, now); !ok {
		return true, wait
	}
	if ok, wait := s.signinUser.Allow(name, now); !ok {
		return true, wait
	}
	return false, 0
}

// FlushRefusals writes the audit rows of refused sign-in attempts still
// held, whatever their minute; for shutdown and tests.
func (s *Console) FlushRefusals(ctx context.Context) {
	s.refused.flush(ctx, s.core, s.clock.Now(), true)
}

func retryAfter(w http.ResponseWriter, wait time.Duration) int {
	sec := max(int((wait+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", fmt.Sprint(sec))
	return sec
}

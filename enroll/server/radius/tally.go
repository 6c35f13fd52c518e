package radius

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// rejects aggregates Access-Rejects for the audit log, as the console
// aggregates refused sign-ins: a flood of them writes one row per client,
// address, user and reason per minute, with a count, instead of one row
// each. Accepts are written one row each.
type rejects struct {
	mu sync.Mutex
	m  map[rejectKey]int
}

type rejectKey struct {
	actor, ip, target, why string
	minute                 time.Time
}

// maxRejectKeys bounds the rows held between flushes; past it, rejects
// are counted under target and address "*" (with their client and
// reason).
const maxRejectKeys = 4096

func (t *rejects) add(a core.Actor, target, why string, now time.Time) {
	k := rejectKey{actor: a.Name, ip: a.IP, target: target, why: why, minute: now.UTC().Truncate(time.Minute)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[rejectKey]int)
	}
	if _, ok := t.m[k]; !ok && len(t.m) >= maxRejectKeys {
		k.ip, k.target = "*", "*"
	}
	t.m[k]++
}

// flush writes one radius.reject row for each key whose minute has ended
// by now (every key when all is true).
func (t *rejects) flush(ctx context.Context, c *core.Core, now time.Time, all bool) {
	t.mu.Lock()
	var done []rejectKey
	counts := make(map[rejectKey]int)
	for k, n := range t.m {
		if all || !now.Before(k.minute.Add(time.Minute)) {
			done = append(done, k)
			counts[k] = n
			delete(t.m, k)
		}
	}
	t.mu.Unlock()
	sort.Slice(done, func(i, j int) bool {
		a, b := done[i], done[j]
		if !a.minute.Equal(b.minute) {
			return a.minute.Before(b.minute)
		}
		return fmt.Sprint(a.actor, a.ip, a.target, a.why) < fmt.Sprint(b.actor, b.ip, b.target, b.why)
	})
	for _, k := range done {
		why := k.why
		if n := counts[k]; n > 1 {
			why = fmt.Sprintf("%s (%d rejects in the minute from %s)", k.why, n, k.minute.Format("15:04 UTC"))
		}
		c.Audit(ctx, core.Actor{Name: k.actor, IP: k.ip}, "radius.reject", k.target, why)
	}
}

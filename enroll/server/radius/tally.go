package radius

import (
	"context"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll/server/core"
	"github.com/totpbox/totpbox/enroll/server/minutes"
)

// rejects aggregates Access-Rejects for the audit log, as the console
// aggregates refused sign-ins: a flood of them writes one row per client,
// address, user and reason per minute, with a count, instead of one row
// each. Accepts are written one row each.
type rejects struct{ c minutes.Counts[rejectKey] }

type rejectKey struct{ actor, ip, target, why string }

// maxRejectKeys bounds the rows held between flushes; past it, rejects
// are counted under target and address "*" (with their client and
// reason).
const maxRejectKeys = 4096

func (t *rejects) add(a core.Actor, target, why string, now time.Time) {
	t.c.Add(rejectKey{actor: a.Name, ip: a.IP, target: target, why: why}, now, maxRejectKeys, func(k rejectKey) rejectKey {
		k.ip, k.target = "*", "*"
		return k
	})
}

// flush writes one radius.reject row for each key whose minute has ended
// by now (every key when all is true).
func (t *rejects) flush(ctx context.Context, c *core.Core, now time.Time, all bool) {
	byKey := func(a, b rejectKey) bool {
		return fmt.Sprint(a.actor, a.ip, a.target, a.why) < fmt.Sprint(b.actor, b.ip, b.target, b.why)
	}
	for _, m := range t.c.Take(now, all, byKey) {
		why := m.Key.why
		if m.N > 1 {
			why = fmt.Sprintf("%s (%d rejects in the minute from %s)", m.Key.why, m.N, m.Start.Format("15:04 UTC"))
		}
		c.Audit(ctx, core.Actor{Name: m.Key.actor, IP: m.Key.ip}, "radius.reject", m.Key.target, why)
	}
}

package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testVerifyDaily checks the users' daily verify counts: added counts
// add up per (user, UTC day), also within one call, read from a day on oldest first, skipped
// for a missing user, pruned by day.
func testVerifyDaily(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkUser(t, s, "vd-alice")
	b := mkUser(t, s, "vd-bob")
	day0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return day0.AddDate(0, 0, n) }
	vd := func(u store.User, at time.Time, ok, fail, lock int64) store.VerifyDay {
		return store.VerifyDay{UserID: u.ID, Day: at, Successes: ok, Failures: fail, Lockouts: lock}
	}

	must(t, "AddVerifyDays(empty)", s.AddVerifyDays(ctx, nil))
	// t0 is 10:00 on day0: the day is its midnight.
	must(t, "AddVerifyDays", s.AddVerifyDays(ctx, []store.VerifyDay{
		vd(a, t0, 3, 1, 0),
		vd(a, day(1).Add(23*time.Hour+59*time.Minute), 1, 0, 0),
		vd(b, t0, 0, 5, 1),
	}))
	// A second server adds its counts for the same days.
	must(t, "AddVerifyDays(again)", s.AddVerifyDays(ctx, []store.VerifyDay{
		vd(a, t0.Add(time.Hour), 2, 2, 1),
		vd(a, day(3), 0, 4, 0),
		vd(a, day(3).Add(time.Hour), 1, 0, 0),   // the same user and day again in one call: added too
		vd(store.User{ID: 999999}, t0, 1, 1, 1), // no such user: skipped
	}))

	got, err := s.VerifyDays(ctx, a.ID, day(-30))
	must(t, "VerifyDays", err)
	want := []store.VerifyDay{vd(a, day(0), 5, 3, 1), vd(a, day(1), 1, 0, 0), vd(a, day(3), 1, 4, 0)}
	if g, w := fmtDays(got), fmtDays(want); g != w {
		t.Errorf("VerifyDays(alice) =\n%s\nwant\n%s", g, w)
	}
	got, err = s.VerifyDays(ctx, a.ID, day(1).Add(15*time.Hour)) // from day 1 on, whatever the hour
	must(t, "VerifyDays(since)", err)
	if g, w := fmtDays(got), fmtDays(want[1:]); g != w {
		t.Errorf("VerifyDays(alice, since day 1) =\n%s\nwant\n%s", g, w)
	}
	got, err = s.VerifyDays(ctx, b.ID, day(0))
	must(t, "VerifyDays(bob)", err)
	if g, w := fmtDays(got), fmtDays([]store.VerifyDay{vd(b, day(0), 0, 5, 1)}); g != w {
		t.Errorf("VerifyDays(bob) =\n%s\nwant\n%s", g, w)
	}
	if got, _ := s.VerifyDays(ctx, 999999, day(0)); len(got) != 0 {
		t.Errorf("VerifyDays(missing user) = %v, want none", got)
	}

	n, err := s.DeleteVerifyDays(ctx, day(1).Add(12*time.Hour)) // before day 1
	must(t, "DeleteVerifyDays", err)
	if n != 2 { // alice's and bob's day 0
		t.Errorf("DeleteVerifyDays = %d, want 2", n)
	}
	got, err = s.VerifyDays(ctx, a.ID, day(0))
	must(t, "VerifyDays(after prune)", err)
	if g, w := fmtDays(got), fmtDays(want[1:]); g != w {
		t.Errorf("VerifyDays after prune =\n%s\nwant\n%s", g, w)
	}
}

func fmtDays(ds []store.VerifyDay) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  user %d %s ok=%d fail=%d lock=%d\n", d.UserID, d.Day.Format(time.RFC3339Nano), d.Successes, d.Failures, d.Lockouts)
	}
	return b.String()
}

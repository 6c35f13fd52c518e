package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

type usersData struct {
	Query string
	Users []store.User
	More  bool
	// Devices sums up each user's MFA devices, by user ID.
	Devices map[int64]deviceSummary
}

// deviceSummary is what the Users list says of one user's MFA devices:
// how many are active and pending, and whether any is locked or out of
// sync (the flags an admin looks for).
type deviceSummary struct {
	Active, Pending   int
	Locked, OutOfSync bool
}

// summarize sums up devs at now.
func summarize(devs []store.Device, now time.Time) deviceSummary {
	var d deviceSummary
	for _, dev := range devs {
		if dev.Status == store.StatusActive {
			d.Active++
		} else {
			d.Pending++
		}
		d.Locked = d.Locked || dev.LockedIndefinitely() || dev.LockedUntil.After(now)
		d.OutOfSync = d.OutOfSync || dev.Status == store.StatusActive && dev.OutOfSync
	}
	return d
}

const usersPageSize = 200

// usersList is the Users page: a search box and the matching users.
func (s *Console) usersList(w http.ResponseWriter, r *http.Request, a *auth) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 128 {
		q = q[:128]
	}
	users, err := s.store.ListUsers(r.Context(), q, usersPageSize+1)
	if err != nil {
		s.errorPage(w, r, a, err)
		return
	}
	d := usersData{Query: q, Users: users}
	if len(users) > usersPageSize {
		d.Users, d.More = users[:usersPageSize], true
	}
	now := s.clock.Now()
	d.Devices = make(map[int64]deviceSummary, len(d.Users))
	for _, u := range d.Users {
		devs, err := s.store.DevicesByUser(r.Context(), u.ID)
		if err != nil {
			s.errorPage(w, r, a, err)
			return
		}
		d.Devices[u.ID] = summarize(devs, now)
	}
	s.render(w, r, a, http.StatusOK, "users", page{Title: "Users", Section: "users", D: d})
}

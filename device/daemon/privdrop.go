package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Identity is the numeric user totpd becomes after opening the hardware.
type Identity struct {
	// UID and GID are the user and primary group.
	UID, GID int
	// Groups are the supplementary groups; empty means none besides GID.
	Groups []int
}

// String returns "uid:gid".
func (id Identity) String() string { return strconv.Itoa(id.UID) + ":" + strconv.Itoa(id.GID) }

// runAs is run_as split into its user and group parts.
type runAs struct {
	user, group string
}

// parseRunAs splits a run_as value: "user", "user:group", "uid" or
// "uid:gid". Names follow the usual Unix rules; numbers are 0..2^31-1.
func parseRunAs(s string) (runAs, error) {
	u, g, hasGroup := strings.Cut(s, ":")
	if u == "" || (hasGroup && g == "") {
		return runAs{}, fmt.Errorf("run_as: %q is not user, user:group, uid or uid:gid", s)
	}
	for _, part := range []string{u, g} {
		if part == "" {
			continue
		}
		if _, err := strconv.ParseUint(part, 10, 31); err == nil {
			continue
		}
		if !validName(part) {
			return runAs{}, fmt.Errorf("run_as: %q: %q is neither a number nor a user or group name", s, part)
		}
	}
	if u == "nobody" || u == "65534" {
		return runAs{}, fmt.Errorf("run_as: %q is nobody (uid 65534), which other services share: any of them could read the vault and answer on totpd's socket; give totpd a user of its own, such as \"2317:2317\"", s)
	}
	return runAs{user: u, group: g}, nil
}

// validName reports whether s is a portable user or group name.
func validName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return s[0] < '0' || s[0] > '9' // all digits would be a number
}

// userDB looks users and groups up; nil fields mean the system's (os/user,
// which reads /etc/passwd and /etc/group when built without cgo).
type userDB struct {
	lookupUser  func(name string) (*user.User, error)
	lookupGroup func(name string) (*user.Group, error)
	groupIDs    func(u *user.User) ([]string, error)
}

func (db userDB) withDefaults() userDB {
	if db.lookupUser == nil {
		db.lookupUser = user.Lookup
	}
	if db.lookupGroup == nil {
		db.lookupGroup = user.LookupGroup
	}
	if db.groupIDs == nil {
		db.groupIDs = (*user.User).GroupIds
	}
	return db
}

// resolve turns r into numbers. A user given by name brings its primary
// group (unless a group is given) and its supplementary groups from the
// group database; a numeric user without a group takes the same number as
// its group, and no supplementary groups.
func (r runAs) resolve(db userDB) (Identity, error) {
	db = db.withDefaults()
	var id Identity
	var named *user.User
	if n, err := strconv.Atoi(r.user); err == nil {
		id.UID, id.GID = n, n
	} else {
		u, err := db.lookupUser(r.user)
		if err != nil {
			return Identity{}, fmt.Errorf("run_as: no user %q", r.user)
		}
		if id.UID, err = strconv.Atoi(u.Uid); err != nil {
			return Identity{}, fmt.Errorf("run_as: user %q has a non-numeric uid %q", r.user, u.Uid)
		}
		if id.GID, err = strconv.Atoi(u.Gid); err != nil {
			return Identity{}, fmt.Errorf("run_as: user %q has a non-numeric gid %q", r.user, u.Gid)
		}
		named = u
	}
	if r.group != "" {
		if n, err := strconv.Atoi(r.group); err == nil {
			id.GID = n
		} else {
			g, err := db.lookupGroup(r.group)
			if err != nil {
				return Identity{}, fmt.Errorf("run_as: no group %q", r.group)
			}
			if id.GID, err = strconv.Atoi(g.Gid); err != nil {
				return Identity{}, fmt.Errorf("run_as: group %q has a non-numeric gid %q", r.group, g.Gid)
			}
		}
	}
	if named != nil {
		gids, err := db.groupIDs(named)
		if err != nil {
			return Identity{}, fmt.Errorf("run_as: groups of %q: %v", r.user, err)
		}
		for _, s := range gids {
			if n, err := strconv.Atoi(s); err == nil && n != id.GID {
				id.Groups = append(id.Groups, n)
			}
		}
	}
	return id, nil
}

// dropPlan is what totpd does about its privileges, decided before the
// hardware is opened.
type dropPlan struct {
	// Drop says to become ID once the hardware is open.
	Drop bool
	ID   Identity
	// Warning, when set, is logged: root without run_as.
	Warning string
}

// DefaultRunAs is who a totpd started as root becomes when run_as is
// empty: the Debian package's user when the system has it, else
// DefaultRunAsFallback, a user id of totpd's own (gokrazy has no user
// database). Never nobody, which other services share (see parseRunAs).
const (
	DefaultRunAs         = "totpbox"
	DefaultRunAsFallback = "2317:2317"
)

// planDrop decides, for a process with effective uid euid and the run_as
// setting, whether and to whom totpd drops its privileges. Only root
// drops: an unprivileged totpd (systemd's User=) is already who it should
// be. Root drops by default; run_as "root" (or "0") keeps it, with a
// warning, for a panel that must be re-opened after a hot-plug.
func planDrop(euid int, setting string, db userDB) (dropPlan, error) {
	if setting == "" {
		if euid != 0 {
			return dropPlan{}, nil
		}
		setting = DefaultRunAsFallback
		if _, err := db.withDefaults().lookupUser(DefaultRunAs); err == nil {
			setting = DefaultRunAs
		}
	}
	r, err := parseRunAs(setting)
	if err != nil {
		return dropPlan{}, err
	}
	id, err := r.resolve(db)
	if err != nil {
		return dropPlan{}, err
	}
	if euid != 0 {
		return dropPlan{ID: id}, nil
	}
	if id.UID == 0 {
		return dropPlan{ID: id, Warning: "running as root (run_as: " + setting + "); every later failure runs with full privileges"}, nil
	}
	return dropPlan{Drop: true, ID: id}, nil
}

// chownTree gives dir and everything under it to id, creating dir (0700)
// when missing, so that totpd can still write its state after dropping
// privileges. Symbolic links are changed, not followed.
func chownTree(dir string, id Identity) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := os.Lchown(path, id.UID, id.GID); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		return nil
	})
}

// dropPrivileges makes every thread of the process id: supplementary
// groups, then group, then user. It then checks that root cannot be
// regained.
func dropPrivileges(id Identity) error {
	groups := id.Groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("run_as: setgroups: %w", err)
	}
	if err := syscall.Setgid(id.GID); err != nil {
		return fmt.Errorf("run_as: setgid %d: %w", id.GID, err)
	}
	if err := syscall.Setuid(id.UID); err != nil {
		return fmt.Errorf("run_as: setuid %d: %w", id.UID, err)
	}
	if os.Geteuid() != id.UID || os.Getegid() != id.GID {
		return fmt.Errorf("run_as: still uid %d gid %d after dropping to %s", os.Geteuid(), os.Getegid(), id)
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("run_as: root could be regained after dropping privileges")
	}
	return nil
}

package store

import (
	"context"
	"time"
)

// DirectoryLink ties a user to their entry in an identity source.
type DirectoryLink struct {
	UserID int64
	// Source names the identity source: "ldap" or "scim".
	Source string
	// ExternalID is the entry's stable id in the source (an LDAP DN, a
	// SCIM externalId or id).
	ExternalID string
	// DisabledBySource: the source disabled the user (they left, or are
	// disabled there); only such users does it enable again.
	DisabledBySource bool
}

// Directory is what the directory sync and SCIM keep beside users: the
// link of each directory user to its entry.
type Directory interface {
	// LinkUser stores or replaces the link of l.UserID; ErrConflict when
	// another user holds (Source, ExternalID), ErrNotFound for no user.
	LinkUser(ctx context.Context, l DirectoryLink) error
	// DirectoryLinks returns the links of one source.
	DirectoryLinks(ctx context.Context, source string) ([]DirectoryLink, error)
	// LinkByExternalID returns the link of a source's entry; ErrNotFound
	// when no user is linked to it.
	LinkByExternalID(ctx context.Context, source, externalID string) (DirectoryLink, error)
	// UserLink returns a user's link; ErrNotFound for a local user.
	UserLink(ctx context.Context, userID int64) (DirectoryLink, error)
	// UnlinkUser removes a user's link: the user becomes local.
	UnlinkUser(ctx context.Context, userID int64) error
}

// Leases let one replica at a time run a periodic job.
type Leases interface {
	// TryLease takes or renews the lease name for holder until now+ttl. It
	// reports whether holder has it: true when the lease was free, had
	// run out, or was already holder's.
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives up holder's lease name, if held.
	ReleaseLease(ctx context.Context, name, holder string) error
}

var (
	_ Directory = (*sqlStore)(nil)
	_ Leases    = (*sqlStore)(nil)
)

func (s *sqlStore) LinkUser(ctx context.Context, l DirectoryLink) error {
	_, err := s.exec(ctx, `INSERT INTO directory_users (user_id, source, external_id, disabled_by_source) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET source = excluded.source, external_id = excluded.external_id,
		disabled_by_source = excluded.disabled_by_source`, l.UserID, l.Source, l.ExternalID, l.DisabledBySource)
	return s.wrap("link user", err)
}

func scanLink(r rowScanner) (DirectoryLink, error) {
	var l DirectoryLink
	err := r.Scan(&l.UserID, &l.Source, &l.ExternalID, &l.DisabledBySource)
	return l, err
}

func (s *sqlStore) DirectoryLinks(ctx context.Context, source string) ([]DirectoryLink, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, source, external_id, disabled_by_source FROM directory_users
		WHERE source = ? ORDER BY user_id`, source)
	return collect(s, "directory links", rows, err, scanLink)
}

func (s *sqlStore) UserLink(ctx context.Context, userID int64) (DirectoryLink, error) {
	l, err := scanLink(s.r.QueryRowContext(ctx, `SELECT user_id, source, external_id, disabled_by_source FROM directory_users
		WHERE user_id = ?`, userID))
	return l, s.wrap("user link", err)
}

func (s *sqlStore) LinkByExternalID(ctx context.Context, source, externalID string) (DirectoryLink, error) {
	l, err := scanLink(s.r.QueryRowContext(ctx, `SELECT user_id, source, external_id, disabled_by_source FROM directory_users
		WHERE source = ? AND external_id = ?`, source, externalID))
	return l, s.wrap("link by external id", err)
}

func (s *sqlStore) UnlinkUser(ctx context.Context, userID int64) error {
	_, err := s.exec(ctx, `DELETE FROM directory_users WHERE user_id = ?`, userID)
	return s.wrap("unlink user", err)
}

// TryLease is one conditional upsert: the row is written only when it is
// new, holder's own, or run out; RowsAffected says which.
func (s *sqlStore) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, s.d.timeArg(now.Add(ttl).UTC()), s.d.timeArg(now.UTC()))
	if err != nil {
		return false, s.wrap("take lease", err)
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap("take lease", err)
}

func (s *sqlStore) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return s.wrap("release lease", err)
}

package store

import (
	"context"
	"strings"
	"time"
)

// SCIMUser is what a SCIM client said of a user beyond the users row.
type SCIMUser struct {
	UserID int64
	// ID is the SCIM resource id the server gave the user; it is also
	// the external id of the user's directory link (source "scim").
	ID string
	// ExternalID is the client's own id of the user (may be empty).
	ExternalID string
	GivenName  string
	FamilyName string
	// Active is the client's active attribute. The user is disabled when
	// it is false (and when the user is outside the mapped users group).
	Active bool
	// Deleted: the client deleted the resource; the user is disabled and
	// hidden from SCIM, their MFA devices kept.
	Deleted bool
	Created time.Time
	Updated time.Time
	// User is the user row, filled by the reads.
	User User
}

// SCIMUserQuery selects SCIM users that are not deleted; empty fields
// match any. UserName ignores case, ExternalID does not (RFC 7643).
type SCIMUserQuery struct {
	UserName   string
	ExternalID string
	// Offset skips that many users (ordered by user id); Limit bounds
	// how many come back (<= 0: none, only the total).
	Offset, Limit int
}

// SCIMGroup is a group a SCIM client pushed, with its members' user ids.
type SCIMGroup struct {
	ID          string
	DisplayName string
	ExternalID  string
	Members     []int64
	Created     time.Time
	Updated     time.Time
}

// SCIMGroupQuery selects groups; empty fields match any. DisplayName
// ignores case.
type SCIMGroupQuery struct {
	DisplayName   string
	ExternalID    string
	Offset, Limit int
}

// SCIM keeps what SCIM clients provision: users' SCIM attributes and
// groups with their members.
type SCIM interface {
	// PutSCIMUser stores or replaces the SCIM row of u.UserID (Created
	// kept on replace); ErrConflict when ID is another user's,
	// ErrNotFound for no user.
	PutSCIMUser(ctx context.Context, u SCIMUser) error
	// PutSCIMUsers stores the SCIM rows of many users in one
	// transaction, all or nothing: a large import, or a test's seed.
	PutSCIMUsers(ctx context.Context, us []SCIMUser) error
	// SCIMUserByID returns the user with SCIM id id, deleted or not;
	// ErrNotFound when none.
	SCIMUserByID(ctx context.Context, id string) (SCIMUser, error)
	// SCIMUserByUserID returns a user's SCIM row; ErrNotFound when the
	// user never came by SCIM.
	SCIMUserByUserID(ctx context.Context, userID int64) (SCIMUser, error)
	// SCIMUsers returns a page of the users q selects and how many it
	// selects in all.
	SCIMUsers(ctx context.Context, q SCIMUserQuery) ([]SCIMUser, int, error)

	// PutSCIMGroup stores or replaces group g with exactly its members;
	// ErrConflict when another group has its display name (in any case),
	// ErrNotFound when a member is no user.
	PutSCIMGroup(ctx context.Context, g SCIMGroup) error
	// SCIMGroupByID returns a group with its members; ErrNotFound.
	SCIMGroupByID(ctx context.Context, id string) (SCIMGroup, error)
	// SCIMGroups returns a page of the groups q selects, with members,
	// and how many it selects in all.
	SCIMGroups(ctx context.Context, q SCIMGroupQuery) ([]SCIMGroup, int, error)
	// DeleteSCIMGroup removes a group; ErrNotFound when none.
	DeleteSCIMGroup(ctx context.Context, id string) error
	// SCIMGroupsOf returns the groups (without members) user userID is
	// a member of, ordered by display name.
	SCIMGroupsOf(ctx context.Context, userID int64) ([]SCIMGroup, error)
}

var _ SCIM = (*sqlStore)(nil)

const scimUserCols = "s.user_id, s.scim_id, s.external_id, s.given_name, s.family_name, s.active, s.deleted, s.created, s.updated, " +
	"u.id, u.username, u.display_name, u.email, u.password_hash, u.admin, u.disabled, u.created"

func scanSCIMUser(r rowScanner) (SCIMUser, error) {
	var s SCIMUser
	u := &s.User
	err := r.Scan(&s.UserID, &s.ID, &s.ExternalID, &s.GivenName, &s.FamilyName, &s.Active, &s.Deleted,
		nullTime{&s.Created}, nullTime{&s.Updated},
		&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, nullTime{&u.Created})
	return s, err
}

const putSCIMUser = `INSERT INTO scim_users (user_id, scim_id, external_id, given_name, family_name, active, deleted, created, updated)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (user_id) DO UPDATE SET scim_id = excluded.scim_id, external_id = excluded.external_id,
	given_name = excluded.given_name, family_name = excluded.family_name, active = excluded.active,
	deleted = excluded.deleted, updated = excluded.updated`

func (s *sqlStore) scimUserArgs(u SCIMUser) []any {
	now := micro(time.Now())
	if u.Created.IsZero() {
		u.Created = now
	}
	if u.Updated.IsZero() {
		u.Updated = now
	}
	return []any{u.UserID, u.ID, u.ExternalID, u.GivenName, u.FamilyName, u.Active, u.Deleted,
		s.d.timeArg(micro(u.Created)), s.d.timeArg(micro(u.Updated))}
}

func (s *sqlStore) PutSCIMUser(ctx context.Context, u SCIMUser) error {
	_, err := s.exec(ctx, putSCIMUser, s.scimUserArgs(u)...)
	return s.wrap("put scim user", err)
}

func (s *sqlStore) PutSCIMUsers(ctx context.Context, us []SCIMUser) error {
	return s.tx(ctx, "put scim users", func(t *txq) error {
		for _, u := range us {
			if _, err := t.exec(ctx, putSCIMUser, s.scimUserArgs(u)...); err != nil {
				return s.wrap("user "+u.ID, err)
			}
		}
		return nil
	})
}

func (s *sqlStore) SCIMUserByID(ctx context.Context, id string) (SCIMUser, error) {
	u, err := scanSCIMUser(s.r.QueryRowContext(ctx, `SELECT `+scimUserCols+` FROM scim_users s JOIN users u ON u.id = s.user_id
		WHERE s.scim_id = ?`, id))
	return u, s.wrap("scim user", err)
}

func (s *sqlStore) SCIMUserByUserID(ctx context.Context, userID int64) (SCIMUser, error) {
	u, err := scanSCIMUser(s.r.QueryRowContext(ctx, `SELECT `+scimUserCols+` FROM scim_users s JOIN users u ON u.id = s.user_id
		WHERE s.user_id = ?`, userID))
	return u, s.wrap("scim user", err)
}

func (s *sqlStore) SCIMUsers(ctx context.Context, q SCIMUserQuery) ([]SCIMUser, int, error) {
	where := ` FROM scim_users s JOIN users u ON u.id = s.user_id WHERE NOT s.deleted`
	var args []any
	if q.UserName != "" {
		where += ` AND u.username_key = ?`
		args = append(args, fold(q.UserName))
	}
	if q.ExternalID != "" {
		where += ` AND s.external_id = ?`
		args = append(args, q.ExternalID)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.wrap("count scim users", err)
	}
	if q.Limit <= 0 || q.Offset >= total {
		return nil, total, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+scimUserCols+where+` ORDER BY s.user_id LIMIT ? OFFSET ?`,
		append(args, q.Limit, max(q.Offset, 0))...)
	us, err := collect(s, "scim users", rows, err, scanSCIMUser)
	return us, total, err
}

func (s *sqlStore) PutSCIMGroup(ctx context.Context, g SCIMGroup) error {
	now := micro(time.Now())
	if g.Created.IsZero() {
		g.Created = now
	}
	if g.Updated.IsZero() {
		g.Updated = now
	}
	return s.tx(ctx, "put scim group", func(t *txq) error {
		if _, err := t.exec(ctx, `INSERT INTO scim_groups (scim_id, display_name, display_key, external_id, created, updated)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (scim_id) DO UPDATE SET display_name = excluded.display_name, display_key = excluded.display_key,
			external_id = excluded.external_id, updated = excluded.updated`,
			g.ID, g.DisplayName, fold(g.DisplayName), g.ExternalID, s.d.timeArg(micro(g.Created)), s.d.timeArg(micro(g.Updated))); err != nil {
			return s.wrap("group", err)
		}
		if _, err := t.exec(ctx, `DELETE FROM scim_group_members WHERE group_id = ?`, g.ID); err != nil {
			return err
		}
		seen := make(map[int64]bool, len(g.Members))
		for _, m := range g.Members {
			if seen[m] {
				continue
			}
			seen[m] = true
			if _, err := t.exec(ctx, `INSERT INTO scim_group_members (group_id, user_id) VALUES (?, ?)`, g.ID, m); err != nil {
				return s.wrap("member", err)
			}
		}
		return nil
	})
}

func scanSCIMGroup(r rowScanner) (SCIMGroup, error) {
	var g SCIMGroup
	err := r.Scan(&g.ID, &g.DisplayName, &g.ExternalID, nullTime{&g.Created}, nullTime{&g.Updated})
	return g, err
}

const scimGroupCols = "scim_id, display_name, external_id, created, updated"

// groupMembers fills the members of gs.
func (s *sqlStore) groupMembers(ctx context.Context, gs []SCIMGroup) error {
	for i := range gs {
		rows, err := s.r.QueryContext(ctx, `SELECT user_id FROM scim_group_members WHERE group_id = ? ORDER BY user_id`, gs[i].ID)
		ids, err := collect(s, "scim group members", rows, err, func(r rowScanner) (int64, error) {
			var id int64
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		gs[i].Members = ids
	}
	return nil
}

func (s *sqlStore) SCIMGroupByID(ctx context.Context, id string) (SCIMGroup, error) {
	g, err := scanSCIMGroup(s.r.QueryRowContext(ctx, `SELECT `+scimGroupCols+` FROM scim_groups WHERE scim_id = ?`, id))
	if err != nil {
		return g, s.wrap("scim group", err)
	}
	gs := []SCIMGroup{g}
	err = s.groupMembers(ctx, gs)
	return gs[0], err
}

func (s *sqlStore) SCIMGroups(ctx context.Context, q SCIMGroupQuery) ([]SCIMGroup, int, error) {
	var conds []string
	var args []any
	if q.DisplayName != "" {
		conds, args = append(conds, `display_key = ?`), append(args, fold(q.DisplayName))
	}
	if q.ExternalID != "" {
		conds, args = append(conds, `external_id = ?`), append(args, q.ExternalID)
	}
	where := ` FROM scim_groups`
	if len(conds) > 0 {
		where += ` WHERE ` + strings.Join(conds, " AND ")
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.wrap("count scim groups", err)
	}
	if q.Limit <= 0 || q.Offset >= total {
		return nil, total, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+scimGroupCols+where+` ORDER BY display_key LIMIT ? OFFSET ?`,
		append(args, q.Limit, max(q.Offset, 0))...)
	gs, err := collect(s, "scim groups", rows, err, scanSCIMGroup)
	if err != nil {
		return nil, 0, err
	}
	return gs, total, s.groupMembers(ctx, gs)
}

func (s *sqlStore) DeleteSCIMGroup(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM scim_groups WHERE scim_id = ?`, id)
	return s.affected("delete scim group", res, err)
}

func (s *sqlStore) SCIMGroupsOf(ctx context.Context, userID int64) ([]SCIMGroup, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT g.scim_id, g.display_name, g.external_id, g.created, g.updated
		FROM scim_groups g JOIN scim_group_members m ON m.group_id = g.scim_id
		WHERE m.user_id = ? ORDER BY g.display_key`, userID)
	return collect(s, "scim groups of user", rows, err, scanSCIMGroup)
}

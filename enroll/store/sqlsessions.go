package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

const tokenCols = "id, name, hash, created, last_used, revoked, role, scope"

func scanToken(row rowScanner) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Name, &t.Hash, nullTime{&t.Created}, nullTime{&t.LastUsed}, &t.Revoked, &t.Role, &t.Scope)
	return t, err
}

func (s *sqlStore) CreateToken(ctx context.Context, t *Token) error {
	if len(t.Hash) == 0 {
		return errors.New("create api token: empty hash")
	}
	c := *t
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	if c.Role == "" {
		c.Role = "admin"
	}
	c.Created, c.LastUsed = micro(c.Created), micro(c.LastUsed)
	err := s.w.QueryRowContext(ctx, `INSERT INTO api_tokens (name, hash, created, last_used, revoked, role, scope)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.Name, c.Hash, s.d.timeArg(c.Created), s.d.timeArg(c.LastUsed), c.Revoked, c.Role, c.Scope).Scan(&c.ID)
	if err != nil {
		return s.wrap("create api token", err)
	}
	*t = c
	return nil
}

func (s *sqlStore) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	return t, s.wrap("api token", err)
}

func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
	return collect(s, "list api tokens", rows, err, scanToken)
}

func (s *sqlStore) RevokeToken(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET revoked = TRUE WHERE name = ? AND NOT revoked`, name)
	return s.affected("revoke api token "+strconv.Quote(name), res, err)
}

func (s *sqlStore) TouchToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, s.d.timeArg(micro(at)), id)
	return s.affected("touch api token", res, err)
}

func (s *sqlStore) CreateSession(ctx context.Context, se Session) error {
	if len(se.Hash) == 0 {
		return errors.New("create session: empty hash")
	}
	if se.Created.IsZero() {
		se.Created = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO sessions (hash, user_id, created, expires_at, csrf, mfa_pending, role, sites)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		se.Hash, se.UserID, s.d.timeArg(micro(se.Created)), s.d.timeArg(micro(se.ExpiresAt)), se.CSRF, se.MFAPending,
		se.Role, joinSites(se.Sites))
	return s.wrap("create session", err)
}

func (s *sqlStore) SessionByHash(ctx context.Context, hash []byte) (Session, error) {
	var se Session
	var sites string
	err := s.r.QueryRowContext(ctx, `SELECT hash, user_id, created, expires_at, csrf, mfa_pending, role, sites
		FROM sessions WHERE hash = ?`, hash).
		Scan(&se.Hash, &se.UserID, nullTime{&se.Created}, nullTime{&se.ExpiresAt}, &se.CSRF, &se.MFAPending, &se.Role, &sites)
	se.Sites = splitSites(sites)
	return se, s.wrap("session", err)
}

func (s *sqlStore) UpdateSession(ctx context.Context, se Session) error {
	res, err := s.exec(ctx, `UPDATE sessions SET user_id = ?, expires_at = ?, csrf = ?, mfa_pending = ?, role = ?, sites = ? WHERE hash = ?`,
		se.UserID, s.d.timeArg(micro(se.ExpiresAt)), se.CSRF, se.MFAPending, se.Role, joinSites(se.Sites), se.Hash)
	return s.affected("update session", res, err)
}

// joinSites stores a session's sites in one column, comma-separated.
func joinSites(sites []string) string { return strings.Join(sites, ",") }

// splitSites reads what joinSites stored; nil for none.
func splitSites(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (s *sqlStore) DeleteSession(ctx context.Context, hash []byte) error {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return s.affected("delete session", res, err)
}

func (s *sqlStore) DeleteUserSessions(ctx context.Context, userID int64) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return s.wrap("delete sessions of user", err)
}

func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at < ?`, s.d.timeArg(micro(now)))
	return s.wrap("delete expired sessions", err)
}

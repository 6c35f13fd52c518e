package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

const userCols = "id, username, display_name, email, password_hash, admin, disabled, created"

func scanUser(row rowScanner) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, nullTime{&u.Created})
	return u, err
}

func (s *sqlStore) CreateUser(ctx context.Context, u *User) error {
	if u.Username == "" {
		return errors.New("create user: empty username")
	}
	created := u.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC().Truncate(time.Microsecond)
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO users
		(username, username_key, display_name, email, password_hash, admin, disabled, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Username, fold(u.Username), u.DisplayName, u.Email, u.PasswordHash, u.Admin, u.Disabled, s.d.timeArg(created),
	).Scan(&id)
	if err != nil {
		return s.wrap("create user", err)
	}
	u.ID, u.Created = id, created
	return nil
}

func (s *sqlStore) UserByName(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username_key = ?`, fold(username)))
	return u, s.wrap("user by name", err)
}

func (s *sqlStore) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, s.wrap("user by id", err)
}

// likeEscaper escapes LIKE's wildcards, with \ as the escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (s *sqlStore) ListUsers(ctx context.Context, query string, limit int) ([]User, error) {
	q := `SELECT ` + userCols + ` FROM users`
	var args []any
	if query != "" {
		pat := "%" + likeEscaper.Replace(query) + "%"
		op := s.d.ilike()
		q += ` WHERE username ` + op + ` ? ESCAPE '\' OR display_name ` + op + ` ? ESCAPE '\' OR email ` + op + ` ? ESCAPE '\'`
		args = append(args, pat, pat, pat)
	}
	q += ` ORDER BY username_key, id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	return collect(s, "list users", rows, err, scanUser)
}

func (s *sqlStore) UpdateUser(ctx context.Context, u User) error {
	res, err := s.exec(ctx, `UPDATE users SET username = ?, username_key = ?, display_name = ?, email = ?,
		password_hash = ?, admin = ?, disabled = ? WHERE id = ?`,
		u.Username, fold(u.Username), u.DisplayName, u.Email, u.PasswordHash, u.Admin, u.Disabled, u.ID)
	return s.affected("update user", res, err)
}

func (s *sqlStore) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE admin AND NOT disabled`).Scan(&n)
	return n, s.wrap("count admins", err)
}

package store

import (
	"context"
	"errors"
	"time"
)

func (s *sqlStore) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if keyID == "" || nonce == "" {
		return errors.New("use nonce: empty key id or nonce")
	}
	// One INSERT: the primary key decides which of several concurrent
	// uses wins, on every replica sharing the database.
	_, err := s.exec(ctx, `INSERT INTO request_nonces (key_id, nonce, expires) VALUES (?, ?, ?)`,
		keyID, nonce, s.d.timeArg(micro(expires)))
	return s.wrap("use nonce", err)
}

func (s *sqlStore) DeleteExpiredNonces(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM request_nonces WHERE expires <= ?`, s.d.timeArg(micro(now)))
	if err != nil {
		return 0, s.wrap("delete expired nonces", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("delete expired nonces", err)
}

package store

import (
	"context"
)

// ClaimMasterKey binds the database to master key id unless it is bound
// already, and returns the id it is bound to.
func (s *sqlStore) ClaimMasterKey(ctx context.Context, id string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO master_key_claim (one, key_id) VALUES (1, ?) ON CONFLICT (one) DO NOTHING`, id); err != nil {
		return "", s.wrap("claim master key", err)
	}
	var got string
	err := s.w.QueryRowContext(ctx, `SELECT key_id FROM master_key_claim WHERE one = 1`).Scan(&got)
	return got, s.wrap("read master key claim", err)
}

// MoveMasterKeyClaim binds the database to master key to, when it is
// bound to from (a rotation).
func (s *sqlStore) MoveMasterKeyClaim(ctx context.Context, from, to string) error {
	_, err := s.exec(ctx, `UPDATE master_key_claim SET key_id = ? WHERE one = 1 AND key_id = ?`, to, from)
	return s.wrap("move master key claim", err)
}

// SealedKeyIDs returns the distinct master key ids the sealed secrets of
// MFA devices use, and the id the database is bound to (ClaimMasterKey),
// sorted.
func (s *sqlStore) SealedKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT secret_key_id FROM mfa_devices WHERE secret_key_id <> ''
		UNION SELECT secret_key_id FROM hardware_tokens WHERE secret_key_id <> ''
		UNION SELECT key_id FROM master_key_claim ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

package appliancetest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// UseNonce implements store.ApplianceStore.
func (m *MemStore) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if err := m.fail("UseNonce"); err != nil {
		return err
	}
	if keyID == "" || nonce == "" {
		return errors.New("use nonce: empty key id or nonce")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{keyID, nonce}
	if _, ok := m.nonces[k]; ok {
		return fmt.Errorf("use nonce: %w", store.ErrConflict)
	}
	if m.nonces == nil {
		m.nonces = make(map[[2]string]time.Time)
	}
	m.nonces[k] = expires
	return nil
}

// DeleteExpiredNonces implements store.ApplianceStore.
func (m *MemStore) DeleteExpiredNonces(ctx context.Context, now time.Time) (int, error) {
	if err := m.fail("DeleteExpiredNonces"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, exp := range m.nonces {
		if !exp.After(now) {
			delete(m.nonces, k)
			n++
		}
	}
	return n, nil
}

// Package appliancetest holds an in-memory store.ApplianceStore, for tests
// of the appliance API and its clients and for the simulator until a real
// store is wired in. It follows the interface's documented semantics.
package appliancetest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// MemStore is an in-memory store.ApplianceStore plus Audit. Its zero value
// is not usable; call NewMemStore.
type MemStore struct {
	mu         sync.Mutex
	codes      map[string]store.PairingCode
	appliances map[string]*store.Appliance
	changes    map[string][]store.Change // by appliance, in rev order
	audit      []store.AuditEvent
	nonces     map[[2]string]time.Time // (key id, nonce) -> expires
	// Fail, when set, is called at the start of every method with its
	// name; a non-nil result is returned as the method's error (fault
	// injection).
	Fail func(op string) error
}

var _ store.ApplianceStore = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{
		codes:      make(map[string]store.PairingCode),
		appliances: make(map[string]*store.Appliance),
		changes:    make(map[string][]store.Change),
	}
}

func (m *MemStore) fail(op string) error {
	if m.Fail != nil {
		if err := m.Fail(op); err != nil {
			return err
		}
	}
	return nil
}

func notFound(op string) error { return fmt.Errorf("%s: %w", op, store.ErrNotFound) }

func cloneAppliance(a store.Appliance) store.Appliance {
	a.SignKey = bytes.Clone(a.SignKey)
	a.BoxKey = bytes.Clone(a.BoxKey)
	return a
}

func cloneChange(c store.Change) store.Change {
	c.Payload = bytes.Clone(c.Payload)
	return c
}

// CreatePairingCode implements store.ApplianceStore.
func (m *MemStore) CreatePairingCode(ctx context.Context, c store.PairingCode) error {
	if err := m.fail("CreatePairingCode"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codes[c.Code]; ok {
		return fmt.Errorf("create pairing code: %w", store.ErrConflict)
	}
	c.SignKey, c.BoxKey = bytes.Clone(c.SignKey), bytes.Clone(c.BoxKey)
	m.codes[c.Code] = c
	return nil
}

// PairingCodeByKey implements store.ApplianceStore.
func (m *MemStore) PairingCodeByKey(ctx context.Context, signKey []byte, now time.Time) (store.PairingCode, error) {
	if err := m.fail("PairingCodeByKey"); err != nil {
		return store.PairingCode{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var best store.PairingCode
	for _, c := range m.codes {
		if bytes.Equal(c.SignKey, signKey) && c.Expires.After(best.Expires) {
			best = c
		}
	}
	if best.Code == "" || !best.Expires.After(now) {
		return store.PairingCode{}, notFound("pairing code by key")
	}
	return best, nil
}

// PairAppliance implements store.ApplianceStore.
func (m *MemStore) PairAppliance(ctx context.Context, code string, now time.Time, a *store.Appliance) error {
	if err := m.fail("PairAppliance"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[code]
	if !ok || !c.Expires.After(now) {
		return notFound("pair appliance")
	}
	for _, b := range m.appliances {
		if strings.EqualFold(b.Name, a.Name) || bytes.Equal(b.SignKey, c.SignKey) || b.ID == a.ID {
			return fmt.Errorf("pair appliance: %w", store.ErrConflict)
		}
	}
	a.SignKey, a.BoxKey, a.Version, a.Rev = bytes.Clone(c.SignKey), bytes.Clone(c.BoxKey), c.Version, 0
	stored := cloneAppliance(*a)
	m.appliances[a.ID] = &stored
	for k, o := range m.codes {
		if bytes.Equal(o.SignKey, c.SignKey) {
			delete(m.codes, k)
		}
	}
	return nil
}

// DeleteExpiredPairingCodes implements store.ApplianceStore.
func (m *MemStore) DeleteExpiredPairingCodes(ctx context.Context, now time.Time) (int, error) {
	if err := m.fail("DeleteExpiredPairingCodes"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, c := range m.codes {
		if !c.Expires.After(now) {
			delete(m.codes, k)
			n++
		}
	}
	return n, nil
}

// Appliance implements store.ApplianceStore.
func (m *MemStore) Appliance(ctx context.Context, id string) (store.Appliance, error) {
	if err := m.fail("Appliance"); err != nil {
		return store.Appliance{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appliances[id]
	if !ok {
		return store.Appliance{}, notFound("appliance")
	}
	return cloneAppliance(*a), nil
}

// ApplianceByKey implements store.ApplianceStore.
func (m *MemStore) ApplianceByKey(ctx context.Context, signKey []byte) (store.Appliance, error) {
	if err := m.fail("ApplianceByKey"); err != nil {
		return store.Appliance{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.appliances {
		if bytes.Equal(a.SignKey, signKey) {
			return cloneAppliance(*a), nil
		}
	}
	return store.Appliance{}, notFound("appliance by key")
}

// Appliances implements store.ApplianceStore.
func (m *MemStore) Appliances(ctx context.Context) ([]store.Appliance, error) {
	if err := m.fail("Appliances"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Appliance, 0, len(m.appliances))
	for _, a := range m.appliances {
		out = append(out, cloneAppliance(*a))
	}
	slices.SortFunc(out, func(a, b store.Appliance) int {
		return cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out, nil
}

// RenameAppliance implements store.ApplianceStore.
func (m *MemStore) RenameAppliance(ctx context.Context, id, name string) error {
	if err := m.fail("RenameAppliance"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appliances[id]
	if !ok {
		return notFound("rename appliance")
	}
	for _, b := range m.appliances {
		if b.ID != id && strings.EqualFold(b.Name, name) {
			return fmt.Errorf("rename appliance: %w", store.ErrConflict)
		}
	}
	a.Name = name
	return nil
}

// SeenAppliance implements store.ApplianceStore.
func (m *MemStore) SeenAppliance(ctx context.Context, id string, s store.ApplianceSeen) error {
	if err := m.fail("SeenAppliance"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appliances[id]
	if !ok {
		return notFound("seen appliance")
	}
	a.LastSeen, a.Version, a.Accounts = s.At, s.Version, s.Accounts
	if !s.Clock.At.IsZero() {
		a.Clock = s.Clock
	}
	return nil
}

// UnpairAppliance implements store.ApplianceStore.
func (m *MemStore) UnpairAppliance(ctx context.Context, id string, at time.Time) (store.Change, error) {
	if err := m.fail("UnpairAppliance"); err != nil {
		return store.Change{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appliances[id]
	if !ok {
		return store.Change{}, notFound("unpair appliance")
	}
	if a.Unpairing {
		for _, c := range m.changes[id] {
			if c.Kind == store.ChangeUnpair {
				return cloneChange(c), nil
			}
		}
	}
	log := m.changes[id]
	for i := range log {
		if log[i].Kind == store.ChangeOffer && log[i].State == store.ChangePending {
			log[i].State, log[i].Answered = store.ChangeCancelled, at
		}
	}
	a.Unpairing = true
	a.Rev++
	c := store.Change{ApplianceID: id, Rev: a.Rev, Kind: store.ChangeUnpair, State: store.ChangePending, Created: at}
	m.changes[id] = append(log, c)
	return c, nil
}

// DeleteAppliance implements store.ApplianceStore.
func (m *MemStore) DeleteAppliance(ctx context.Context, id string) error {
	if err := m.fail("DeleteAppliance"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.appliances[id]; !ok {
		return notFound("delete appliance")
	}
	delete(m.appliances, id)
	delete(m.changes, id)
	return nil
}

// AppendChange implements store.ApplianceStore.
func (m *MemStore) AppendChange(ctx context.Context, c *store.Change) error {
	if err := m.fail("AppendChange"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appliances[c.ApplianceID]
	if !ok {
		return notFound("append change")
	}
	if a.Unpairing {
		return fmt.Errorf("append change: appliance is unpairing: %w", store.ErrStale)
	}
	log := m.changes[a.ID]
	switch c.Kind {
	case store.ChangeCancel, store.ChangeExpire, store.ChangeDelete:
		for i := range log {
			if log[i].Kind == store.ChangeOffer && log[i].DeviceUID == c.DeviceUID && log[i].State == store.ChangePending {
				log[i].State, log[i].Answered = store.ChangeCancelled, c.Created
			}
		}
	}
	a.Rev++
	c.Rev, c.State, c.Answered = a.Rev, store.ChangePending, time.Time{}
	m.changes[a.ID] = append(log, cloneChange(*c))
	return nil
}

// Changes implements store.ApplianceStore.
func (m *MemStore) Changes(ctx context.Context, applianceID string, after int64, now time.Time, limit int) ([]store.Change, error) {
	if err := m.fail("Changes"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Change
	n := 0
	for _, c := range m.changes[applianceID] {
		switch {
		case c.Rev <= after:
			if c.Kind == store.ChangeOffer && c.State == store.ChangePending && c.Expires.After(now) {
				out = append(out, cloneChange(c))
			}
		case limit <= 0 || n < limit:
			out = append(out, cloneChange(c))
			n++
		}
	}
	return out, nil
}

// Change implements store.ApplianceStore.
func (m *MemStore) Change(ctx context.Context, applianceID string, rev int64) (store.Change, error) {
	if err := m.fail("Change"); err != nil {
		return store.Change{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.changes[applianceID] {
		if c.Rev == rev {
			return cloneChange(c), nil
		}
	}
	return store.Change{}, notFound("change")
}

// AnswerChange implements store.ApplianceStore.
func (m *MemStore) AnswerChange(ctx context.Context, applianceID string, rev int64, state store.ChangeState, at time.Time) (store.Change, error) {
	if err := m.fail("AnswerChange"); err != nil {
		return store.Change{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.changes[applianceID]
	i := slices.IndexFunc(log, func(c store.Change) bool { return c.Rev == rev })
	if i < 0 {
		return store.Change{}, notFound("answer change")
	}
	c := &log[i]
	switch c.State {
	case state:
		return cloneChange(*c), nil
	case store.ChangePending:
		c.State, c.Answered = state, at
		if c.Kind == store.ChangeOffer {
			c.Payload = nil
		}
		return cloneChange(*c), nil
	}
	return cloneChange(*c), fmt.Errorf("answer change: already %s: %w", c.State, store.ErrStale)
}

// OffersByDevice implements store.ApplianceStore.
func (m *MemStore) OffersByDevice(ctx context.Context, deviceUID string) ([]store.Change, error) {
	if err := m.fail("OffersByDevice"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Change
	for _, log := range m.changes {
		for _, c := range log {
			if c.Kind == store.ChangeOffer && c.DeviceUID == deviceUID {
				out = append(out, cloneChange(c))
			}
		}
	}
	slices.SortFunc(out, func(a, b store.Change) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.Rev, a.Rev)
	})
	return out, nil
}

// DeleteAnsweredChanges implements store.ApplianceStore.
func (m *MemStore) DeleteAnsweredChanges(ctx context.Context, before time.Time) (int, error) {
	if err := m.fail("DeleteAnsweredChanges"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, log := range m.changes {
		kept := log[:0]
		for _, c := range log {
			if c.State != store.ChangePending && c.Answered.Before(before) {
				n++
				continue
			}
			kept = append(kept, c)
		}
		m.changes[id] = kept
	}
	return n, nil
}

// Audit appends an event, as store.Store's Audit does.
func (m *MemStore) Audit(ctx context.Context, e store.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.ID = int64(len(m.audit) + 1)
	m.audit = append(m.audit, e)
	return nil
}

// AuditEvents returns the events recorded so far, oldest first.
func (m *MemStore) AuditEvents() []store.AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.audit)
}

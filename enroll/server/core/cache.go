package core

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// deviceCache keeps, per username, the user and their active MFA devices
// with decrypted keys, for the verify path. Entries live for ttl; every
// change made through any replica invalidates the user's entry (through
// the fleet bus). Decrypted
// keys are kept apart by device id and ciphertext, so reloading an entry
// does not decrypt again. Keys stay in memory only.
type deviceCache struct {
	ttl time.Duration

	mu    sync.Mutex
	users map[string]*cachedUser
	keys  map[int64]*cachedKey
}

type cachedUser struct {
	key    string // the username it is cached under, as asked for
	user   store.User
	loaded time.Time

	mu      sync.Mutex // guards devices' mutable fields
	devices []store.Device
	keys    []enroll.Key // keys[i] is devices[i]'s key
}

type cachedKey struct {
	sealed   store.Sealed
	key      enroll.Key
	lastUsed time.Time
}

func newDeviceCache(ttl time.Duration) *deviceCache {
	return &deviceCache{ttl: ttl, users: make(map[string]*cachedUser), keys: make(map[int64]*cachedKey)}
}

func (c *deviceCache) invalidate(username string) {
	c.mu.Lock()
	delete(c.users, username)
	c.mu.Unlock()
}

// invalidateAll drops every cached user.
func (c *deviceCache) invalidateAll() {
	c.mu.Lock()
	clear(c.users)
	c.mu.Unlock()
}

func (c *deviceCache) forgetKey(id int64) {
	c.mu.Lock()
	delete(c.keys, id)
	c.mu.Unlock()
}

// prune drops keys not used for ten minutes and stale users.
func (c *deviceCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, k := range c.keys {
		if now.Sub(k.lastUsed) > 10*time.Minute {
			delete(c.keys, id)
		}
	}
	for name, u := range c.users {
		if now.Sub(u.loaded) >= c.ttl {
			delete(c.users, name)
		}
	}
}

// userDevices returns the user with their active devices and keys, from
// the cache when fresh.
func (s *Core) userDevices(ctx context.Context, username string) (*cachedUser, error) {
	now := s.clock.Now()
	if cu := s.cache.fresh(username, now); cu != nil {
		return cu, nil
	}
	u, all, err := s.store.UserDevices(ctx, username)
	return s.cacheUser(username, u, all, now, err)
}

// fresh returns the cached entry of username when it is younger than the
// TTL at now, else nil.
func (c *deviceCache) fresh(username string, now time.Time) *cachedUser {
	if c.ttl <= 0 {
		return nil
	}
	c.mu.Lock()
	cu := c.users[username]
	c.mu.Unlock()
	if cu != nil && now.Sub(cu.loaded) < c.ttl && now.Sub(cu.loaded) >= 0 {
		return cu
	}
	return nil
}

// cacheUser makes the entry of username from what the store read at now
// (u with all their MFA devices, or err), keeping only the active
// devices with their keys, and caches it.
func (s *Core) cacheUser(username string, u store.User, all []store.Device, now time.Time, err error) (*cachedUser, error) {
	c := s.cache
	if errors.Is(err, store.ErrNotFound) {
		return nil, Fail(404, "no user %q", username)
	}
	if err != nil {
		return nil, err
	}
	cu := &cachedUser{key: username, user: u, loaded: now}
	for _, d := range all {
		if d.Status != store.StatusActive {
			continue
		}
		k, err := s.deviceKey(d, now)
		if err != nil {
			return nil, err
		}
		cu.devices = append(cu.devices, d)
		cu.keys = append(cu.keys, k)
	}
	if c.ttl > 0 {
		c.mu.Lock()
		c.users[username] = cu
		c.mu.Unlock()
	}
	return cu, nil
}

// deviceKey returns d's key, decrypting only when it is not cached.
func (s *Core) deviceKey(d store.Device, now time.Time) (enroll.Key, error) {
	c := s.cache
	c.mu.Lock()
	ck := c.keys[d.ID]
	if ck != nil && ck.sealed.KeyID == d.Secret.KeyID && bytes.Equal(ck.sealed.Ciphertext, d.Secret.Ciphertext) {
		ck.lastUsed = now
		k := ck.key
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()
	k, err := s.openKey(d)
	if err != nil {
		return enroll.Key{}, err
	}
	c.mu.Lock()
	c.keys[d.ID] = &cachedKey{sealed: d.Secret, key: k, lastUsed: now}
	c.mu.Unlock()
	return k, nil
}

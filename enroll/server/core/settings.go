package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// Settings are what an admin changes on the Settings page. They are stored
// in the store by name (the names are the json tags) as strings.
type Settings struct {
	// Issuer is the issuer name in otpauth URIs and QR codes.
	Issuer string `json:"issuer"`
	// SelfService lets users register and manage their own MFA devices in
	// the portal.
	SelfService bool `json:"self_service"`
	// RegistrationCodes is how many consecutive codes registration asks
	// for: 1 or 2.
	RegistrationCodes int `json:"registration_codes"`
	// VerifyWindow is how many steps either side of a device's learned
	// drift a code is accepted: 0 to 10.
	VerifyWindow int `json:"verify_window"`
	// LockoutThreshold is how many failed codes that still count (see
	// FailureLeak) lock an MFA device; each further threshold's worth
	// locks it again.
	LockoutThreshold int `json:"lockout_threshold"`
	// LockoutClear is how long a first lockout lasts before it clears by
	// itself; each further lockout level lasts twice as long as the one
	// before.
	LockoutClear time.Duration `json:"lockout_clear"`
	// LockoutMax is the lockout level that lasts until an admin (or the
	// user, in the portal) unlocks the device.
	LockoutMax int `json:"lockout_max"`
	// MaxDevices is the most MFA devices one user may have.
	MaxDevices int `json:"max_devices"`
	// RequireAdminMFA sends an admin without an active MFA device to
	// register one before any console page: a password alone then opens
	// only the admin's own MFA devices.
	RequireAdminMFA bool `json:"require_admin_mfa"`
}

// DefaultSettings are the settings of a new server.
func DefaultSettings() Settings {
	return Settings{
		Issuer:            "totpbox",
		RegistrationCodes: 1,
		VerifyWindow:      1,
		LockoutThreshold:  10,
		LockoutClear:      10 * time.Minute,
		LockoutMax:        3,
		MaxDevices:        8,
	}
}

// Validate names the first setting out of range.
func (st Settings) Validate() error {
	switch {
	case strings.TrimSpace(st.Issuer) == "":
		return fmt.Errorf("issuer name is empty")
	case len(st.Issuer) > 64:
		return fmt.Errorf("issuer name is longer than 64 characters")
	case strings.Contains(st.Issuer, ":"):
		return fmt.Errorf("issuer name must not contain a colon")
	case st.RegistrationCodes != 1 && st.RegistrationCodes != 2:
		return fmt.Errorf("codes required at registration must be 1 or 2, not %d", st.RegistrationCodes)
	case st.VerifyWindow < 0 || st.VerifyWindow > 10:
		return fmt.Errorf("codes accepted either side of the current one must be 0 to 10, not %d", st.VerifyWindow)
	case st.LockoutThreshold < 1 || st.LockoutThreshold > 1000:
		return fmt.Errorf("wrong codes before a device locks must be 1 to 1000, not %d", st.LockoutThreshold)
	case st.LockoutClear < time.Minute || st.LockoutClear > 7*24*time.Hour:
		return fmt.Errorf("the first lock must last 1 minute to 7 days (10080 minutes), not %v", st.LockoutClear)
	case st.LockoutMax < 1 || st.LockoutMax > 20:
		return fmt.Errorf("locks before a device stays locked until unlocked must be 1 to 20, not %d", st.LockoutMax)
	case st.MaxDevices < 1 || st.MaxDevices > 100:
		return fmt.Errorf("MFA devices per user must be 1 to 100, not %d", st.MaxDevices)
	}
	return nil
}

// settingsFromMap reads stored settings over defaults. A stored value that
// does not parse is an error naming it.
func settingsFromMap(m map[string]string, def Settings) (Settings, error) {
	st := def
	var err error
	atoi := func(name string, dst *int) {
		if v, ok := m[name]; ok && err == nil {
			n, e := strconv.Atoi(v)
			if e != nil {
				err = fmt.Errorf("setting %s: %q is not a whole number", name, v)
				return
			}
			*dst = n
		}
	}
	if v, ok := m["issuer"]; ok {
		st.Issuer = v
	}
	if v, ok := m["self_service"]; ok {
		b, e := strconv.ParseBool(v)
		if e != nil {
			return st, fmt.Errorf("setting self_service: %q is not true or false", v)
		}
		st.SelfService = b
	}
	if v, ok := m["require_admin_mfa"]; ok {
		b, e := strconv.ParseBool(v)
		if e != nil {
			return st, fmt.Errorf("setting require_admin_mfa: %q is not true or false", v)
		}
		st.RequireAdminMFA = b
	}
	atoi("registration_codes", &st.RegistrationCodes)
	atoi("verify_window", &st.VerifyWindow)
	atoi("lockout_threshold", &st.LockoutThreshold)
	atoi("max_devices", &st.MaxDevices)
	atoi("lockout_max", &st.LockoutMax)
	if v, ok := m["lockout_clear"]; ok && err == nil {
		d, e := time.ParseDuration(v)
		if e != nil {
			return st, fmt.Errorf("setting lockout_clear: %q is not a duration", v)
		}
		st.LockoutClear = d
	}
	return st, err
}

// Map returns the settings as stored: strings by name (the json tags).
func (st Settings) Map() map[string]string {
	return map[string]string{
		"issuer":             st.Issuer,
		"self_service":       strconv.FormatBool(st.SelfService),
		"registration_codes": strconv.Itoa(st.RegistrationCodes),
		"verify_window":      strconv.Itoa(st.VerifyWindow),
		"lockout_threshold":  strconv.Itoa(st.LockoutThreshold),
		"lockout_clear":      st.LockoutClear.String(),
		"lockout_max":        strconv.Itoa(st.LockoutMax),
		"max_devices":        strconv.Itoa(st.MaxDevices),
		"require_admin_mfa":  strconv.FormatBool(st.RequireAdminMFA),
	}
}

// Lockout returns the lockout rule the settings make.
func (st Settings) Lockout() store.Lockout {
	return store.Lockout{Threshold: st.LockoutThreshold, Base: st.LockoutClear, MaxLockouts: st.LockoutMax, Leak: FailureLeak}
}

// FailureLeak is how long one failed code counts against a device: the
// fail count loses one failure per FailureLeak, and nothing else lowers
// it but an unlock, a resync or a new registration. An accepted code does
// not: else an attacker could slip a threshold's worth of guesses between
// each two of the real user's codes. So an attacker who never locks the
// device gets one guess per FailureLeak, 365 a year (docs/API.md).
const FailureLeak = 24 * time.Hour

// settingsCache keeps the settings for a few seconds, so replicas sharing a
// database see each other's changes soon without a read per request; a
// change saved by any replica drops it at once (through the fleet bus).
type settingsCache struct {
	s      *Core
	mu     sync.Mutex
	cur    Settings
	loaded time.Time
	ok     bool
}

func (c *settingsCache) get(ctx context.Context) (Settings, error) {
	now := c.s.clock.Now()
	c.mu.Lock()
	if c.ok && now.Sub(c.loaded) < 5*time.Second && now.Sub(c.loaded) >= 0 {
		st := c.cur
		c.mu.Unlock()
		return st, nil
	}
	c.mu.Unlock()
	m, err := c.s.store.Settings(ctx)
	if err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	def := DefaultSettings()
	def.MaxDevices = c.s.cfg.MaxDevicesPerUser
	st, err := settingsFromMap(m, def)
	if err != nil {
		return Settings{}, err
	}
	c.mu.Lock()
	c.cur, c.loaded, c.ok = st, now, true
	c.mu.Unlock()
	return st, nil
}

// save stores every setting that changed and refreshes the cache.
func (c *settingsCache) save(ctx context.Context, st Settings, audit func(ctx context.Context)) error {
	if err := st.Validate(); err != nil {
		return Fail(400, "%v", err)
	}
	old, err := c.get(ctx)
	if err != nil {
		return err
	}
	prev := old.Map()
	if err := c.s.Atomic(ctx, func(ctx context.Context) error {
		for k, v := range st.Map() {
			if prev[k] == v {
				continue
			}
			if err := c.s.store.SetSetting(ctx, k, v); err != nil {
				return fmt.Errorf("save setting %s: %w", k, err)
			}
		}
		if audit != nil {
			audit(ctx)
		}
		return nil
	}); err != nil {
		return err
	}
	c.mu.Lock()
	c.cur, c.loaded, c.ok = st, c.s.clock.Now(), true
	c.mu.Unlock()
	c.s.bus.Publish(noticeSettings, "")
	return nil
}

// drop makes the next get read the store.
func (c *settingsCache) drop() {
	c.mu.Lock()
	c.ok = false
	c.mu.Unlock()
}

// Settings returns the current settings, read from the store at most
// every few seconds.
func (s *Core) Settings(ctx context.Context) (Settings, error) { return s.settings.get(ctx) }

// SaveSettings checks st (a 400 Failure naming the first bad setting) and
// stores every setting that changed.
func (s *Core) SaveSettings(ctx context.Context, st Settings) error {
	return s.settings.save(ctx, st, nil)
}

// ChangeSettings saves st as SaveSettings does, and records the change
// in the audit log (settings.save, detail saying what changed) in the
// same transaction: with it, the admin.changed webhook event.
func (s *Core) ChangeSettings(ctx context.Context, a Actor, st Settings, detail string) error {
	if err := Allow(a, OpSettings); err != nil {
		return err
	}
	return s.settings.save(ctx, st, func(ctx context.Context) {
		s.Audit(ctx, a, "settings.save", "settings", detail)
	})
}

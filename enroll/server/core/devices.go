package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/store"
)

// openKey decrypts d's secret into a key with d's parameters. The account
// and issuer are left empty: they matter only for URIs.
func (s *Core) openKey(d store.Device) (enroll.Key, error) {
	secret, err := s.sealer.OpenDevice(d)
	if err != nil {
		return enroll.Key{}, fmt.Errorf("open secret: %w", err)
	}
	alg, err := enroll.ParseAlgorithm(d.Algorithm)
	if err != nil {
		return enroll.Key{}, fmt.Errorf("MFA device %d: %w", d.ID, err)
	}
	return enroll.Key{Secret: secret, Algorithm: alg, Digits: d.Digits, Period: time.Duration(d.PeriodSec) * time.Second}, nil
}

// UserDevice returns the device id of user u, or 404: a device of another
// user is as absent as one that does not exist.
func (s *Core) UserDevice(ctx context.Context, u store.User, id int64) (store.Device, error) {
	d, err := s.store.Device(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Removed by the janitor when it expired: say so, as for a
		// registration found expired before it was removed.
		if e, err := s.store.ExpiredRegistration(ctx, id); err == nil && e.UserID == u.ID {
			return store.Device{}, expiredFailure(e)
		}
	}
	if errors.Is(err, store.ErrNotFound) || err == nil && d.UserID != u.ID {
		return store.Device{}, Fail(404, "no MFA device %d for user %q", id, u.Username)
	}
	return d, err
}

// ExpiredName returns the friendly name of u's registration id that
// expired and was removed, or "" when there is none: "Start again" keeps
// it.
func (s *Core) ExpiredName(ctx context.Context, u store.User, id int64) string {
	if e, err := s.store.ExpiredRegistration(ctx, id); err == nil && e.UserID == u.ID {
		return e.Name
	}
	return ""
}

// expiredFailure is the 410 of a registration that expired unconfirmed.
func expiredFailure(d store.Device) error {
	return Fail(410, "this registration expired at %s; start again", d.ExpiresAt.UTC().Format(TimeLayout))
}

func deviceTarget(u store.User, d store.Device) string {
	return fmt.Sprintf("user:%s device:%d", u.Username, d.ID)
}

// StartRegistration creates a pending MFA device for u with a fresh key.
// It returns the device and its key; the key is shown once, while the
// registration is pending.
func (s *Core) StartRegistration(ctx context.Context, a Actor, u store.User, name string, kind store.DeviceKind) (store.Device, enroll.Key, error) {
	if err := AllowDevices(a, u); err != nil {
		return store.Device{}, enroll.Key{}, err
	}
	name, err := cleanDeviceName(name)
	if err != nil {
		return store.Device{}, enroll.Key{}, Fail(400, "%v", err)
	}
	switch kind {
	case "":
		kind = store.KindAuthenticatorApp
	case store.KindAuthenticatorApp, store.KindAppliance:
	default:
		return store.Device{}, enroll.Key{}, Fail(400, "kind must be %q or %q, not %q", store.KindAuthenticatorApp, store.KindAppliance, kind)
	}
	if u.Disabled {
		return store.Device{}, enroll.Key{}, Fail(409, "user %q is disabled", u.Username)
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return store.Device{}, enroll.Key{}, err
	}
	existing, err := s.store.DevicesByUser(ctx, u.ID)
	if err != nil {
		return store.Device{}, enroll.Key{}, err
	}
	now := s.clock.Now()
	count := 0
	for _, d := range existing {
		if d.Name == name {
			return store.Device{}, enroll.Key{}, Fail(409, "user %q already has an MFA device named %q", u.Username, name)
		}
		if d.Status == store.StatusActive || d.ExpiresAt.After(now) {
			count++
		}
	}
	if count >= st.MaxDevices {
		return store.Device{}, enroll.Key{}, Fail(409, "user %q already has %d MFA devices, the most allowed; delete one first", u.Username, count)
	}
	k, err := enroll.NewKey(st.Issuer, s.accountLabel(u.Username, name))
	if err != nil {
		return store.Device{}, enroll.Key{}, err
	}
	d := store.Device{
		UserID:    u.ID,
		Name:      name,
		Kind:      kind,
		Status:    store.StatusPending,
		Algorithm: k.Algorithm.String(),
		Digits:    k.Digits,
		PeriodSec: int(k.Period / time.Second),
		Created:   now.UTC(),
		ExpiresAt: now.Add(s.cfg.RegistrationTimeout).UTC(),
	}
	if err := s.sealer.SealDevice(&d, k.Secret); err != nil {
		return store.Device{}, enroll.Key{}, fmt.Errorf("seal secret: %w", err)
	}
	if err := s.store.CreateDevice(ctx, &d); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Device{}, enroll.Key{}, Fail(409, "user %q already has an MFA device named %q", u.Username, name)
		}
		return store.Device{}, enroll.Key{}, err
	}
	s.Audit(ctx, a, "device.create", deviceTarget(u, d), fmt.Sprintf("pending registration of %q (%s)", d.Name, d.Kind))
	return d, k, nil
}

// PendingKey returns the key of a pending registration for its
// configuration page, with issuer and account for the URI.
func (s *Core) PendingKey(ctx context.Context, u store.User, d store.Device) (enroll.Key, error) {
	if err := s.CheckPending(d); err != nil {
		return enroll.Key{}, err
	}
	k, err := s.openKey(d)
	if err != nil {
		return enroll.Key{}, err
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return enroll.Key{}, err
	}
	k.Issuer, k.Account = st.Issuer, s.accountLabel(u.Username, d.Name)
	return k, nil
}

// Registration states reported to the console and the API.
var (
	ErrAlreadyActive = Fail(409, "this MFA device is already registered")
)

func (s *Core) CheckPending(d store.Device) error {
	if d.Status == store.StatusActive {
		return ErrAlreadyActive
	}
	if !d.ExpiresAt.After(s.clock.Now()) {
		return expiredFailure(d)
	}
	return nil
}

// ConfirmRegistration checks the codes typed for a pending device and,
// when they are right, makes it active. A code within the verify window
// registers it in sync. A code up to LateSteps steps older (typed late),
// but of a step that began after the registration did, registers it too,
// marked out of sync (the seed: "the MFA device is successfully
// associated with the user. But the MFA device is out of sync"): a
// resync clears the mark. Either way the drift stays zero: typing late
// is not a clock that drifts.
func (s *Core) ConfirmRegistration(ctx context.Context, a Actor, u store.User, id int64, codes []string) (store.Device, error) {
	if err := AllowDevices(a, u); err != nil {
		return store.Device{}, err
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return store.Device{}, err
	}
	clean, err := cleanCodes(codes, st.RegistrationCodes)
	if err != nil {
		return store.Device{}, err
	}
	d, err := s.UserDevice(ctx, u, id)
	if err != nil {
		return store.Device{}, err
	}
	if err := s.CheckPending(d); err != nil {
		return store.Device{}, err
	}
	k, err := s.openKey(d)
	if err != nil {
		return store.Device{}, err
	}
	now := s.clock.Now()
	step, late, ok := matchRegistration(k, clean, now, st.VerifyWindow, enroll.Step(k, d.Created))
	if !ok {
		if age, old := codeAge(k, clean, now, st.VerifyWindow); old {
			s.Audit(ctx, a, "device.register.fail", deviceTarget(u, d), "codes too old")
			if len(clean) == 1 {
				return store.Device{}, Fail(400, "this code is %s old, too old to register the MFA device; type the code the app shows now (if its codes are always this old, the device's clock is slow)", age)
			}
			return store.Device{}, Fail(400, "these codes are %s old, too old to register the MFA device; type the two codes the app shows next (if its codes are always this old, the device's clock is slow)", age)
		}
		s.Audit(ctx, a, "device.register.fail", deviceTarget(u, d), "codes did not match")
		if len(clean) == 1 {
			return store.Device{}, Fail(400, "the code does not match; type the code the app shows now")
		}
		return store.Device{}, Fail(400, "the codes do not match; type two consecutive codes the app shows now")
	}
	from, _, err := s.registrationState(ctx, d)
	if err != nil {
		return store.Device{}, err
	}
	tr, err := Next(from, EvConfirm)
	if err != nil {
		return store.Device{}, err
	}
	// Withdraw an open offer before activating, so that no OK on the
	// appliance can land after it; then the kind follows what happened:
	// an appliance that accepted the offer holds the account.
	s.withdraw(ctx, d)
	kind, holder := store.KindAuthenticatorApp, ""
	if st, o, _ := s.registrationState(ctx, d); st == RegAccepted {
		kind, holder = store.KindAppliance, o.ApplianceName
	}
	use := store.UseStep{DeviceID: d.ID, Step: step, At: now.UTC(), OutOfSync: late, Kind: kind}
	where := "on no appliance"
	if holder != "" {
		where = fmt.Sprintf("on appliance %q", holder)
	}
	detail := fmt.Sprintf("registered %q (%s, %s, was %s)", d.Name, kind, where, from)
	if late {
		detail += fmt.Sprintf(", out of sync: code %d s late", (enroll.Step(k, now)-step)*int64(d.PeriodSec))
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.ActivateDevice(ctx, d.ID, use); err != nil {
			return err
		}
		s.Audit(ctx, a, "device.register", deviceTarget(u, d), detail)
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrStale) {
			// Lost a race: re-read to say why.
			if cur, err := s.store.Device(ctx, d.ID); err == nil {
				if err := s.CheckPending(cur); err != nil {
					return store.Device{}, err
				}
			}
			if cur, err := s.store.UserByID(ctx, u.ID); err == nil && cur.Disabled {
				return store.Device{}, Fail(409, "user %q is disabled", u.Username)
			}
			return store.Device{}, Fail(409, "this registration changed meanwhile; reload and try again")
		}
		if errors.Is(err, store.ErrNotFound) {
			return store.Device{}, Fail(404, "no MFA device %d for user %q", id, u.Username)
		}
		return store.Device{}, err
	}
	s.userChanged(u.Username)
	s.tellTransition(ctx, tr, d)
	return s.store.Device(ctx, d.ID)
}

// matchRegistration finds the step of the last of the codes typed at
// registration: within window steps of now, or else late (up to
// LateSteps steps before the window, not before step notBefore).
func matchRegistration(k enroll.Key, codes []string, now time.Time, window int, notBefore int64) (step int64, late, ok bool) {
	if len(codes) == 1 {
		if step, ok := enroll.Verify(k, codes[0], now, enroll.VerifyOptions{Window: window}); ok {
			return step, false, true
		}
		step, ok := enroll.VerifyLate(k, codes[0], now, window, LateSteps, notBefore)
		return step, ok, ok
	}
	if step, ok := enroll.Resync(k, codes[0], codes[1], now, 0, window, 0); ok {
		return step, false, true
	}
	second, ok := enroll.VerifyLate(k, codes[1], now, window, LateSteps, notBefore+1)
	if ok && enroll.CodeAt(k, second-1) == codes[0] {
		return second, true, true
	}
	return 0, false, false
}

// oldSearch is how far back, in steps, a refused registration code is
// looked for among older codes, to say it is too old rather than wrong.
// A wrong code matches an older one by chance with odds of oldSearch in a
// million.
const oldSearch = 120

// codeAge reports whether the codes typed at registration (one, or two in
// a row) are older than the registration accepts but no more than
// oldSearch steps, and how old the last one is, in words ("7 minutes").
func codeAge(k enroll.Key, codes []string, now time.Time, window int) (string, bool) {
	nowStep := enroll.Step(k, now)
	last := codes[len(codes)-1]
	for step := nowStep - int64(window) - 1; step >= nowStep-oldSearch; step-- {
		if enroll.CodeAt(k, step) != last || len(codes) == 2 && enroll.CodeAt(k, step-1) != codes[0] {
			continue
		}
		return aboutAge(now.Sub(enroll.StepStart(k, step))), true
	}
	return "", false
}

// aboutAge says d in minutes, or seconds below two minutes.
func aboutAge(d time.Duration) string {
	if d < 2*time.Minute {
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	}
	return fmt.Sprintf("%d minutes", int(d.Round(time.Minute).Minutes()))
}

// cleanCodes checks that exactly want codes were typed, each 6 or 8 digits.
func cleanCodes(codes []string, want int) ([]string, error) {
	if len(codes) != want {
		if want == 1 {
			return nil, Fail(400, "type 1 code, not %d", len(codes))
		}
		return nil, Fail(400, "type %d consecutive codes, not %d", want, len(codes))
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		cc, err := CleanCode(c)
		if err != nil {
			if want == 1 {
				return nil, Fail(400, "%v", err)
			}
			return nil, Fail(400, "code %d: %v", i+1, err)
		}
		out[i] = cc
	}
	return out, nil
}

// ResyncDevice searches the resync window around the learned drift for
// two consecutive codes and stores the drift they show, clearing the
// out-of-sync mark. Codes already used are refused with a message that
// says so; steps ahead of the server's clock are recorded apart from the
// last-used step (store.UseStep.Ahead), so a resync to a wrong clock can
// be undone by a resync with the right one, and no used code is ever
// accepted again.
func (s *Core) ResyncDevice(ctx context.Context, a Actor, u store.User, id int64, codes []string) (store.Device, error) {
	if err := AllowDevices(a, u); err != nil {
		return store.Device{}, err
	}
	clean, err := cleanCodes(codes, 2)
	if err != nil {
		return store.Device{}, err
	}
	d, err := s.UserDevice(ctx, u, id)
	if err != nil {
		return store.Device{}, err
	}
	if d.Status != store.StatusActive {
		return store.Device{}, Fail(409, "this MFA device is not registered yet; finish its registration instead")
	}
	if d.HOTP {
		return s.resyncCounter(ctx, a, u, d, clean)
	}
	st, err := s.settings.get(ctx)
	if err != nil {
		return store.Device{}, err
	}
	k, err := s.openKey(d)
	if err != nil {
		return store.Device{}, err
	}
	now := s.clock.Now()
	nowStep := enroll.Step(k, now)
	step, ok := enroll.Resync(k, clean[0], clean[1], now, d.DriftSteps, s.cfg.ResyncWindow, -1)
	if !ok && d.DriftSteps != 0 {
		step, ok = enroll.Resync(k, clean[0], clean[1], now, 0, s.cfg.ResyncWindow, -1)
	}
	usedErr := Fail(409, "those codes were already used; wait for the next two codes and type them")
	if !ok {
		s.Audit(ctx, a, "device.resync.fail", deviceTarget(u, d), "codes did not match")
		return store.Device{}, Fail(400, "these are not two codes in a row from this MFA device, as its clock could show them (up to %s either side of the server's time); type a code, wait for the next one, type it too and submit at once", aboutAge(time.Duration(s.cfg.ResyncWindow)*k.Period))
	}
	if d.Used(step-1) || d.Used(step) {
		s.Audit(ctx, a, "device.resync.fail", deviceTarget(u, d), "codes already used")
		return store.Device{}, usedErr
	}
	use := store.UseStep{DeviceID: d.ID, Step: step, Drift: step - nowStep, At: now.UTC(),
		Ahead: step > nowStep+int64(st.VerifyWindow)}
	if err := s.store.SetDrift(ctx, use); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Device{}, Fail(404, "no MFA device %d for user %q", id, u.Username)
		}
		if errors.Is(err, store.ErrStale) {
			return store.Device{}, usedErr
		}
		return store.Device{}, err
	}
	s.userChanged(u.Username)
	s.Audit(ctx, a, "device.resync", deviceTarget(u, d), fmt.Sprintf("drift %+ds", use.Drift*int64(d.PeriodSec)))
	return s.store.Device(ctx, d.ID)
}

func (s *Core) RenameDevice(ctx context.Context, a Actor, u store.User, id int64, name string) (store.Device, error) {
	if err := AllowDevices(a, u); err != nil {
		return store.Device{}, err
	}
	name, err := cleanDeviceName(name)
	if err != nil {
		return store.Device{}, Fail(400, "%v", err)
	}
	d, err := s.UserDevice(ctx, u, id)
	if err != nil {
		return store.Device{}, err
	}
	if d.Name == name {
		return d, nil
	}
	if err := s.store.RenameDevice(ctx, id, name); err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return store.Device{}, Fail(409, "user %q already has an MFA device named %q", u.Username, name)
		case errors.Is(err, store.ErrNotFound):
			return store.Device{}, Fail(404, "no MFA device %d for user %q", id, u.Username)
		}
		return store.Device{}, err
	}
	s.userChanged(u.Username)
	s.Audit(ctx, a, "device.rename", deviceTarget(u, d), fmt.Sprintf("%q to %q", d.Name, name))
	d.Name = name
	s.tell(ctx, store.ChangeRename, d)
	return d, nil
}

func (s *Core) DeleteDevice(ctx context.Context, a Actor, u store.User, id int64) error {
	if err := AllowDevices(a, u); err != nil {
		return err
	}
	d, err := s.UserDevice(ctx, u, id)
	if err != nil {
		return err
	}
	from, _, err := s.registrationState(ctx, d)
	if err != nil {
		return err
	}
	if from == RegExpired {
		from = RegPending // deleting an expired registration cancels it
	}
	tr, err := Next(from, EvDelete)
	if err != nil {
		return err
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteDevice(ctx, id); err != nil {
			return err
		}
		s.Audit(ctx, a, "device.delete", deviceTarget(u, d), fmt.Sprintf("deleted %q (%s, now %s)", d.Name, from, tr.To))
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Fail(404, "no MFA device %d for user %q", id, u.Username)
		}
		return err
	}
	s.userChanged(u.Username)
	s.cache.forgetKey(id)
	s.tellTransition(ctx, tr, d)
	return nil
}

// UnlockDevice clears the fail count, lockouts and lock of device id of
// u, the lock it reads now: a lock set after that read stays.
func (s *Core) UnlockDevice(ctx context.Context, a Actor, u store.User, id int64) error {
	if err := AllowDevices(a, u); err != nil {
		return err
	}
	d, err := s.UserDevice(ctx, u, id)
	if err != nil {
		return err
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.UnlockDevice(ctx, id, d.LockedUntil); err != nil {
			return err
		}
		s.Audit(ctx, a, "device.unlock", deviceTarget(u, d), "fail count and lockouts cleared")
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Fail(404, "no MFA device %d for user %q", id, u.Username)
		}
		if errors.Is(err, store.ErrStale) {
			return Fail(409, "the lock of this MFA device changed meanwhile; reload and try again")
		}
		return err
	}
	s.userChanged(u.Username)
	return nil
}

package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// Appliance alert kinds, and how they are judged from what the server
// knows: the last sync and the last clock report.
const (
	AlertOffline        = "offline"
	AlertClockUntrusted = "clock_untrusted"
	// OfflineAfter is how long after its last sync an appliance is
	// offline: well past a long-poll and its retries.
	OfflineAfter = 5 * time.Minute
	// UntrustedBound is the clock error bound past which an appliance's
	// clock is untrusted: a sixth of a 30 s TOTP step.
	UntrustedBound = 5 * time.Second
	// monitorLease names the lease that gives the monitor to one replica.
	monitorLease = "appliance-monitor"
)

// alertOf reports whether an appliance is in episode kind at now.
func alertOf(a store.Appliance, kind string, now time.Time) bool {
	if a.Unpairing {
		return false
	}
	switch kind {
	case AlertOffline:
		return !a.LastSeen.IsZero() && now.Sub(a.LastSeen) > OfflineAfter
	case AlertClockUntrusted:
		c := a.Clock
		return !c.At.IsZero() && (c.BoundUnknown || c.Bound > UntrustedBound)
	}
	return false
}

// alertChange is one episode to raise or clear.
type alertChange struct {
	app   store.Appliance
	kind  string
	raise bool
}

// alertChanges compares what the appliances show at now with the open
// episodes: what to raise, and what to clear (including episodes of
// appliances no longer there).
func alertChanges(apps []store.Appliance, open []store.ApplianceAlert, now time.Time) []alertChange {
	isOpen := map[[2]string]bool{}
	for _, o := range open {
		isOpen[[2]string{o.ApplianceID, o.Kind}] = true
	}
	seen := map[string]bool{}
	var out []alertChange
	for _, a := range apps {
		seen[a.ID] = true
		for _, k := range []string{AlertOffline, AlertClockUntrusted} {
			on, was := alertOf(a, k, now), isOpen[[2]string{a.ID, k}]
			if on != was {
				out = append(out, alertChange{app: a, kind: k, raise: on})
			}
		}
	}
	for _, o := range open {
		if !seen[o.ApplianceID] {
			out = append(out, alertChange{app: store.Appliance{ID: o.ApplianceID}, kind: o.Kind})
		}
	}
	return out
}

var alertActions = map[string][2]string{
	AlertOffline:        {"appliance.offline", "appliance.online"},
	AlertClockUntrusted: {"appliance.clock_untrusted", "appliance.clock_trusted"},
}

// monitorStore is what the appliance monitor needs of the store.
type monitorStore interface {
	Appliances(ctx context.Context) ([]store.Appliance, error)
	ApplianceAlerts(ctx context.Context) ([]store.ApplianceAlert, error)
	RaiseApplianceAlert(ctx context.Context, a store.ApplianceAlert, e store.AuditEvent, ev store.WebhookEvent) (bool, error)
	ClearApplianceAlert(ctx context.Context, applianceID, kind string, e store.AuditEvent, ev store.WebhookEvent) (bool, error)
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}

var monitorHolder = func() string {
	var b [6]byte
	rand.Read(b[:])
	return "replica-" + hex.EncodeToString(b[:])
}()

// MonitorAppliances raises appliance.offline and appliance.clock_untrusted
// once per episode, and clears them with appliance.online and
// appliance.clock_trusted, from the appliances' last sync and clock
// report. One replica at a time does it (a lease in the store); the
// janitor calls it.
func (s *Core) MonitorAppliances(ctx context.Context, every time.Duration) {
	ms, ok := s.store.(monitorStore)
	if !ok {
		return
	}
	now := s.clock.Now().UTC()
	if held, err := ms.TryLease(ctx, monitorLease, monitorHolder, now, 2*every+time.Second); err != nil || !held {
		return
	}
	apps, err := ms.Appliances(ctx)
	if err != nil {
		s.log.Error("appliance monitor", "err", err)
		return
	}
	open, err := ms.ApplianceAlerts(ctx)
	if err != nil {
		s.log.Error("appliance monitor", "err", err)
		return
	}
	for _, c := range alertChanges(apps, open, now) {
		act := alertActions[c.kind]
		action, detail := act[1], fmt.Sprintf("%q", c.app.Name)
		if c.raise {
			action = act[0]
			switch c.kind {
			case AlertOffline:
				detail = fmt.Sprintf("%q last synced %s", c.app.Name, c.app.LastSeen.UTC().Format(time.RFC3339))
			case AlertClockUntrusted:
				detail = fmt.Sprintf("%q clock %s, error bound %v", c.app.Name, c.app.Clock.State, c.app.Clock.Bound)
			}
		}
		e := store.AuditEvent{Time: now, Actor: System.Name, Action: action, Target: "appliance:" + c.app.ID, Detail: detail}
		ev, _ := events.WebhookEvent(e)
		var done bool
		if c.raise {
			done, err = ms.RaiseApplianceAlert(ctx, store.ApplianceAlert{ApplianceID: c.app.ID, Kind: c.kind, Since: now}, e, ev)
		} else {
			done, err = ms.ClearApplianceAlert(ctx, c.app.ID, c.kind, e, ev)
		}
		if err != nil {
			s.log.Error("appliance monitor", "appliance", c.app.ID, "action", action, "err", err)
			continue
		}
		if done {
			s.Published(e)
			if s.bus != nil {
				s.bus.Publish(NoticeWebhookEvent, ev.ID)
			}
		}
	}
}

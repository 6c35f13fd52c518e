package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/server/events/webhook"
	"github.com/totpbox/totpbox/enroll/store"
)

// WebhookStore is the store's part the webhook operations use.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w store.WebhookEndpoint) error
	Webhook(ctx context.Context, id string) (store.WebhookEndpoint, error)
	Webhooks(ctx context.Context) ([]store.WebhookEndpoint, error)
	UpdateWebhook(ctx context.Context, w store.WebhookEndpoint) error
	DeleteWebhook(ctx context.Context, id string) error
	Deliveries(ctx context.Context, state string, limit int) ([]store.Delivery, error)
	Redeliver(ctx context.Context, id int64, now time.Time) error
}

// MaxWebhooks bounds the webhook endpoints.
const MaxWebhooks = 50

func (s *Core) webhookStore() (WebhookStore, error) {
	ws, ok := s.store.(WebhookStore)
	if !ok {
		return nil, errors.New("webhooks: the store keeps no webhooks")
	}
	return ws, nil
}

func (s *Core) webhookSealer() (webhook.Sealer, error) {
	ws, ok := s.sealer.(webhook.Sealer)
	if !ok {
		return nil, errors.New("webhooks: the sealer cannot seal webhook secrets")
	}
	return ws, nil
}

// WebhookSealer is the sealer of the endpoints' signing secrets, for the
// deliverer; nil when the core's sealer cannot seal them.
func (s *Core) WebhookSealer() webhook.Sealer {
	ws, _ := s.webhookSealer()
	return ws
}

// checkWebhookEvents checks and normalises a list of event types: each
// one of events.Types, or "*" alone for all.
func checkWebhookEvents(evs []string) ([]string, error) {
	if len(evs) == 0 {
		return nil, Fail(400, "events is empty: list event types (see docs/events.md) or [\"*\"] for all")
	}
	var out []string
	for _, e := range evs {
		e = strings.TrimSpace(e)
		switch {
		case e == "*":
			if len(evs) != 1 {
				return nil, Fail(400, "events: \"*\" stands alone, for every event")
			}
		case !events.IsType(e):
			return nil, Fail(400, "events: unknown event type %q (known: %s)", clip(e), strings.Join(events.Types, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// CreateWebhook adds an endpoint that receives evs at url, and returns it
// with its signing secret: the only time the secret is shown.
func (s *Core) CreateWebhook(ctx context.Context, a Actor, url string, evs []string) (store.WebhookEndpoint, string, error) {
	if err := Allow(a, OpWebhooks); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	ws, err := s.webhookStore()
	if err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	sealer, err := s.webhookSealer()
	if err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	if err := events.CheckURL(url, s.cfg.AllowPrivateWebhooks); err != nil {
		return store.WebhookEndpoint{}, "", Fail(400, "%v", err)
	}
	if evs, err = checkWebhookEvents(evs); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	if all, err := ws.Webhooks(ctx); err != nil {
		return store.WebhookEndpoint{}, "", err
	} else if len(all) >= MaxWebhooks {
		return store.WebhookEndpoint{}, "", Fail(409, "there are already %d webhook endpoints, the most allowed", MaxWebhooks)
	}
	var b [8]byte
	rand.Read(b[:])
	w := store.WebhookEndpoint{ID: "wh_" + hex.EncodeToString(b[:]), URL: url, Events: evs, Created: s.clock.Now().UTC()}
	secret := webhook.NewSecret()
	if w.Secret, err = sealer.Seal([]byte(secret), webhook.SecretAAD(w.ID)); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := ws.CreateWebhook(ctx, w); err != nil {
			return err
		}
		s.Audit(ctx, a, "webhook.create", "webhook:"+w.ID, fmt.Sprintf("%s for %s", w.URL, strings.Join(evs, ",")))
		return nil
	}); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	return w, secret, nil
}

// Webhook returns an endpoint; a 404 Failure when there is none.
func (s *Core) Webhook(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return store.WebhookEndpoint{}, err
	}
	w, err := ws.Webhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return w, Fail(404, "no webhook %q", clip(id))
	}
	return w, err
}

// Webhooks lists the endpoints, oldest first.
func (s *Core) Webhooks(ctx context.Context) ([]store.WebhookEndpoint, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return nil, err
	}
	return ws.Webhooks(ctx)
}

// WebhookChange is a change to an endpoint; nil fields stay as they are.
type WebhookChange struct {
	URL      *string
	Events   *[]string
	Disabled *bool
}

// UpdateWebhook changes an endpoint.
func (s *Core) UpdateWebhook(ctx context.Context, a Actor, id string, c WebhookChange) (store.WebhookEndpoint, error) {
	if err := Allow(a, OpWebhooks); err != nil {
		return store.WebhookEndpoint{}, err
	}
	ws, err := s.webhookStore()
	if err != nil {
		return store.WebhookEndpoint{}, err
	}
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return w, err
	}
	var what []string
	if c.URL != nil {
		if err := events.CheckURL(*c.URL, s.cfg.AllowPrivateWebhooks); err != nil {
			return w, Fail(400, "%v", err)
		}
		w.URL = *c.URL
		what = append(what, "url "+w.URL)
	}
	if c.Events != nil {
		evs, err := checkWebhookEvents(*c.Events)
		if err != nil {
			return w, err
		}
		w.Events = evs
		what = append(what, "events "+strings.Join(evs, ","))
	}
	if c.Disabled != nil {
		w.Disabled = *c.Disabled
		what = append(what, fmt.Sprintf("disabled %v", w.Disabled))
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := ws.UpdateWebhook(ctx, w); err != nil {
			return err
		}
		s.Audit(ctx, a, "webhook.update", "webhook:"+w.ID, strings.Join(what, "; "))
		return nil
	}); err != nil {
		return w, err
	}
	return w, nil
}

// DeleteWebhook removes an endpoint and its pending deliveries.
func (s *Core) DeleteWebhook(ctx context.Context, a Actor, id string) error {
	if err := Allow(a, OpWebhooks); err != nil {
		return err
	}
	ws, err := s.webhookStore()
	if err != nil {
		return err
	}
	w, err := s.Webhook(ctx, id)
	if err != nil {
		return err
	}
	if err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := ws.DeleteWebhook(ctx, id); err != nil {
			return err
		}
		s.Audit(ctx, a, "webhook.delete", "webhook:"+id, w.URL)
		return nil
	}); err != nil {
		return err
	}
	return nil
}

// DeadDeliveries lists the deliveries given up, newest first.
func (s *Core) DeadDeliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return nil, err
	}
	return ws.Deliveries(ctx, store.DeliveryDead, limit)
}

// Redeliver queues a dead delivery again, with the same event id.
func (s *Core) Redeliver(ctx context.Context, a Actor, id int64) error {
	if err := Allow(a, OpWebhooks); err != nil {
		return err
	}
	ws, err := s.webhookStore()
	if err != nil {
		return err
	}
	if err := ws.Redeliver(ctx, id, s.clock.Now().UTC()); errors.Is(err, store.ErrNotFound) {
		return Fail(404, "no dead delivery %d", id)
	} else if err != nil {
		return err
	}
	s.Audit(ctx, a, "webhook.redeliver", fmt.Sprintf("delivery:%d", id), "")
	if s.bus != nil {
		s.bus.Publish(NoticeWebhookEvent, "")
	}
	return nil
}

package core

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
)

// TestWebhookEndpoints: what an endpoint refuses, with a 400 naming it;
// an endpoint is created with a secret shown once, updated and deleted,
// each audited; an unknown one is a 404.
func TestWebhookEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	root := Actor{Name: "root", Role: RoleAdmin}
	for _, tc := range []struct {
		name, url string
		evs       []string
		msg       string
	}{
		{"no events", "https://hooks.example.com/x", nil, "events is empty"},
		{"unknown event", "https://hooks.example.com/x", []string{"device.exploded"}, `unknown event type "device.exploded"`},
		{"star among others", "https://hooks.example.com/x", []string{"*", events.DeviceLocked}, `"*" stands alone`},
		{"plain http", "http://hooks.example.com/x", []string{"*"}, "https"},
		{"loopback", "https://127.0.0.1/x", []string{"*"}, ""},
	} {
		_, _, err := f.core.CreateWebhook(ctx, root, tc.url, tc.evs)
		failure(t, tc.name, err, 400, tc.msg)
	}
	w, secret, err := f.core.CreateWebhook(ctx, root, "https://hooks.example.com/totp", []string{events.DeviceLocked, events.DeviceLocked, events.UserDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if secret == "" || !slices.Equal(w.Events, []string{events.DeviceLocked, events.UserDisabled}) {
		t.Fatalf("created %+v with secret %q, want the events once each and a secret", w, secret)
	}
	off := true
	url := "https://hooks.example.com/v2"
	got, err := f.core.UpdateWebhook(ctx, root, w.ID, WebhookChange{URL: &url, Disabled: &off})
	if err != nil || got.URL != url || !got.Disabled {
		t.Fatalf("update = %+v, %v", got, err)
	}
	bad := []string{"nope"}
	_, err = f.core.UpdateWebhook(ctx, root, w.ID, WebhookChange{Events: &bad})
	failure(t, "update to an unknown event", err, 400, `unknown event type "nope"`)
	list, err := f.core.Webhooks(ctx)
	if err != nil || len(list) != 1 || list[0].URL != url {
		t.Fatalf("webhooks = %+v, %v", list, err)
	}
	_, err = f.core.Webhook(ctx, "wh_missing")
	failure(t, "unknown endpoint", err, 404, `no webhook "wh_missing"`)
	failure(t, "delete of an unknown endpoint", f.core.DeleteWebhook(ctx, root, "wh_missing"), 404, "no webhook")
	if err := f.core.DeleteWebhook(ctx, root, w.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.core.Webhooks(ctx); len(list) != 0 {
		t.Errorf("webhooks after delete = %+v", list)
	}
	acts := f.actions()
	for _, a := range []string{"webhook.create", "webhook.update", "webhook.delete"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %s", acts, a)
		}
	}
}

// deliveries is the store's side of the deliverer, to give a delivery up.
type deliveries interface {
	ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, n int) ([]store.Delivery, error)
	FinishDelivery(ctx context.Context, id int64, owner, state string, next time.Time, lastErr string, now time.Time) error
}

// TestWebhookEventsFromCore: a lockout the core records raises the
// device.locked event in the outbox with its audit row; a delivery given
// up is listed dead and queued again by Redeliver; an unknown one is a
// 404.
func TestWebhookEventsFromCore(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.settings(func(st *Settings) { st.LockoutThreshold = 1 })
	if _, _, err := f.core.CreateWebhook(ctx, System, "https://hooks.example.com/totp", []string{events.DeviceLocked}); err != nil {
		t.Fatal(err)
	}
	_, _, k := f.registered("alice")
	f.verify("alice", enroll.CodeAt(k, enroll.Step(k, f.clock.Now())+100))
	ds := f.st.(deliveries)
	claimed, err := ds.ClaimDeliveries(ctx, "test", f.clock.Now(), f.clock.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].Event.Type != events.DeviceLocked {
		t.Fatalf("deliveries = %+v, want one device.locked", claimed)
	}
	if err := ds.FinishDelivery(ctx, claimed[0].ID, "test", store.DeliveryDead, time.Time{}, "410 Gone", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	dead, err := f.core.DeadDeliveries(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].LastError != "410 Gone" {
		t.Fatalf("dead deliveries = %+v, %v", dead, err)
	}
	if err := f.core.Redeliver(ctx, System, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	if dead, _ := f.core.DeadDeliveries(ctx, 10); len(dead) != 0 {
		t.Errorf("still dead after redeliver: %+v", dead)
	}
	failure(t, "redeliver of an unknown delivery", f.core.Redeliver(ctx, System, 9999), 404, "no dead delivery 9999")
}

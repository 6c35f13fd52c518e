package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

// testAuditCursor has writers append audit rows while a reader follows
// the cursor: the reader must see every row exactly once.
func testAuditCursor(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 8, 40
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := store.AuditEvent{Time: t0, Actor: fmt.Sprintf("w%d", w), Action: "test.write", Target: fmt.Sprint(i)}
				var err error
				if i%4 == 0 {
					err = s.AuditWithEvent(ctx, e, store.WebhookEvent{ID: fmt.Sprintf("msg_%d_%d", w, i), Type: "test.write", Time: t0})
				} else {
					err = s.Audit(ctx, e)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()

	seen := map[int64]bool{}
	var cursor int64
	read := func() int {
		got, err := s.AuditAfter(ctx, store.AuditQuery{After: cursor, Limit: 7})
		must(t, "AuditAfter", err)
		for _, e := range got {
			if seen[e.ID] {
				t.Fatalf("AuditAfter(after %d) returned id %d again", cursor, e.ID)
			}
			if e.ID <= cursor {
				t.Fatalf("AuditAfter(after %d) returned id %d", cursor, e.ID)
			}
			seen[e.ID] = true
			cursor = e.ID
		}
		return len(got)
	}
	for !done.Load() {
		read()
	}
	for read() > 0 {
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	all, err := s.AuditAfter(ctx, store.AuditQuery{Limit: writers * each * 2})
	must(t, "AuditAfter(all)", err)
	if len(all) != writers*each {
		t.Fatalf("AuditAfter(all) = %d rows, want %d", len(all), writers*each)
	}
	for _, e := range all {
		if !seen[e.ID] {
			t.Errorf("the reader following the cursor skipped id %d (%s %s)", e.ID, e.Actor, e.Target)
		}
	}
}

// testAuditFilters checks the export filters.
func testAuditFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	rows := []store.AuditEvent{
		{Time: t0, Actor: "alice", Action: "device.register", Target: "user:bob device:1"},
		{Time: t0.Add(time.Second), Actor: "system", Action: "device.lock", Target: "user:bob device:1"},
		{Time: t0.Add(2 * time.Second), Actor: "bob", Action: "verify.fail", Target: "user:bob"},
		{Time: t0.Add(3 * time.Second), Actor: "alice", Action: "user.create", Target: "user:bobby"},
		{Time: t0.Add(4 * time.Second), Actor: "alice", Action: "device_x", Target: "user:bo_"},
	}
	for _, e := range rows {
		must(t, "Audit", s.Audit(ctx, e))
	}
	for _, tc := range []struct {
		q    store.AuditQuery
		want []string // actions
	}{
		{store.AuditQuery{}, []string{"device.register", "device.lock", "verify.fail", "user.create", "device_x"}},
		{store.AuditQuery{Limit: 2}, []string{"device.register", "device.lock"}},
		{store.AuditQuery{After: 2}, []string{"verify.fail", "user.create", "device_x"}},
		{store.AuditQuery{Action: "device.lock"}, []string{"device.lock"}},
		{store.AuditQuery{Action: "device.*"}, []string{"device.register", "device.lock"}},
		{store.AuditQuery{User: "bob"}, []string{"device.register", "device.lock", "verify.fail"}},
		{store.AuditQuery{User: "alice"}, []string{"device.register", "user.create", "device_x"}},
		{store.AuditQuery{User: "bo_"}, []string{"device_x"}},
		{store.AuditQuery{Since: t0.Add(2 * time.Second)}, []string{"verify.fail", "user.create", "device_x"}},
		{store.AuditQuery{User: "bob", Action: "device.*", Since: t0.Add(time.Second)}, []string{"device.lock"}},
	} {
		got, err := s.AuditAfter(ctx, tc.q)
		must(t, "AuditAfter", err)
		var acts []string
		for _, e := range got {
			acts = append(acts, e.Action)
		}
		if !slices.Equal(acts, tc.want) {
			t.Errorf("AuditAfter(%+v) = %v, want %v", tc.q, acts, tc.want)
		}
	}
}

// testWebhookOutbox checks endpoints, the outbox fan-out, leases on
// deliveries, retries and the dead letters.
func testWebhookOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	sec := store.Sealed{KeyID: "k1", Ciphertext: []byte("sealed")}
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_a", URL: "https://a.example/hook", Events: []string{"device.locked", "user.disabled"}, Secret: sec, Created: t0}))
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_all", URL: "https://b.example/hook", Events: []string{"*"}, Secret: sec, Created: t0.Add(time.Second)}))
	wantErr(t, "CreateWebhook(same id)", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_a", URL: "https://c.example/", Events: []string{"*"}, Secret: sec}), store.ErrConflict)
	w, err := s.Webhook(ctx, "wh_a")
	must(t, "Webhook", err)
	if w.URL != "https://a.example/hook" || !slices.Equal(w.Events, []string{"device.locked", "user.disabled"}) || string(w.Secret.Ciphertext) != "sealed" {
		t.Errorf("Webhook(wh_a) = %+v", w)
	}
	_, err = s.Webhook(ctx, "wh_none")
	wantErr(t, "Webhook(missing)", err, store.ErrNotFound)
	wantErr(t, "DeleteWebhook(missing)", s.DeleteWebhook(ctx, "wh_none"), store.ErrNotFound)

	ev := func(id, typ string) store.WebhookEvent {
		return store.WebhookEvent{ID: id, Type: typ, Time: t0, Data: `{"k":"v"}`}
	}
	must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "device.lock"}, ev("msg_1", "device.locked")))
	must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "device.register"}, ev("msg_2", "device.registered")))
	if err := s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"}, ev("msg_2", "device.registered")); err == nil {
		t.Errorf("AuditWithEvent(repeated event id) = nil, want an error")
	}
	got, err := s.AuditAfter(ctx, store.AuditQuery{})
	must(t, "AuditAfter", err)
	if len(got) != 2 {
		t.Errorf("a failed AuditWithEvent left its audit row: %d rows, want 2", len(got))
	}

	// Two owners claim at once: each delivery goes to one of them.
	lease := t0.Add(30 * time.Second)
	a, err := s.ClaimDeliveries(ctx, "r1", t0, lease, 10)
	must(t, "ClaimDeliveries(r1)", err)
	b, err := s.ClaimDeliveries(ctx, "r2", t0, lease, 10)
	must(t, "ClaimDeliveries(r2)", err)
	if len(a) != 3 || len(b) != 0 {
		t.Fatalf("ClaimDeliveries = %d then %d, want 3 (msg_1 to both, msg_2 to wh_all) then 0", len(a), len(b))
	}
	for _, d := range a {
		if d.Event.Data != `{"k":"v"}` || d.State != store.DeliveryPending {
			t.Errorf("claimed %+v", d)
		}
	}
	// The lease ends: another owner takes them, the first can no longer
	// finish.
	c, err := s.ClaimDeliveries(ctx, "r2", lease.Add(time.Second), lease.Add(time.Minute), 10)
	must(t, "ClaimDeliveries(after lease)", err)
	if len(c) != 3 {
		t.Fatalf("ClaimDeliveries after the lease = %d, want 3", len(c))
	}
	wantErr(t, "FinishDelivery(old owner)", s.FinishDelivery(ctx, a[0].ID, "r1", store.DeliveryDelivered, time.Time{}, "", t0), store.ErrStale)
	now := lease.Add(2 * time.Second)
	must(t, "FinishDelivery(delivered)", s.FinishDelivery(ctx, c[0].ID, "r2", store.DeliveryDelivered, time.Time{}, "", now))
	must(t, "FinishDelivery(retry)", s.FinishDelivery(ctx, c[1].ID, "r2", store.DeliveryPending, now.Add(time.Minute), "HTTP 500", now))
	must(t, "FinishDelivery(dead)", s.FinishDelivery(ctx, c[2].ID, "r2", store.DeliveryDead, time.Time{}, "HTTP 410", now))
	if d, err := s.ClaimDeliveries(ctx, "r1", now.Add(30*time.Second), now.Add(time.Hour), 10); err != nil || len(d) != 0 {
		t.Errorf("ClaimDeliveries before the retry is due = %d, %v; want 0", len(d), err)
	}
	d, err := s.ClaimDeliveries(ctx, "r1", now.Add(time.Minute), now.Add(time.Hour), 10)
	must(t, "ClaimDeliveries(retry due)", err)
	if len(d) != 1 || d[0].ID != c[1].ID || d[0].Attempts != 1 || d[0].LastError != "HTTP 500" || d[0].Event.ID != c[1].Event.ID {
		t.Errorf("ClaimDeliveries(retry due) = %+v, want delivery %d after 1 attempt", d, c[1].ID)
	}
	dead, err := s.Deliveries(ctx, store.DeliveryDead, 10)
	must(t, "Deliveries(dead)", err)
	if len(dead) != 1 || dead[0].ID != c[2].ID || dead[0].LastError != "HTTP 410" {
		t.Fatalf("Deliveries(dead) = %+v", dead)
	}
	wantErr(t, "Redeliver(not dead)", s.Redeliver(ctx, c[0].ID, now), store.ErrNotFound)
	must(t, "Redeliver", s.Redeliver(ctx, c[2].ID, now.Add(2*time.Minute)))
	r, err := s.ClaimDeliveries(ctx, "r3", now.Add(2*time.Minute), now.Add(time.Hour), 10)
	must(t, "ClaimDeliveries(redelivered)", err)
	if len(r) != 1 || r[0].ID != c[2].ID || r[0].Event.ID != c[2].Event.ID {
		t.Errorf("ClaimDeliveries after Redeliver = %+v, want delivery %d with its event id", r, c[2].ID)
	}

	// Updating and deleting an endpoint.
	w.Events = []string{"device.registered"}
	w.URL = "https://a.example/v2"
	must(t, "UpdateWebhook", s.UpdateWebhook(ctx, w))
	must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "device.register"}, ev("msg_3", "device.registered")))
	must(t, "DeleteWebhook", s.DeleteWebhook(ctx, "wh_all"))
	n, err := s.ClaimDeliveries(ctx, "r4", now.Add(2*time.Hour), now.Add(3*time.Hour), 10)
	must(t, "ClaimDeliveries", err)
	if len(n) != 1 || n[0].EndpointID != "wh_a" || n[0].Event.ID != "msg_3" {
		t.Errorf("ClaimDeliveries after update and delete = %+v, want msg_3 to wh_a only", n)
	}
	list, err := s.Webhooks(ctx)
	must(t, "Webhooks", err)
	if len(list) != 1 || list[0].URL != "https://a.example/v2" {
		t.Errorf("Webhooks = %+v", list)
	}
}

// testConcurrentClaim has several owners claim deliveries at once: each
// delivery is leased to exactly one.
func testConcurrentClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh", URL: "https://a.example/", Events: []string{"*"}, Secret: store.Sealed{KeyID: "k", Ciphertext: []byte{1}}}))
	const events = 60
	for i := range events {
		must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"}, store.WebhookEvent{ID: fmt.Sprint("msg_", i), Type: "x", Time: t0}))
	}
	var mu sync.Mutex
	owner := map[int64]string{}
	var wg sync.WaitGroup
	for o := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("r", o)
			for {
				ds, err := s.ClaimDeliveries(ctx, name, t0, t0.Add(time.Minute), 5)
				if err != nil {
					if store.IsUnavailable(err) {
						continue
					}
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, ok := owner[d.ID]; ok {
						t.Errorf("delivery %d leased to %s and %s", d.ID, prev, name)
					}
					owner[d.ID] = name
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != events {
		t.Errorf("%d deliveries leased, want %d", len(owner), events)
	}
}

// testApplianceAlerts checks that an episode is raised once and cleared
// once, each with its audit row.
func testApplianceAlerts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.ApplianceAlert{ApplianceID: "app1", Kind: "offline", Since: t0}
	aud := store.AuditEvent{Time: t0, Actor: "system", Action: "appliance.offline", Target: "appliance:app1"}
	for i, want := range []bool{true, false} {
		ok, err := s.RaiseApplianceAlert(ctx, a, aud, store.WebhookEvent{ID: fmt.Sprint("msg_r", i), Type: "appliance.offline", Time: t0})
		must(t, "RaiseApplianceAlert", err)
		if ok != want {
			t.Errorf("RaiseApplianceAlert #%d = %v, want %v", i, ok, want)
		}
	}
	al, err := s.ApplianceAlerts(ctx)
	must(t, "ApplianceAlerts", err)
	if len(al) != 1 || al[0] != a {
		t.Errorf("ApplianceAlerts = %+v, want [%+v]", al, a)
	}
	for i, want := range []bool{true, false} {
		ok, err := s.ClearApplianceAlert(ctx, "app1", "offline", store.AuditEvent{Time: t0, Actor: "system", Action: "appliance.online"}, store.WebhookEvent{ID: fmt.Sprint("msg_c", i), Type: "appliance.online", Time: t0})
		must(t, "ClearApplianceAlert", err)
		if ok != want {
			t.Errorf("ClearApplianceAlert #%d = %v, want %v", i, ok, want)
		}
	}
	rows, err := s.AuditAfter(ctx, store.AuditQuery{})
	must(t, "AuditAfter", err)
	if len(rows) != 2 || rows[0].Action != "appliance.offline" || rows[1].Action != "appliance.online" {
		t.Errorf("audit rows = %+v, want one offline and one online", rows)
	}
}

// testFinishDeliveries checks outcomes recorded together: each as
// FinishDelivery records it, a lease lost meanwhile refused alone.
func testFinishDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_all", URL: "https://b.example/hook", Events: []string{"*"},
		Secret: store.Sealed{KeyID: "k1", Ciphertext: []byte("sealed")}, Created: t0}))
	for i := range 3 {
		must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"},
			store.WebhookEvent{ID: fmt.Sprint("msg_", i), Type: "x", Time: t0}))
	}
	a, err := s.ClaimDeliveries(ctx, "r1", t0, t0.Add(time.Minute), 2)
	must(t, "ClaimDeliveries", err)
	b, err := s.ClaimDeliveries(ctx, "r2", t0, t0.Add(time.Minute), 5)
	must(t, "ClaimDeliveries", err)
	if len(a) != 2 || len(b) != 1 || a[0].Event.ID != "msg_0" || a[1].Event.ID != "msg_1" || b[0].Event.ID != "msg_2" {
		t.Fatalf("ClaimDeliveries(2), then (5) = %v, %v; want msg_0, msg_1 then msg_2", a, b)
	}
	now := t0.Add(time.Second)
	errs := s.FinishDeliveries(ctx, "r1", []store.DeliveryOutcome{
		{ID: a[0].ID, State: store.DeliveryDelivered},
		{ID: b[0].ID, State: store.DeliveryDelivered}, // r2's lease
		{ID: a[1].ID, State: store.DeliveryPending, Next: now.Add(time.Hour), LastError: "HTTP 500"},
	}, now)
	if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], store.ErrStale) || errs[2] != nil {
		t.Fatalf("FinishDeliveries = %v, want nil, ErrStale, nil", errs)
	}
	done, err := s.Deliveries(ctx, store.DeliveryDelivered, 10)
	must(t, "Deliveries(delivered)", err)
	if len(done) != 1 || done[0].ID != a[0].ID || !done[0].DoneAt.Equal(now) || done[0].Attempts != 1 {
		t.Errorf("delivered = %+v, want delivery %d done at %v after 1 attempt", done, a[0].ID, now)
	}
	again, err := s.ClaimDeliveries(ctx, "r3", now.Add(time.Hour), now.Add(2*time.Hour), 5)
	must(t, "ClaimDeliveries(retry due)", err)
	if len(again) != 2 || again[0].ID != b[0].ID || again[1].ID != a[1].ID || again[1].LastError != "HTTP 500" {
		t.Errorf("ClaimDeliveries an hour on = %+v, want r2's (lease ran out) and the retry", again)
	}
}

// testFinishAndClaimDeliveries checks a round's outcomes recorded with
// the next claim: the outcomes as FinishDeliveries records them (a lease
// lost refused alone), and a claim that takes what is due after them.
func testFinishAndClaimDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateWebhook", s.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_all", URL: "https://b.example/hook", Events: []string{"*"},
		Secret: store.Sealed{KeyID: "k1", Ciphertext: []byte("sealed")}, Created: t0}))
	for i := range 2 {
		must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"},
			store.WebhookEvent{ID: fmt.Sprint("msg_", i), Type: "x", Time: t0}))
	}
	first, errs, err := s.FinishAndClaimDeliveries(ctx, "r1", nil, t0, t0.Add(time.Minute), 5)
	must(t, "FinishAndClaimDeliveries(no outcomes)", err)
	if len(first) != 2 || len(errs) != 0 {
		t.Fatalf("FinishAndClaimDeliveries(no outcomes) = %v, %v; want msg_0 and msg_1, no errors", first, errs)
	}
	// msg_2 is written while r1 delivers the first two.
	must(t, "AuditWithEvent", s.AuditWithEvent(ctx, store.AuditEvent{Time: t0, Actor: "system", Action: "x"},
		store.WebhookEvent{ID: "msg_2", Type: "x", Time: t0}))
	now := t0.Add(time.Second)
	next, errs, err := s.FinishAndClaimDeliveries(ctx, "r1", []store.DeliveryOutcome{
		{ID: first[0].ID, State: store.DeliveryDelivered},
		{ID: first[1].ID, State: store.DeliveryPending, Next: now.Add(time.Hour), LastError: "HTTP 500"},
		{ID: 1 << 40, State: store.DeliveryDelivered}, // no such lease
	}, now, now.Add(time.Minute), 5)
	must(t, "FinishAndClaimDeliveries", err)
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], store.ErrStale) {
		t.Fatalf("FinishAndClaimDeliveries errs = %v, want nil, nil, ErrStale", errs)
	}
	if len(next) != 1 || next[0].Event.ID != "msg_2" {
		t.Fatalf("FinishAndClaimDeliveries = %+v, want msg_2 alone (msg_0 delivered, msg_1 due in an hour)", next)
	}
	done, err := s.Deliveries(ctx, store.DeliveryDelivered, 10)
	must(t, "Deliveries(delivered)", err)
	if len(done) != 1 || done[0].ID != first[0].ID || !done[0].DoneAt.Equal(now) {
		t.Errorf("delivered = %+v, want delivery %d done at %v", done, first[0].ID, now)
	}
	retry, err := s.ClaimDeliveries(ctx, "r2", now.Add(time.Hour), now.Add(2*time.Hour), 5)
	must(t, "ClaimDeliveries(retry due)", err)
	if len(retry) != 2 || retry[0].ID != next[0].ID || retry[1].ID != first[1].ID || retry[1].Attempts != 1 {
		t.Errorf("ClaimDeliveries an hour on = %+v, want msg_2 (r1's lease ran out), then the retry after 1 attempt", retry)
	}
}

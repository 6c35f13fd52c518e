package api

import (
	"encoding/json"
	"testing"

	"github.com/totpbox/totpbox/enroll/server/events"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// TestTokenChangesRaiseAdminChanged checks that creating and revoking a
// token write the admin.changed event with their audit rows, and that a
// refused change writes none.
func TestTokenChangesRaiseAdminChanged(t *testing.T) {
	ctx := t.Context()
	st := storetest.OpenSQLite(t)
	if err := st.CreateWebhook(ctx, store.WebhookEndpoint{ID: "wh_admin", URL: "https://a.example/", Events: []string{events.AdminChanged},
		Secret: store.Sealed{KeyID: "k", Ciphertext: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateToken(ctx, st, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateToken(ctx, st, "ci"); err == nil {
		t.Fatal("CreateToken(taken name) = nil error")
	}
	if err := RevokeToken(ctx, st, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := RevokeToken(ctx, st, "none"); err == nil {
		t.Fatal("RevokeToken(missing) = nil error")
	}
	ds, err := st.Deliveries(ctx, store.DeliveryPending, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		var data events.Data
		if err := json.Unmarshal([]byte(d.Event.Data), &data); err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Event.Type+" "+data.Action+" "+data.Target)
	}
	want := []string{"admin.changed token.revoke token:ci", "admin.changed token.create token:ci"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("outbox = %q, want %q", got, want)
	}
	audit, err := st.AuditAfter(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 {
		t.Errorf("%d audit rows, want 2: one per change made", len(audit))
	}
}

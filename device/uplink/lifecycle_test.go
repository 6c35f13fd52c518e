package uplink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestOKNeverDuplicatesAnOffer: with two offers open, OK on one leaves the
// other open exactly once (no look-alike re-shown), and OK on that one
// stores its own account; repeated syncs and a sent-again offer change
// nothing. The old client re-queued look-alike offers after each answer,
// so the second OK answered ErrWithdrawn ("Could not store the account").
func TestOKNeverDuplicatesAnOffer(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev-a", "alice", "same name")
	sendOffer(t, s, id, "dev-b", "alice", "same name")
	testkit.WaitFor(t, 10*time.Second, "both offers on screen", func() bool { return len(a.hooks.offers()) == 2 })
	if _, err := a.hooks.offers()[0].Accept(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the accept to reach the server", func() bool { return offerState(t, s, "dev-a") == proto.StateAccepted })
	// The same offer sent again is already queued: nothing new.
	if err := s.api.SendOffer(context.Background(), id, "dev-b", "alice", "same name", newKey(t, "alice"), time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.api.DeviceChanged(context.Background(), appliance.DeviceChange{Kind: store.ChangeRename, DeviceUID: "dev-a", Name: "renamed"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the rename after the accept", func() bool { acc, _ := a.account("dev-a"); return acc.Label == "renamed" })
	open := a.c.Offers()
	if len(open) != 1 || open[0].ID != "dev-b" {
		t.Fatalf("open offers after OK on dev-a = %v, want [dev-b] once", open)
	}
	if _, err := a.hooks.offers()[0].Accept(); err != nil {
		t.Fatalf("OK on the second offer = %v, want it stored", err)
	}
	if open := a.c.Offers(); len(open) != 0 {
		t.Errorf("open offers after both OKs = %v, want none", open)
	}
	if n := a.hooks.showCount(); n != 2 {
		t.Errorf("distinct offers shown = %d, want 2", n)
	}
	if got := len(a.accounts()); got != 2 {
		t.Errorf("accounts = %v, want one per offer", a.accounts())
	}
}

// TestActivateWithdrawsAnOpenOffer: the registration was confirmed by
// another path (a phone scanned the QR code) while the offer was on the
// screen. Even a server that only says "activate" withdraws it: the offer
// leaves the screen and a late OK stores nothing and shows no secret.
func TestActivateWithdrawsAnOpenOffer(t *testing.T) {
	s := newServer(t, false)
	a := startApp(t, s, t.TempDir())
	id := a.pair(s, "A")
	sendOffer(t, s, id, "dev1", "carol", "Edge four")
	stale := a.hooks.take(t)
	if err := s.api.DeviceChanged(context.Background(), appliance.DeviceChange{Kind: store.ChangeActivate, DeviceUID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the offer to leave the screen", func() bool { return len(a.hooks.offers()) == 0 })
	if _, err := stale.Accept(); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("OK on the withdrawn offer = %v, want ErrWithdrawn", err)
	}
	if len(a.accounts()) != 0 {
		t.Errorf("an offer withdrawn by activate left accounts %v", a.accounts())
	}
}

package uplink

import (
	"context"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestTakeoverAcrossARestart: a spare asked to take over three accounts
// says OK while the server cannot take acks, and restarts before they
// arrive. After the restart it does not ask again, stores nothing twice,
// and delivers the acks; the server records the replacement done, and
// the replaced appliance wipes its vault (a local account too), says it
// was wiped, and waits to be paired again.
func TestTakeoverAcrossARestart(t *testing.T) {
	s := newServer(t, false)
	old := startApp(t, s, t.TempDir())
	oldID := old.pair(s, "Lobby")
	spareDir := t.TempDir()
	spare := startApp(t, s, spareDir)
	spareID := spare.pair(s, "Spare")
	if _, err := old.vault.Add(vault.Account{Issuer: "Local", Label: "mine", Key: newKey(t, "mine"), State: vault.Active}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var accounts []appliance.TakeoverAccount
	for _, dev := range []string{"dev1", "dev2", "dev3"} {
		accounts = append(accounts, appliance.TakeoverAccount{DeviceUID: dev, User: "user-" + dev, DeviceName: "Token", Key: newKey(t, dev)})
	}
	rep, err := s.api.Replace(ctx, oldID, spareID, accounts, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the takeover of three accounts", func() bool {
		b, ok := spare.c.Takeover()
		return ok && b.Count == 3 && b.From == "Lobby" && b.ID == rep.ID
	})
	s.acksDown.Store(true)
	if err := spare.c.AnswerTakeover(rep.ID, true); err != nil {
		t.Fatal(err)
	}
	if n := len(spare.accounts()); n != 3 {
		t.Fatalf("spare holds %d accounts after OK, want 3", n)
	}
	spare.stop()
	spare = startApp(t, s, spareDir)
	s.acksDown.Store(false)
	testkit.WaitFor(t, 10*time.Second, "the replacement to be done", func() bool {
		r, err := s.store.Replacement(ctx, rep.ID)
		return err == nil && r.State == store.ReplacementDone
	})
	if _, ok := spare.c.Takeover(); ok {
		t.Error("the spare asks again after its restart")
	}
	seen := map[string]bool{}
	for _, a := range spare.accounts() {
		if seen[a.Source] || a.State != vault.Active {
			t.Errorf("spare account %+v: twice or not active", a.Source)
		}
		seen[a.Source] = true
	}
	if len(seen) != 3 {
		t.Errorf("spare holds %d distinct accounts, want 3", len(seen))
	}
	testkit.WaitFor(t, 10*time.Second, "the old appliance to wipe and wait to be paired", func() bool {
		by, wiped := old.c.Wiped()
		_, _, waiting := old.c.PairingCode()
		return wiped && by == "Spare" && waiting && len(old.accounts()) == 0
	})
}

package system

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

// TestPlacedAccountNamesItsUser: an account the server placed on a kiosk
// for a user names that user on the screen, beside its own name; an
// account added on the appliance names nobody.
func TestPlacedAccountNamesItsUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) store.Store) {
		r := newLifecycleRig(t, open(t))
		kiosk := r.appliance("Lobby kiosk")
		d, _ := r.offer("Front desk", "Lobby kiosk", kiosk)
		r.accept(d, kiosk)
		accts := serverAccounts(kiosk.Vault())
		if len(accts) != 1 || accts[0].User != "carol" {
			t.Fatalf("placed accounts = %v, want one for carol", accts)
		}
		testkit.WaitFor(t, 10*time.Second, "the placed account on the screen", func() bool { return kiosk.State().AccountID == accts[0].ID })
		if st := kiosk.State(); st.User != "carol" || st.Label != "Front desk" {
			t.Errorf("the screen shows %q for user %q, want Front desk for carol", st.Label, st.User)
		}
	})
}

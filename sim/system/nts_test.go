package system

import (
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/testkit"
)

// TestSimulatorNTSOption: with NTS on, the appliance's clock polls the
// fake servers as nts:// servers and its time is authenticated (what it
// reports to the server with each sync); with the option off (the
// default) it syncs over plain NTP and says its time is not
// authenticated.
func TestSimulatorNTSOption(t *testing.T) {
	for _, nts := range []bool{true, false} {
		t.Run(map[bool]string{true: "nts", false: "plain"}[nts], func(t *testing.T) {
			_, sim := startSystem(t, Config{NTS: nts})
			testkit.WaitFor(t, 15*time.Second, "the appliance's clock to sync", func() bool {
				return getState(t, sim.URL+"/sim/state").TimeState == "SYNCED"
			})
			st := getState(t, sim.URL+"/sim/state")
			if st.TimeAuthenticated != nts {
				t.Errorf("time_authenticated %v with NTS %v", st.TimeAuthenticated, nts)
			}
			if st.ClockStatus == nil || len(st.ClockStatus.Servers) != 3 {
				t.Fatalf("state's clock = %+v, want 3 fake servers", st.ClockStatus)
			}
			for _, srv := range st.ClockStatus.Servers {
				if srv.NTS != nts || srv.Authenticated != nts || srv.AuthFailures != 0 || srv.KEFailures != 0 {
					t.Errorf("server %+v with NTS %v: want NTS and authenticated as configured, no failures", srv, nts)
				}
			}
		})
	}
}

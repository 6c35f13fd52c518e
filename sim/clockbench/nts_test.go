package clockbench

import (
	"testing"
	"time"
)

// TestNTSBesidePlain: over NTS the disciplined clock syncs, every trusted
// reading is authenticated, no bound is violated, and its error is what
// it is over plain NTP on the same simulated paths (the NTS fields cost
// no accuracy); over plain NTP no reading is authenticated.
func TestNTSBesidePlain(t *testing.T) {
	for _, sc := range []string{"lan", "internet"} {
		t.Run(sc, func(t *testing.T) {
			run := func(nts bool) Result {
				r, err := Run(Config{Scenario: sc, Seed: 3, Hours: 2, Step: 10 * time.Second, NTS: nts})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			plain, nts := run(false), run(true)
			if !nts.NTS || nts.TimeToSynced < 0 || nts.BoundViolations != 0 {
				t.Fatalf("over NTS: %+v; want SYNCED without bound violations", nts.Figures)
			}
			if nts.AuthenticatedReadings == 0 || nts.AuthenticatedReadings != nts.CountedReadings {
				t.Errorf("over NTS %d authenticated readings of %d counted, want all", nts.AuthenticatedReadings, nts.CountedReadings)
			}
			if plain.AuthenticatedReadings != 0 {
				t.Errorf("over plain NTP %d readings said authenticated", plain.AuthenticatedReadings)
			}
			if nts.RMSError > 1.1*plain.RMSError || nts.MaxAbsError > 1.1*plain.MaxAbsError {
				t.Errorf("over NTS RMS %g s, max %g s; plain RMS %g s, max %g s: want within 1.1x", nts.RMSError, nts.MaxAbsError, plain.RMSError, plain.MaxAbsError)
			}
			if nts.Baselines["naive_sntp"].TimeToSynced < 0 {
				t.Errorf("the naive SNTP baseline got no reply beside NTS")
			}
		})
	}
}

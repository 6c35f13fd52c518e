package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
)

func TestAlertChanges(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	synced := store.ClockReport{At: now, Bound: 40 * time.Millisecond, State: "SYNCED"}
	loose := store.ClockReport{At: now, Bound: 8 * time.Second, State: "HOLDOVER"}
	never := store.ClockReport{At: now, BoundUnknown: true, State: "UNSYNCED"}
	app := func(id string, seen time.Duration, c store.ClockReport) store.Appliance {
		return store.Appliance{ID: id, Name: id, LastSeen: now.Add(-seen), Clock: c}
	}
	open := func(id, kind string) store.ApplianceAlert { return store.ApplianceAlert{ApplianceID: id, Kind: kind} }
	for _, tc := range []struct {
		name string
		apps []store.Appliance
		open []store.ApplianceAlert
		want []string
	}{
		{"all well", []store.Appliance{app("a", time.Minute, synced)}, nil, nil},
		{"goes offline", []store.Appliance{app("a", 6*time.Minute, synced)}, nil, []string{"raise a offline"}},
		{"offline, already raised", []store.Appliance{app("a", time.Hour, synced)}, []store.ApplianceAlert{open("a", AlertOffline)}, nil},
		{"back online", []store.Appliance{app("a", time.Second, synced)}, []store.ApplianceAlert{open("a", AlertOffline)}, []string{"clear a offline"}},
		{"clock bound too wide", []store.Appliance{app("a", 0, loose)}, nil, []string{"raise a clock_untrusted"}},
		{"clock never synced", []store.Appliance{app("a", 0, never)}, nil, []string{"raise a clock_untrusted"}},
		{"clock trusted again", []store.Appliance{app("a", 0, synced)}, []store.ApplianceAlert{open("a", AlertClockUntrusted)}, []string{"clear a clock_untrusted"}},
		{"never synced is not offline", []store.Appliance{{ID: "a"}}, nil, nil},
		{"unpairing is not alerted", []store.Appliance{{ID: "a", LastSeen: now.Add(-time.Hour), Unpairing: true}}, nil, nil},
		{"appliance gone", nil, []store.ApplianceAlert{open("gone", AlertOffline)}, []string{"clear gone offline"}},
	} {
		var got []string
		for _, c := range alertChanges(tc.apps, tc.open, now) {
			verb := "clear"
			if c.raise {
				verb = "raise"
			}
			got = append(got, fmt.Sprintf("%s %s %s", verb, c.app.ID, c.kind))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: alertChanges = %v, want %v", tc.name, got, tc.want)
		}
	}
}

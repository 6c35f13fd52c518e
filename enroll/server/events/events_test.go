package events

import (
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
)

func TestWebhookType(t *testing.T) {
	for _, tc := range []struct {
		action, detail string
		want           string
		raised         bool
	}{
		{"appliance.replace", "", ApplianceReplaced, true},
		{"appliance.pair", "", AppliancePaired, true},
		{"appliance.replace.start", "", "", false},
		{"device.move", "", "", false},
		{"user.create", "admin", AdminChanged, true},
		{"user.create", "", "", false},
	} {
		got, ok := WebhookType(store.AuditEvent{Action: tc.action, Detail: tc.detail})
		if got != tc.want || ok != tc.raised {
			t.Errorf("WebhookType(%s %q) = %q, %v; want %q, %v", tc.action, tc.detail, got, ok, tc.want, tc.raised)
		}
		if ok && !IsType(got) {
			t.Errorf("%s is raised but not in Types", got)
		}
	}
}

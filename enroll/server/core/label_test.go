package core

import (
	"strings"
	"testing"
)

func TestCheckLabelTemplate(t *testing.T) {
	for _, c := range []struct {
		tmpl, err string // err: part of the message; "" when valid
	}{
		{DefaultLabelTemplate, ""},
		{"{device}", ""},
		{"{device} of {user}", ""},
		{"", "empty"},
		{"   ", "empty"},
		{"{user}", "lacks {device}"},
		{"{user}: {device}", "colon"},
		{"{user} {device} {issuer}", "other than {user} and {device}"},
		{"{device} }", "other than {user} and {device}"},
		{"{device}\n", "control character"},
		{strings.Repeat("x", 60) + "{device}", "over 64"},
	} {
		err := CheckLabelTemplate(c.tmpl)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("CheckLabelTemplate(%q) = %v, want nil", c.tmpl, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("CheckLabelTemplate(%q) = %v, want an error saying %q", c.tmpl, err, c.err)
		}
	}
}

func TestAccountLabel(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{"", "alice (Kiosk token)"},
		{"{device} ({user})", "Kiosk token (alice)"},
		{"{device}", "Kiosk token"},
	} {
		s := &Core{cfg: Config{LabelTemplate: c.tmpl}}
		if got := s.accountLabel("alice", "Kiosk token"); got != c.want {
			t.Errorf("accountLabel with %q = %q, want %q", c.tmpl, got, c.want)
		}
	}
}

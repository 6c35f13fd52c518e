package core

import (
	"strings"
	"testing"
)

func TestCleanDeviceName(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"Bob's iPhone", "Bob's iPhone", ""},
		{"  Bob’s iPhone ", "Bob’s iPhone", ""},
		{"Kiosk token +1=2, a.b@c-d_e", "Kiosk token +1=2, a.b@c-d_e", ""},
		{" ", "", "friendly name is empty"},
		{"a/b", "", "friendly name may hold only letters, digits, spaces and + = , . @ - _ ', not “/”"},
		{"a\u200bb", "", "not U+200B"},
		{"a\tb", "", "not U+0009"},
		{strings.Repeat("x", 65), "", "friendly name is longer than 64 characters"},
	}
	for _, tc := range tests {
		got, err := cleanDeviceName(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("cleanDeviceName(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("cleanDeviceName(%q) = %q, %v, want an error with %q", tc.in, got, err, tc.err)
		case err != nil && (strings.Contains(err.Error(), `\`) || strings.Contains(err.Error(), `'\''`)):
			t.Errorf("cleanDeviceName(%q): message %q holds escapes or shell quoting", tc.in, err)
		}
	}
}

package core

import (
	"strconv"
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
		// A spreadsheet reads a cell starting with = + - @ as a formula
		// (issue 22, item 7); inside a name they stay allowed.
		{"=cmd+A1", "", "may not start with"},
		{"+1 phone", "", "may not start with"},
		{"-x", "", "may not start with"},
		{"@home", "", "may not start with"},
		{" =cmd", "", "may not start with"},
		{"Phone a‮b", "", "not U+202E"},
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

// TestCleanEmailAndApplianceName: emails and appliance names refuse bidi
// controls, zero-width and other invisible format characters, and emails
// letters of other scripts that pass for Latin ones, each with a
// one-line message naming the character (issue 22, item 7).
func TestCleanEmailAndApplianceName(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"alice@example.com", "alice@example.com", ""},
		{" Alice.B+tag@example.com ", "Alice.B+tag@example.com", ""},
		{"", "", ""},
		{"alice@exam\u202eple.com", "", "U+202E"},
		{"ali\u200bce@example.com", "", "U+200B"},
		{"alice@ex\u0430mple.com", "", "U+0430"},
		{"\u0430lice@example.com", "", "U+0430"},
		{"not an address", "", "not a valid address"},
	} {
		in := unquote(t, tc.in)
		got, err := cleanEmail(in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("cleanEmail(%q) = %q, %v, want %q", in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n")):
			t.Errorf("cleanEmail(%q) = %q, %v, want a one-line error with %q", in, got, err, tc.err)
		}
	}
	for _, tc := range []struct{ in, want, err string }{
		{"Lobby kiosk 3", "Lobby kiosk 3", ""},
		{"Café ☕ 2", "Café ☕ 2", ""},
		{"Lobby \u202e3 ksoik", "", "U+202E"},
		{"Lob\u200bby", "", "U+200B"},
		{"Lobby\u2066x", "", "U+2066"},
		{"a\u0007b", "", "control character"},
	} {
		in := unquote(t, tc.in)
		got, err := CleanApplianceName(in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("CleanApplianceName(%q) = %q, %v, want %q", in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CleanApplianceName(%q) = %q, %v, want an error with %q", in, got, err, tc.err)
		}
	}
}

// unquote reads the escapes in a test table's string.
func unquote(t *testing.T, s string) string {
	t.Helper()
	u, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

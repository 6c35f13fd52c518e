package main

import (
	"strings"
	"testing"
)

// TestTokenScope: token create --scope scim makes a token that token list
// shows with its scope; a scope other than api or scim is refused in one
// line naming it, before the database is opened.
func TestTokenScope(t *testing.T) {
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	data := t.TempDir()
	if err, out := run(t, "init", "--data", data); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"token", "create", "entra", "--scope", "scim"}, ""},
		{[]string{"token", "create", "ci"}, ""},
		{[]string{"token", "create", "ops", "--scope", "api"}, ""},
		{[]string{"token", "create", "x", "--scope", "admin"}, `token scope must be api or scim, not "admin"`},
	} {
		err, out := run(t, append(c.args, "--data", data)...)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v: %v\n%s", c.args, err, out)
		case c.err == "" && !strings.HasPrefix(out, "tbx_"):
			t.Errorf("%v printed %q, want the token", c.args, out)
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%v = %v, want %q", c.args, err, c.err)
		}
	}
	err, out := run(t, "token", "list", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"entra": "scim", "ci": "api", "ops": "api"}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || want[f[0]] != f[1] {
			t.Errorf("token list line %q, want scope %q", line, want[f[0]])
		}
		delete(want, f[0])
	}
	if len(want) > 0 || !strings.Contains(out, "SCOPE") {
		t.Errorf("token list = %q, missing %v", out, want)
	}
}

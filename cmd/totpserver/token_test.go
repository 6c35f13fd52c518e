package main

import (
	"path/filepath"
	"regexp"
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

// TestTokenCreateRole: token create takes --role, warns when it makes an
// admin token by default, refuses an unknown role with one line, and
// token list shows each token's role.
func TestTokenCreateRole(t *testing.T) {
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	data := filepath.Join(t.TempDir(), "data")
	if err, out := run(t, "init", "--data", data); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	err, out := run(t, "token", "create", "ci", "--data", data)
	if err != nil {
		t.Fatalf("token create ci: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Warning: this admin token can do everything; for an application that only checks codes, create one with --role verify.") {
		t.Errorf("token create without --role gave no warning:\n%s", out)
	}
	err, out = run(t, "token", "create", "app", "--role", "verify", "--data", data)
	if err != nil {
		t.Fatalf("token create app --role verify: %v\n%s", err, out)
	}
	if strings.Contains(out, "Warning") {
		t.Errorf("token create --role verify warned:\n%s", out)
	}
	err, _ = run(t, "token", "create", "s", "--scope", "scim", "--role", "verify", "--data", data)
	if want := "--role is for admin API tokens; a token of scope scim reaches only /scim/v2"; err == nil || err.Error() != want {
		t.Errorf("token create --scope scim --role verify = %v, want %q", err, want)
	}
	err, _ = run(t, "token", "create", "x", "--role", "root", "--data", data)
	if want := `--role: unknown role "root": want one of admin, helpdesk, auditor, verify`; err == nil || err.Error() != want {
		t.Errorf("token create --role root = %v, want %q", err, want)
	}
	err, out = run(t, "token", "list", "--data", data)
	if err != nil {
		t.Fatalf("token list: %v", err)
	}
	for _, want := range []string{`(?m)^NAME\s+SCOPE\s+ROLE\s+CREATED`, `(?m)^ci\s+api\s+admin\s`, `(?m)^app\s+api\s+verify\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("token list does not match %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nx ") {
		t.Errorf("token list shows the refused token x:\n%s", out)
	}
}

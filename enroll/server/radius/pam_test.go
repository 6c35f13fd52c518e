package radius_test

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rad "github.com/totpbox/totpbox/enroll/server/radius"
)

// pamModules are where Debian's libpam-radius-auth puts pam_radius_auth.
var pamModules = []string{
	"/lib/x86_64-linux-gnu/security/pam_radius_auth.so",
	"/usr/lib/x86_64-linux-gnu/security/pam_radius_auth.so",
	"/lib/aarch64-linux-gnu/security/pam_radius_auth.so",
	"/usr/lib/aarch64-linux-gnu/security/pam_radius_auth.so",
	"/lib/security/pam_radius_auth.so",
}

// pamService writes a PAM service in /etc/pam.d (Linux-PAM reads
// services only there) that authenticates with pam_radius_auth against
// addr, and returns its name; it is removed when the test ends.
func pamService(t *testing.T, addr, options string) string {
	t.Helper()
	found := false
	for _, p := range pamModules {
		if _, err := os.Stat(p); err == nil {
			found = true
		}
	}
	testkit.RequirePart(t, !found, "pam_radius_auth.so (Debian package libpam-radius-auth)")
	conf := filepath.Join(t.TempDir(), "pam_radius_auth.conf")
	if err := os.WriteFile(conf, []byte(addr+" "+testSecret+" 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "totpbox-test-" + hex.EncodeToString(b)
	path := filepath.Join("/etc/pam.d", name)
	service := "auth required pam_radius_auth.so conf=" + conf + " " + options + "\naccount required pam_permit.so\n"
	if err := os.WriteFile(path, []byte(service), 0o644); err != nil {
		testkit.RequirePart(t, true, "a writable /etc/pam.d (run as root): "+err.Error())
	}
	t.Cleanup(func() { os.Remove(path) })
	return name
}

// pamtester authenticates user through service, answering the prompts
// with the lines of input, and reports whether it succeeded.
func pamtester(t *testing.T, service, user string, input ...string) (bool, string) {
	t.Helper()
	cmd := exec.Command(need(t, "pamtester", "pamtester"), "-v", service, user, "authenticate")
	cmd.Stdin = strings.NewReader(strings.Join(input, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), "successfully authenticated"), string(out)
}

func TestPAMCode(t *testing.T) {
	need(t, "pamtester", "pamtester")
	// pam_radius_auth 2.0 sends no Message-Authenticator.
	r := newRig(t, func(c *rad.Config) { c.Clients[0].AllowMissingMessageAuthenticator = true })
	k := r.user("alice", "")
	service := pamService(t, r.addr, "prompt=Code")
	good := r.code(k)
	if ok, out := pamtester(t, service, "alice", good); !ok {
		t.Fatalf("pamtester with a good code failed:\n%s", out)
	}
	if ok, out := pamtester(t, service, "alice", good); ok {
		t.Fatalf("pamtester with a replayed code succeeded:\n%s", out)
	}
	if ok, out := pamtester(t, service, "alice", "000000"); ok {
		t.Fatalf("pamtester with a wrong code succeeded:\n%s", out)
	}
	if !r.auditHas("radius.accept", "radius:vpn", "user:alice", "127.0.0.1") {
		t.Error("no radius.accept audit row for the PAM sign-in")
	}
}

func TestPAMPasswordThenCode(t *testing.T) {
	need(t, "pamtester", "pamtester")
	r := newRig(t, func(c *rad.Config) {
		c.Clients[0].Mode = rad.ModePasswordCode
		c.Clients[0].AllowMissingMessageAuthenticator = true
	})
	k := r.user("alice", "correct horse 12")
	service := pamService(t, r.addr, "")
	// The password, then the code at the challenge's prompt.
	ok, out := pamtester(t, service, "alice", "correct horse 12", r.code(k))
	if !ok {
		t.Fatalf("pamtester with password then code failed:\n%s", out)
	}
	if !strings.Contains(out, "Code shown on your totpbox appliance") {
		t.Errorf("the challenge's prompt was not shown:\n%s", out)
	}
	r.clock.Advance(30 * time.Second)
	if ok, out := pamtester(t, service, "alice", "wrong password", r.code(k)); ok {
		t.Fatalf("pamtester with a wrong password succeeded:\n%s", out)
	}
}

package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
)

func TestAccountImportMigration(t *testing.T) {
	sock, v := startDaemonAPI(t)
	s := "--socket=" + sock
	secret := []byte("12345678901234567890")
	var payload []byte
	for _, tok := range []seedfile.Token{
		{Kind: seedfile.TOTP, Key: enroll.Key{Issuer: "GitHub", Account: "alice", Secret: secret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}},
		{Kind: seedfile.HOTP, Counter: 3, Key: enroll.Key{Issuer: "Bank", Account: "bob", Secret: secret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}},
		{Kind: seedfile.TOTP, Key: enroll.Key{Issuer: "Shop", Account: "carol", Secret: bytes.Repeat([]byte{5}, 20), Algorithm: enroll.SHA256, Digits: 8, Period: 30 * time.Second}},
	} {
		payload = seedfile.AppendMigrationAccount(payload, tok)
	}
	uri := seedfile.MigrationURI(payload)

	r := run(t, uri+"\n", "account", "import", s, "--otpauth-migration", "-")
	if r.status != 0 {
		t.Fatalf("account import = %+v", r)
	}
	if !strings.Contains(r.stdout, "imported 2 of 3 accounts (1 HOTP not imported)") {
		t.Errorf("stdout = %q, want the summary", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "account 2 (Bank: bob) not imported: HOTP") {
		t.Errorf("stderr = %q, want one line refusing the HOTP account", r.stderr)
	}
	if v.Len() != 2 {
		t.Fatalf("vault holds %d accounts, want 2", v.Len())
	}
	// The imported account gives the same codes as its secret: RFC 6238's
	// SHA1 vector at 59 s is 94287082 with 8 digits, 287082 with 6.
	for _, a := range v.List() {
		if a.Key.Issuer == "GitHub" {
			if got := enroll.Code(a.Key, time.Unix(59, 0)); got != "287082" {
				t.Errorf("imported account's code at 59 s = %s, want 287082", got)
			}
		}
	}

	checkBadInput(t, run(t, "", "account", "import", s), "--otpauth-migration")
	checkBadInput(t, run(t, "", "account", "import", s, "--otpauth-migration", "otpauth-migration://offline?data=!!!"), "not base64")
	checkBadInput(t, run(t, "", "account", "import", s, "--otpauth-migration", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"), "not an otpauth-migration")
	if v.Len() != 2 {
		t.Errorf("bad imports changed the vault: %d accounts", v.Len())
	}
}

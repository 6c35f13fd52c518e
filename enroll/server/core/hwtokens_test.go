package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/store"
)

// hwKey is a fresh key with the default parameters.
func hwKey(t *testing.T) enroll.Key {
	t.Helper()
	secret := make([]byte, 20)
	rand.Read(secret)
	return enroll.Key{Secret: secret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}
}

// TestHardwareTokens: tokens imported from a seed file are listed without
// their secrets; assigning one takes a code from it (an HOTP code within
// the look-ahead, a TOTP code within the window); then verify accepts its
// codes once each, refuses replays and codes too far ahead, a resync
// finds it again; the same serial cannot be imported or assigned twice.
func TestHardwareTokens(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.HOTPLookAhead, c.HOTPResyncWindow = 10, 100 })
	ctx := context.Background()
	root := Actor{Name: "root", Role: RoleAdmin}
	hk, tk := hwKey(t), hwKey(t)
	tokens := []seedfile.Token{
		{Serial: "HOTP-0001", Kind: seedfile.HOTP, Key: hk, Counter: 0, Manufacturer: "Example"},
		{Serial: "TOTP-0001", Kind: seedfile.TOTP, Key: tk, Owner: "bob"},
	}
	if n, err := f.core.ImportHardwareTokens(ctx, root, tokens); n != 2 || err != nil {
		t.Fatalf("import = %d, %v", n, err)
	}
	if _, err := f.core.ImportHardwareTokens(ctx, root, tokens[:1]); err == nil {
		t.Error("the same serial was imported twice")
	}
	_, err := f.core.ImportHardwareTokens(ctx, Actor{Name: "helpdesk", Role: RoleHelpdesk}, tokens)
	failure(t, "import by a helpdesk", err, 403, "needs the admin role")
	if _, err := f.core.ImportHardwareTokens(ctx, root, nil); err == nil {
		t.Error("an empty file was imported")
	}

	alice, bob := f.user("alice"), f.user("bob")
	hotp := func(c uint64) string { return enroll.HOTP(hk, c) }
	for _, tc := range []struct {
		name, serial, user, code string
		status                   int
		msg                      string
	}{
		{"unknown serial", "NOPE", "alice", hotp(0), 404, `no hardware token "NOPE"`},
		{"unknown user", "HOTP-0001", "nobody", hotp(0), 404, `no user "nobody"`},
		{"code beyond the look-ahead", "HOTP-0001", "alice", hotp(20), 400, "the code does not match hardware token HOTP-0001"},
		{"HOTP code three presses on", "HOTP-0001", "alice", hotp(3), 0, ""},
		{"assigned already", "HOTP-0001", "bob", hotp(4), 409, "hardware token HOTP-0001 is already assigned"},
		{"old TOTP code", "TOTP-0001", "bob", enroll.Code(tk, f.clock.Now().Add(-5*time.Minute)), 400, "the code does not match hardware token TOTP-0001"},
		{"TOTP code now", "TOTP-0001", "bob", enroll.Code(tk, f.clock.Now()), 0, ""},
	} {
		_, err := f.core.AssignHardwareToken(ctx, root, tc.serial, tc.user, tc.code)
		failure(t, tc.name, err, tc.status, tc.msg)
	}
	list, err := f.core.HardwareTokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("tokens = %+v, %v", list, err)
	}
	if list[0].Serial != "HOTP-0001" || list[0].Kind != "hotp" || list[0].AssignedTo != "alice" ||
		list[1].Serial != "TOTP-0001" || list[1].Kind != "totp" || list[1].AssignedTo != "bob" || list[1].Username != "bob" {
		t.Errorf("tokens = %+v", list)
	}

	for _, c := range []struct {
		name   string
		code   string
		ok     bool
		reason string
	}{
		{"next press", hotp(4), true, ""},
		{"the same code again", hotp(4), false, ReasonReplay},
		{"a code pressed before", hotp(2), false, ReasonReplay},
		{"two presses skipped", hotp(7), true, ""},
		{"far beyond the look-ahead", hotp(60), false, ReasonInvalid},
	} {
		if res := f.verify("alice", c.code); res.OK != c.ok || res.Reason != c.reason {
			t.Errorf("%s: verify = %+v, want ok %v reason %q", c.name, res, c.ok, c.reason)
		}
	}
	devs, err := f.st.DevicesByUser(ctx, alice.ID)
	if err != nil || len(devs) != 1 || devs[0].Kind != store.KindHardware || devs[0].Counter != 8 {
		t.Fatalf("alice's devices = %+v, %v; want the token at counter 8", devs, err)
	}
	_, err = f.core.ResyncDevice(ctx, root, alice, devs[0].ID, []string{hotp(70), hotp(72)})
	failure(t, "resync with codes not in a row", err, 400, "not two codes in a row from this token")
	if d, err := f.core.ResyncDevice(ctx, root, alice, devs[0].ID, []string{hotp(70), hotp(71)}); err != nil || d.Counter != 72 {
		t.Fatalf("resync = counter %d, %v; want 72", d.Counter, err)
	}
	if res := f.verify("alice", hotp(72)); !res.OK {
		t.Errorf("the code after the resync = %+v", res)
	}

	f.clock.Advance(30 * time.Second)
	if res := f.verify(bob.Username, enroll.Code(tk, f.clock.Now())); !res.OK {
		t.Errorf("bob's TOTP token = %+v", res)
	}

	var out bytes.Buffer
	n, err := ExportHardwareTokens(ctx, f.st.(TokenStore), f.core.sealer.(TokenSealer), &out, []byte("export pass"), seedfile.WriteOptions{Iterations: 1000}, "root", f.clock.Now())
	if err != nil || n != 2 {
		t.Fatalf("export = %d, %v", n, err)
	}
	back, err := seedfile.ReadPSKC(&out, seedfile.Keys{Password: []byte("export pass")})
	if err != nil || len(back) != 2 {
		t.Fatalf("the export reads back as %d tokens, %v", len(back), err)
	}
	i := slices.IndexFunc(back, func(t seedfile.Token) bool { return t.Serial == "HOTP-0001" })
	if i < 0 {
		t.Fatalf("the export lacks HOTP-0001: %+v", back)
	}
	if !bytes.Equal(back[i].Key.Secret, hk.Secret) || back[i].Counter != 73 {
		t.Errorf("exported HOTP token: counter %d (same secret %v), want its secret and counter 73", back[i].Counter, bytes.Equal(back[i].Key.Secret, hk.Secret))
	}
	acts := f.actions()
	for _, a := range []string{"hardware-token.import", "hardware-token.assign.fail", "device.register"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %s", acts, a)
		}
	}
}

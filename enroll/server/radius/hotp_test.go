package radius_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/server/core"
)

// TestRadclientHOTP: a user whose MFA device is an imported HOTP hardware
// token is accepted by FreeRADIUS's radclient with the token's code
// (computed by oathtool), once; a code beyond the look-ahead window is
// rejected.
func TestRadclientHOTP(t *testing.T) {
	need(t, "radclient", "freeradius-utils")
	oathtool := need(t, "oathtool", "oathtool")
	r := newRig(t, nil)
	ctx := context.Background()
	secret := []byte("hotp-secret-for-radius")
	token := seedfile.Token{Serial: "EV-1", Kind: seedfile.HOTP, Counter: 3,
		Key: enroll.Key{Secret: secret, Algorithm: enroll.SHA1, Digits: 6, Period: enroll.DefaultPeriod}}
	if _, err := r.core.ImportHardwareTokens(ctx, core.System, []seedfile.Token{token}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.core.CreateUser(ctx, core.System, core.NewUser{Username: "erin"}); err != nil {
		t.Fatal(err)
	}
	code := func(counter int) string {
		out, err := exec.Command(oathtool, "-c", fmt.Sprint(counter), hex.EncodeToString(secret)).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := r.core.AssignHardwareToken(ctx, core.System, "EV-1", "erin", code(3)); err != nil {
		t.Fatal(err)
	}
	ask := func(c string) string {
		return received(radclient(t, r.addr, testSecret, `User-Name = "erin", User-Password = "`+c+`", NAS-Identifier = "vpn", Message-Authenticator = 0x00`))
	}
	for _, tc := range []struct {
		name    string
		counter int
		want    string
	}{
		{"next code", 4, "Access-Accept"},
		{"replay", 4, "Access-Reject"},
		{"within the look-ahead window", 12, "Access-Accept"},
		{"beyond it", 30, "Access-Reject"},
	} {
		if got := ask(code(tc.counter)); got != tc.want {
			t.Errorf("%s (counter %d): radclient received %s, want %s", tc.name, tc.counter, got, tc.want)
		}
	}
}

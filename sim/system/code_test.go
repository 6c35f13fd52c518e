package system

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/internal/testkit"
)

// fixedClock is a synced clock stopped at one instant, so that a test
// can name the code every account must show.
type fixedClock struct{ at time.Time }

func (c fixedClock) Now() clock.Reading { return clock.Reading{Time: c.at, State: clock.Synced} }

// TestStateCodeIsTheScreensCode checks that /sim/state's code is the code
// on the glass for every account: held in the TPM, kept in software
// (SHA-512, or a software-mode appliance), pending, and the demo
// accounts, on an OLED and (in TPM mode) an e-paper panel. Accounts with a known
// secret are checked against RFC 6238 itself.
func TestStateCodeIsTheScreensCode(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 0, 10, 0, time.UTC) // early in a 30 s step: no preview
	for _, tc := range []struct {
		name, panel string
		tpm         bool
	}{
		{"tpm oled", "ssd1306-128x64", true},
		{"tpm e-paper", "epd-250x122", true},
		{"software oled", "ssd1306-128x64", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ApplianceConfig{Name: "kiosk", Panel: tc.panel, Dir: t.TempDir(), Clock: fixedClock{at}, Demo: true, Logger: testkit.Quiet()}
			if tc.tpm {
				tpmtest.Require(t)
				cfg.TPMDir = t.TempDir()
			}
			a, err := NewAppliance(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "tpm", false: "software"}[tc.tpm]; a.Secrets() != want {
				t.Fatalf("secrets = %s, want %s", a.Secrets(), want)
			}
			known := map[string]enroll.Key{} // account id -> key with its secret
			for _, k := range []struct {
				account string
				alg     enroll.Algorithm
				state   vault.State
			}{
				{"sha1-active", enroll.SHA1, vault.Active},
				{"sha256-active", enroll.SHA256, vault.Active},
				{"sha512-active", enroll.SHA512, vault.Active},
				{"pending", enroll.SHA1, vault.Pending},
			} {
				key := enroll.Key{Issuer: "Test", Account: k.account, Secret: []byte("12345678901234567890" + k.account), Algorithm: k.alg, Digits: 6, Period: 30 * time.Second}
				acct, err := a.Vault().Add(vault.Account{Issuer: "Test", Label: k.account, Key: key, State: k.state})
				if err != nil {
					t.Fatal(err)
				}
				if inTPM := tc.tpm && k.state == vault.Active && k.alg != enroll.SHA512; acct.InTPM != inTPM {
					t.Fatalf("%s: InTPM = %v, want %v", k.account, acct.InTPM, inTPM)
				}
				known[acct.ID] = key
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Run() = %v", err)
				}
			}()
			accts := a.Vault().List()
			if len(accts) != 3+len(known) {
				t.Fatalf("%d accounts, want 3 demo and %d added", len(accts), len(known))
			}
			for i, acct := range accts {
				if i > 0 {
					if err := a.Press(ctx, device.Next); err != nil {
						t.Fatal(err)
					}
				}
				var st State
				testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("the code of %s on the screen", acct.Name()), func() bool {
					st = a.State()
					return st.AccountID == acct.ID && st.CodeShown
				})
				want, err := acct.CodeAt(enroll.Step(acct.Key, at)) // what the loop computes
				if err != nil {
					t.Fatal(err)
				}
				if key, ok := known[acct.ID]; ok {
					if rfc := enroll.Code(key, at); want != rfc {
						t.Fatalf("%s: the vault computes %s, RFC 6238 says %s", acct.Name(), want, rfc)
					}
				}
				if st.Code != want {
					t.Errorf("%s (%s, in TPM %v): /sim/state code = %q, the screen shows %q", acct.Name(), acct.State, acct.InTPM, st.Code, want)
				}
			}
		})
	}
}

package enroll

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseURI(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	tests := []struct {
		uri     string
		want    Key
		wantErr string
	}{
		{
			uri:  "otpauth://totp/ACME%20Co:alice@example.com?secret=" + secret + "&issuer=ACME%20Co",
			want: Key{Issuer: "ACME Co", Account: "alice@example.com", Algorithm: SHA1, Digits: 6, Period: 30 * time.Second},
		},
		{
			uri:  "otpauth://totp/bob?secret=" + strings.ToLower(secret) + "&algorithm=SHA512&digits=8&period=60",
			want: Key{Account: "bob", Algorithm: SHA512, Digits: 8, Period: time.Minute},
		},
		{
			uri:  "otpauth://totp/Example:carol?secret=JBSW-Y3DP EHPK3PXP-JBSWY3DPEHPK3PXP====",
			want: Key{Issuer: "Example", Account: "carol", Algorithm: SHA1, Digits: 6, Period: 30 * time.Second},
		},
		{uri: "otpauth://hotp/x?secret=" + secret + "&counter=1", wantErr: "type hotp"},
		{uri: "otpauth://totp/x", wantErr: "missing secret"},
		{uri: "otpauth://totp/x?secret=", wantErr: "missing secret"},
		{uri: "otpauth://totp/x?secret=JBSW1!", wantErr: "not valid base32"},
		{uri: "otpauth://totp/x?secret=JBSWY3DP", wantErr: "under the minimum of 80"},
		{uri: "otpauth://totp/x?secret=" + secret + "&algorithm=MD5", wantErr: "unknown algorithm"},
		{uri: "otpauth://totp/x?secret=" + secret + "&digits=7", wantErr: "digits must be 6 or 8"},
		{uri: "otpauth://totp/x?secret=" + secret + "&period=5", wantErr: "period must be 15 to 120"},
		{uri: "otpauth://totp/x?secret=" + secret + "&period=121", wantErr: "period must be 15 to 120"},
		{uri: "otpauth://totp/A:x?secret=" + secret + "&issuer=B", wantErr: "disagrees"},
		{uri: "https://example.com/?secret=" + secret, wantErr: "scheme"},
		{uri: "otpauth://totp/x?secret=%zz", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := ParseURI(tt.uri)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURI() error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseURI() error %q leaks the secret or spans lines", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI() error = %v", err)
			}
			if got.SecretBase32() != secret {
				t.Errorf("secret = %s, want %s", got.SecretBase32(), secret)
			}
			if got.Issuer != tt.want.Issuer || got.Account != tt.want.Account || got.Algorithm != tt.want.Algorithm ||
				got.Digits != tt.want.Digits || got.Period != tt.want.Period {
				t.Errorf("ParseURI() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestURIOmitsDefaults(t *testing.T) {
	k := Key{Issuer: "ACME", Account: "alice", Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	want := "otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME"
	if got := k.URI(); got != want {
		t.Errorf("URI() = %s, want %s", got, want)
	}
	k.Algorithm, k.Digits, k.Period = SHA256, 8, 60*time.Second
	if got := k.URI(); !strings.HasSuffix(got, "&algorithm=SHA256&digits=8&period=60") {
		t.Errorf("URI() = %s, want non-default parameters", got)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, k := range []Key{
		{Issuer: "ACME Co", Account: "alice@example.com", Algorithm: SHA1, Digits: 6, Period: 30 * time.Second},
		{Issuer: "Ünïcode & Sons", Account: "bøb+tag/1?x=y", Algorithm: SHA256, Digits: 8, Period: 15 * time.Second},
		{Account: "colon:in account", Algorithm: SHA1, Digits: 6, Period: 30 * time.Second},
		{Account: "no issuer", Algorithm: SHA512, Digits: 6, Period: 120 * time.Second},
	} {
		k.Secret = bytes.Repeat([]byte{0xA5}, 20)
		got, err := ParseURI(k.URI())
		if err != nil {
			t.Fatalf("ParseURI(%s) error = %v", k.URI(), err)
		}
		if got.URI() != k.URI() || !bytes.Equal(got.Secret, k.Secret) || got.Issuer != k.Issuer || got.Account != k.Account {
			t.Errorf("round trip of %s gave %+v", k.URI(), got)
		}
	}
}

func TestNewKey(t *testing.T) {
	a, err := NewKey("ACME", "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey("ACME", "alice")
	if len(a.Secret) != NewSecretLen || bytes.Equal(a.Secret, b.Secret) {
		t.Errorf("NewKey secrets: %d bytes, equal=%v; want %d random bytes", len(a.Secret), bytes.Equal(a.Secret, b.Secret), NewSecretLen)
	}
	if strings.Contains(a.String(), a.SecretBase32()) {
		t.Errorf("Key.String() = %q contains the secret", a.String())
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME",
		"otpauth://totp/bob?secret=jbswy3dpehpk3pxpjbswy3dp&algorithm=SHA256&digits=8&period=60",
		"otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=0",
		"otpauth://totp/%E2%82%AC:x?secret=JBSW-Y3DP-EHPK-3PXP",
		"otpauth://totp/?secret=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseURI(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("ParseURI accepted an invalid key: %v", err)
		}
		again, err := ParseURI(k.URI())
		if err != nil {
			t.Fatalf("ParseURI(URI()) of an accepted key failed: %v", err)
		}
		if again.URI() != k.URI() {
			t.Fatalf("URI not stable: %s then %s", k.URI(), again.URI())
		}
	})
}

package proto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/totpbox/totpbox/enroll"
)

func TestSealOffer(t *testing.T) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, _ := box.GenerateKey(rand.Reader)
	key := enroll.Key{Issuer: "Example", Account: "alice", Secret: []byte("12345678901234567890"),
		Algorithm: enroll.SHA256, Digits: 8, Period: 60 * time.Second}
	seq := []string{"next", "back", "next", "ok"}
	sealed, err := SealOffer(pub[:], "dev1", key, seq)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, key.Secret) || bytes.Contains(sealed, []byte(key.SecretBase32())) {
		t.Fatal("sealed offer contains the secret in the clear")
	}
	got, gotSeq, err := OpenOffer(sealed, "dev1", pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, key) || !reflect.DeepEqual(gotSeq, seq) {
		t.Errorf("OpenOffer = %v, %v; want %v, %v", got, gotSeq, key, seq)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for _, tt := range []struct {
		name      string
		sealed    []byte
		device    string
		pub, priv *[32]byte
	}{
		{"other appliance", sealed, "dev1", otherPub, otherPriv},
		{"other device", sealed, "dev2", pub, priv},
		{"tampered", tampered, "dev1", pub, priv},
		{"empty", nil, "dev1", pub, priv},
	} {
		if _, _, err := OpenOffer(tt.sealed, tt.device, tt.pub, tt.priv); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: OpenOffer = %v, want ErrSealed", tt.name, err)
		}
	}
	if _, err := SealOffer(pub[:5], "dev1", key, seq); err == nil {
		t.Error("SealOffer with a short box key succeeded")
	}
	if _, err := SealOffer(pub[:], "dev1", enroll.Key{}, seq); err == nil {
		t.Error("SealOffer of an invalid key succeeded")
	}
}

func TestSyncQuery(t *testing.T) {
	tests := []struct {
		name string
		q    SyncQuery
	}{
		{"no clock", SyncQuery{After: 7, Wait: 60 * time.Second, Version: "1.2.3", Accounts: 4}},
		{"clock", SyncQuery{After: 0, Wait: 0, Accounts: 0, Clock: &ClockReport{
			Time: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), Bound: 1500 * time.Microsecond,
			State: "SYNCED", Frequency: -12.25}}},
		{"clock authenticated", SyncQuery{After: 2, Clock: &ClockReport{
			Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Bound: time.Millisecond,
			State: "SYNCED", Frequency: 3, Authenticated: true}}},
		{"secrets tpm", SyncQuery{After: 3, Accounts: 1, Secrets: SecretsTPM}},
		{"secrets software", SyncQuery{After: 3, Accounts: 1, Secrets: SecretsSoftware}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSyncQuery(tt.q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.q) {
				t.Errorf("ParseSyncQuery(Encode(%+v)) = %+v", tt.q, got)
			}
		})
	}
	bad := []string{"after=-1", "after=x", "wait=x", "accounts=-2",
		"clock_time=yesterday", "clock_time=2026-03-01T12:00:00Z&clock_bound=x&clock_state=SYNCED&clock_ppm=1",
		"clock_time=2026-03-01T12:00:00Z&clock_bound=1&clock_ppm=1",
		"clock_time=2026-03-01T12:00:00Z&clock_bound=1&clock_state=SYNCED&clock_ppm=fast",
		"secrets=hsm", "clock_time=2026-03-01T12:00:00Z&clock_bound=1&clock_state=SYNCED&clock_ppm=1&clock_authenticated=yes"}
	for _, s := range bad {
		v, _ := url.ParseQuery(s)
		if _, err := ParseSyncQuery(v); err == nil {
			t.Errorf("ParseSyncQuery(%s) succeeded", s)
		}
	}
	v, _ := url.ParseQuery("wait=600")
	if q, _ := ParseSyncQuery(v); q.Wait != MaxWait {
		t.Errorf("wait=600 gave %v, want MaxWait", q.Wait)
	}
}

// TestOfferSequence: a new offer's button sequence is drawn at random,
// ends in ok and is sealed with it; a sequence that is not one is refused.
func TestOfferSequence(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		seq := NewSequence()
		if err := checkSequence(seq); err != nil || len(seq) != SequencePresses {
			t.Fatalf("NewSequence = %v: %v", seq, err)
		}
		seen[fmt.Sprint(seq)] = true
	}
	if len(seen) < 10 {
		t.Errorf("200 sequences drew only %d distinct ones", len(seen))
	}
	pub, _, _ := box.GenerateKey(rand.Reader)
	key := enroll.Key{Issuer: "Example", Account: "alice", Secret: []byte("12345678901234567890"),
		Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}
	for _, bad := range [][]string{nil, {"ok"}, {"next", "back"}, {"next", "jump", "ok"}, make([]string, 9)} {
		if _, err := SealOffer(pub[:], "dev1", key, bad); err == nil {
			t.Errorf("SealOffer with sequence %q succeeded", bad)
		}
	}
}

// TestOpenOfferRefusesVersion1: an offer sealed before the button
// sequence cannot be opened, so it cannot be accepted by OK alone.
func TestOpenOfferRefusesVersion1(t *testing.T) {
	pub, priv, _ := box.GenerateKey(rand.Reader)
	plain := []byte(`{"v":1,"device_id":"dev1","issuer":"Example","account":"alice","secret":"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=","algorithm":"SHA1","digits":6,"period":30}`)
	sealed, err := box.SealAnonymous(nil, plain, pub, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenOffer(sealed, "dev1", pub, priv); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("OpenOffer of a version 1 offer = %v, want version 1 refused", err)
	}
}

func TestSealTakeover(t *testing.T) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, _ := box.GenerateKey(rand.Reader)
	key := enroll.Key{Issuer: "Example", Account: "alice", Secret: []byte("12345678901234567890"),
		Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}
	sealed, err := SealTakeover(pub[:], "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, key.Secret) {
		t.Fatal("sealed takeover contains the secret in the clear")
	}
	got, err := OpenTakeover(sealed, "dev1", pub, priv)
	if err != nil || !reflect.DeepEqual(got, key) {
		t.Fatalf("OpenTakeover = %v, %v; want %v", got, err, key)
	}
	offer, err := SealOffer(pub[:], "dev1", key, []string{"next", "ok"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		sealed    []byte
		device    string
		pub, priv *[32]byte
		want      string
	}{
		{"other appliance", sealed, "dev1", otherPub, otherPriv, "cannot be opened"},
		{"other device", sealed, "dev2", pub, priv, "another MFA device"},
		{"an offer", offer, "dev1", pub, priv, "version 2 is not a takeover"},
	} {
		if _, err := OpenTakeover(tt.sealed, tt.device, tt.pub, tt.priv); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: OpenTakeover = %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	if _, _, err := OpenOffer(sealed, "dev1", pub, priv); err == nil {
		t.Error("a sealed takeover opened as an offer")
	}
}

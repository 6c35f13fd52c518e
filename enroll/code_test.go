package enroll

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// RFC 4226 Appendix D.
func TestHOTPRFC4226(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6}
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := HOTP(k, uint64(i)); got != w {
			t.Errorf("HOTP(counter %d) = %s, want %s", i, got, w)
		}
	}
}

// RFC 6238 Appendix B, with each algorithm's own seed length.
func TestTOTPRFC6238(t *testing.T) {
	seeds := map[Algorithm][]byte{
		SHA1:   []byte("12345678901234567890"),
		SHA256: []byte("12345678901234567890123456789012"),
		SHA512: []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	tests := []struct {
		unix int64
		alg  Algorithm
		want string
	}{
		{59, SHA1, "94287082"}, {59, SHA256, "46119246"}, {59, SHA512, "90693936"},
		{1111111109, SHA1, "07081804"}, {1111111109, SHA256, "68084774"}, {1111111109, SHA512, "25091201"},
		{1111111111, SHA1, "14050471"}, {1111111111, SHA256, "67062674"}, {1111111111, SHA512, "99943326"},
		{1234567890, SHA1, "89005924"}, {1234567890, SHA256, "91819424"}, {1234567890, SHA512, "93441116"},
		{2000000000, SHA1, "69279037"}, {2000000000, SHA256, "90698825"}, {2000000000, SHA512, "38618901"},
		{20000000000, SHA1, "65353130"}, {20000000000, SHA256, "77737706"}, {20000000000, SHA512, "47863826"},
	}
	for _, tt := range tests {
		k := Key{Secret: seeds[tt.alg], Algorithm: tt.alg, Digits: 8, Period: 30 * time.Second}
		if got := Code(k, time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("Code(%v, %d) = %s, want %s", tt.alg, tt.unix, got, tt.want)
		}
	}
}

// TestCodeAgainstPquerna checks Code against an independent implementation
// on random keys over every algorithm, digit count and period.
func TestCodeAgainstPquerna(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	algs := map[Algorithm]otp.Algorithm{SHA1: otp.AlgorithmSHA1, SHA256: otp.AlgorithmSHA256, SHA512: otp.AlgorithmSHA512}
	for i := 0; i < 500; i++ {
		secret := make([]byte, 10+r.IntN(54))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		alg := Algorithm(r.IntN(3))
		k := Key{Secret: secret, Algorithm: alg, Digits: []int{6, 8}[r.IntN(2)], Period: time.Duration(15+r.IntN(106)) * time.Second}
		at := time.Unix(r.Int64N(4e9), 0)
		want, err := totp.GenerateCodeCustom(k.SecretBase32(), at, totp.ValidateOpts{
			Period: uint(k.Period / time.Second), Digits: otp.Digits(k.Digits), Algorithm: algs[alg],
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := Code(k, at); got != want {
			t.Fatalf("Code(%v, %v) = %s, pquerna/otp says %s", k, at.Unix(), got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	now := time.Unix(1_700_000_000, 0)
	step := Step(k, now)
	tests := []struct {
		name     string
		code     string
		opts     VerifyOptions
		wantStep int64
		wantOK   bool
	}{
		{"current", CodeAt(k, step), VerifyOptions{}, step, true},
		{"previous outside window 0", CodeAt(k, step-1), VerifyOptions{}, 0, false},
		{"previous in window 1", CodeAt(k, step-1), VerifyOptions{Window: 1}, step - 1, true},
		{"next in window 1", CodeAt(k, step+1), VerifyOptions{Window: 1}, step + 1, true},
		{"two ahead outside window 1", CodeAt(k, step+2), VerifyOptions{Window: 1}, 0, false},
		{"drift moves the centre", CodeAt(k, step+5), VerifyOptions{Window: 1, Drift: 4}, step + 5, true},
		{"replay of last used", CodeAt(k, step), VerifyOptions{Window: 1, LastUsed: step}, 0, false},
		{"older than last used", CodeAt(k, step-1), VerifyOptions{Window: 1, LastUsed: step - 1}, 0, false},
		{"newer than last used", CodeAt(k, step+1), VerifyOptions{Window: 1, LastUsed: step}, step + 1, true},
		{"wrong length", "12345", VerifyOptions{Window: 1}, 0, false},
		{"wrong code", wrong(CodeAt(k, step)), VerifyOptions{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Verify(k, tt.code, now, tt.opts)
			if ok != tt.wantOK || got != tt.wantStep {
				t.Errorf("Verify(%q, %+v) = %d, %v; want %d, %v", tt.code, tt.opts, got, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestResync(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	now := time.Unix(1_700_000_000, 0)
	step := Step(k, now)
	for _, off := range []int64{-700, -1, 0, 3, 999} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			s := step + off
			got, ok := Resync(k, CodeAt(k, s-1), CodeAt(k, s), now, 0, 1000, 0)
			if !ok || got != s {
				t.Errorf("Resync at offset %d = %d, %v; want %d, true", off, got, ok, s)
			}
		})
	}
	if _, ok := Resync(k, CodeAt(k, step+1), CodeAt(k, step), now, 0, 1000, 0); ok {
		t.Error("Resync accepted codes in the wrong order")
	}
	if _, ok := Resync(k, CodeAt(k, step-1), CodeAt(k, step), now, 0, 1000, step); ok {
		t.Error("Resync accepted a step at or below last used")
	}
	if _, ok := Resync(k, CodeAt(k, step+1200), CodeAt(k, step+1201), now, 0, 1000, 0); ok {
		t.Error("Resync accepted codes outside its window")
	}
}

func TestStepNegativeAndBoundaries(t *testing.T) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	tests := []struct {
		unix int64
		want int64
	}{{0, 0}, {29, 0}, {30, 1}, {-1, -1}, {-30, -1}, {-31, -2}}
	for _, tt := range tests {
		if got := Step(k, time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("Step(%d) = %d, want %d", tt.unix, got, tt.want)
		}
		if s := StepStart(k, Step(k, time.Unix(tt.unix, 0))); s.Unix() > tt.unix || tt.unix-s.Unix() >= 30 {
			t.Errorf("StepStart(Step(%d)) = %d, not the start of its step", tt.unix, s.Unix())
		}
	}
}

func BenchmarkCode(b *testing.B) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	at := time.Unix(1_700_000_000, 0)
	for b.Loop() {
		Code(k, at)
	}
}

func BenchmarkVerifyWindow1(b *testing.B) {
	k := Key{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	at := time.Unix(1_700_000_000, 0)
	code := wrong(Code(k, at))
	for b.Loop() {
		Verify(k, code, at, VerifyOptions{Window: 1})
	}
}

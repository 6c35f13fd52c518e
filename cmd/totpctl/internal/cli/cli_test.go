package cli

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/totpbox/totpbox/enroll"
)

// fixedNow is the clock of every test run.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)

type result struct {
	stdout, stderr string
	status         int
}

// run executes totpctl with args, stdin and the fixed clock.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, now: func() time.Time { return fixedNow }}
	status := execute(newRoot(e), args, &stderr)
	return result{stdout.String(), stderr.String(), status}
}

// checkBadInput fails unless r is a bad-input exit with nothing on stdout
// and a one-line "totpctl: " error containing want, without usage text.
func checkBadInput(t *testing.T, r result, want string, secrets ...string) {
	t.Helper()
	if r.status != ExitBadInput {
		t.Errorf("status = %d, want %d (stderr %q)", r.status, ExitBadInput, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "totpctl: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr = %q, want one line starting with %q", r.stderr, "totpctl: ")
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "Usage") || strings.Contains(r.stderr, "Flags:") {
		t.Errorf("stderr holds usage text: %q", r.stderr)
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToUpper(r.stderr), strings.ToUpper(s)) {
			t.Errorf("stderr %q shows the secret", r.stderr)
		}
	}
}

// RFC 6238 Appendix B seeds, in base32.
const (
	seedSHA1   = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"                                                                        // "12345678901234567890"
	seedSHA256 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA"                                                    // 32 bytes
	seedSHA512 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA" // 64 bytes
)

func TestCode(t *testing.T) {
	sha1URI := "otpauth://totp/Ex:alice?secret=" + seedSHA1 + "&digits=8"
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"RFC 6238 SHA1 at 59", "", []string{"code", "--uri", sha1URI, "--at", "59"}, "94287082"},
		{"RFC 6238 SHA1 RFC 3339", "", []string{"code", "--uri", sha1URI, "--at", "1970-01-01T00:00:59Z"}, "94287082"},
		{"RFC 6238 SHA1 zone offset", "", []string{"code", "--uri", sha1URI, "--at", "2005-03-18T03:58:29+02:00"}, "07081804"},
		{"RFC 6238 SHA1 1111111109", "", []string{"code", "--uri", sha1URI, "--at", "1111111109"}, "07081804"},
		{"RFC 6238 SHA1 fraction", "", []string{"code", "--uri", sha1URI, "--at", "2005-03-18T01:58:29.999Z"}, "07081804"},
		{"RFC 6238 SHA1 2603", "", []string{"code", "--uri", sha1URI, "--at", "20000000000"}, "65353130"},
		{"RFC 6238 SHA256", "", []string{"code", "--uri", "otpauth://totp/x?secret=" + seedSHA256 + "&algorithm=SHA256&digits=8", "--at", "1111111111"}, "67062674"},
		{"RFC 6238 SHA512", "", []string{"code", "--uri", "otpauth://totp/x?secret=" + seedSHA512 + "&algorithm=SHA512&digits=8", "--at", "1234567890"}, "93441116"},
		{"six digits", "", []string{"code", "--uri", "otpauth://totp/x?secret=" + seedSHA1, "--at", "59"}, "287082"},
		{"flag=value", "", []string{"code", "--uri=" + sha1URI, "--at=59"}, "94287082"},
		{"uri on stdin", sha1URI + "\n", []string{"code", "--uri", "-", "--at", "59"}, "94287082"},
		{"default now", "", []string{"code", "--uri", sha1URI}, enroll.Code(mustParse(t, sha1URI), fixedNow)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, tc.args...)
			if r.status != ExitOK || r.stdout != tc.want+"\n" || r.stderr != "" {
				t.Errorf("totpctl %q = %q, %q, status %d; want %q", tc.args, r.stdout, r.stderr, r.status, tc.want+"\n")
			}
		})
	}
}

func mustParse(t *testing.T, uri string) enroll.Key {
	t.Helper()
	k, err := enroll.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCodeBadInput(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DP"
	good := "otpauth://totp/Ex:alice?secret=" + secret
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no uri", "", []string{"code"}, `required flag(s) "uri" not set`},
		{"empty uri", "", []string{"code", "--uri", ""}, "scheme"},
		{"not a uri", "", []string{"code", "--uri", "hello"}, "scheme"},
		{"hotp", "", []string{"code", "--uri", "otpauth://hotp/x?secret=" + secret}, "hotp"},
		{"bad base32", "", []string{"code", "--uri", "otpauth://totp/x?secret=" + secret + "1"}, "base32"},
		{"short secret", "", []string{"code", "--uri", "otpauth://totp/x?secret=JBSWY3DP"}, "under the minimum"},
		{"missing secret", "", []string{"code", "--uri", "otpauth://totp/x"}, "missing secret"},
		{"bad digits", "", []string{"code", "--uri", good + "&digits=7"}, "digits"},
		{"bad period", "", []string{"code", "--uri", good + "&period=5"}, "period"},
		{"bad algorithm", "", []string{"code", "--uri", good + "&algorithm=MD5"}, "algorithm"},
		{"issuers disagree", "", []string{"code", "--uri", good + "&issuer=Other"}, "disagrees"},
		{"bad time", "", []string{"code", "--uri", good, "--at", "yesterday"}, "neither RFC 3339"},
		{"empty time", "", []string{"code", "--uri", good, "--at", ""}, "neither RFC 3339"},
		{"negative unix", "", []string{"code", "--uri", good, "--at", "-1"}, "before 1970"},
		{"before 1970", "", []string{"code", "--uri", good, "--at", "1969-12-31T23:59:59Z"}, "before 1970"},
		{"milliseconds", "", []string{"code", "--uri", good, "--at", "1700000000000000"}, "too far"},
		{"time without zone", "", []string{"code", "--uri", good, "--at", "2026-03-01T12:00:00"}, "neither RFC 3339"},
		{"extra argument", "", []string{"code", "--uri", good, "extra"}, `unknown command "extra"`},
		{"unknown flag", "", []string{"code", "--uri", good, "--digits", "8"}, "unknown flag: --digits"},
		{"flag without value", "", []string{"code", "--uri"}, "flag needs an argument"},
		{"empty stdin", "", []string{"code", "--uri", "-"}, "nothing on stdin"},
		{"two lines on stdin", good + "\n" + good + "\n", []string{"code", "--uri", "-"}, "more than one line"},
		{"unknown command", "", []string{"codes"}, `unknown command "codes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkBadInput(t, run(t, tc.stdin, tc.args...), tc.want, secret)
		})
	}
}

// TestCodeMatchesIndependentTOTP checks totpctl code against pquerna/otp on
// random keys over every algorithm, both digit counts and the whole period
// range.
func TestCodeMatchesIndependentTOTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	algs := []struct {
		ours   enroll.Algorithm
		theirs otp.Algorithm
	}{{enroll.SHA1, otp.AlgorithmSHA1}, {enroll.SHA256, otp.AlgorithmSHA256}, {enroll.SHA512, otp.AlgorithmSHA512}}
	for i := range 600 {
		alg := algs[i%3]
		digits := []int{6, 8}[(i/3)%2]
		period := 15 + rng.IntN(106)
		secret := make([]byte, 10+rng.IntN(55))
		for j := range secret {
			secret[j] = byte(rng.UintN(256))
		}
		key := enroll.Key{Issuer: "Ex", Account: "a", Secret: secret, Algorithm: alg.ours, Digits: digits, Period: time.Duration(period) * time.Second}
		at := time.Unix(rng.Int64N(5_000_000_000), 0)
		atArg := fmt.Sprint(at.Unix())
		if i%2 == 1 {
			at = at.Add(time.Duration(rng.Int64N(1e9)))
			atArg = at.Format(time.RFC3339Nano)
		}
		want, err := totp.GenerateCodeCustom(key.SecretBase32(), at, totp.ValidateOpts{
			Period: uint(period), Digits: otp.Digits(digits), Algorithm: alg.theirs,
		})
		if err != nil {
			t.Fatal(err)
		}
		r := run(t, "", "code", "--uri", key.URI(), "--at", atArg)
		if r.status != ExitOK || r.stdout != want+"\n" {
			t.Fatalf("totpctl code (%v, %d digits, %ds, %d-byte secret) --at %s = %q, status %d, stderr %q; pquerna/otp says %q",
				alg.ours, digits, period, len(secret), atArg, r.stdout, r.status, r.stderr, want)
		}
	}
}

func TestURI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"defaults left out", "", []string{"uri", "--issuer", "Example", "--account", "alice@example.com", "--secret", "JBSWY3DPEHPK3PXP"},
			"otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"},
		{"pasted secret", "", []string{"uri", "--issuer", "Example", "--account", "alice", "--secret", "jbsw y3dp-ehpk 3pxp===="},
			"otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example"},
		{"explicit defaults", "", []string{"uri", "--issuer", "Example", "--account", "alice", "--secret", "JBSWY3DPEHPK3PXP", "--algorithm", "SHA1", "--digits", "6", "--period", "30"},
			"otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example"},
		{"every parameter", "", []string{"uri", "--issuer", "Example", "--account", "alice", "--secret", "JBSWY3DPEHPK3PXP", "--algorithm", "sha512", "--digits", "8", "--period", "60"},
			"otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA512&digits=8&period=60"},
		{"period as duration", "", []string{"uri", "--issuer", "Example", "--account", "alice", "--secret", "JBSWY3DPEHPK3PXP", "--period", "2m", "--algorithm", "SHA256"},
			"otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA256&period=120"},
		{"spaces escaped", "", []string{"uri", "--issuer", "Example Corp", "--account", "alice smith", "--secret", "JBSWY3DPEHPK3PXP"},
			"otpauth://totp/Example%20Corp:alice%20smith?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Corp"},
		{"secret on stdin", "JBSWY3DPEHPK3PXP\n", []string{"uri", "--issuer", "Example", "--account", "alice", "--secret", "-"},
			"otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, tc.args...)
			if r.status != ExitOK || r.stdout != tc.want+"\n" || r.stderr != "" {
				t.Errorf("totpctl %q = %q, %q, status %d; want %q", tc.args, r.stdout, r.stderr, r.status, tc.want+"\n")
			}
			// What uri prints, code accepts.
			if c := run(t, "", "code", "--uri", strings.TrimSpace(r.stdout)); c.status != ExitOK {
				t.Errorf("code --uri of the printed URI: %q", c.stderr)
			}
		})
	}
}

func TestURINewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 5 {
		r := run(t, "", "uri", "--issuer", "Example", "--account", "alice", "--algorithm", "SHA256", "--digits", "8", "--period", "45")
		if r.status != ExitOK || r.stderr != "" {
			t.Fatalf("status %d, stderr %q", r.status, r.stderr)
		}
		k := mustParse(t, r.stdout)
		if len(k.Secret) != enroll.NewSecretLen || k.Issuer != "Example" || k.Account != "alice" ||
			k.Algorithm != enroll.SHA256 || k.Digits != 8 || k.Period != 45*time.Second {
			t.Errorf("uri printed %v with a %d-byte secret", k, len(k.Secret))
		}
		if seen[k.SecretBase32()] {
			t.Error("two runs made the same secret")
		}
		seen[k.SecretBase32()] = true
	}
}

func TestURIBadInput(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	base := []string{"uri", "--issuer", "Example", "--account", "alice"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no issuer", "", []string{"uri", "--account", "alice"}, `required flag(s) "issuer" not set`},
		{"no account", "", []string{"uri", "--issuer", "Example"}, `required flag(s) "account" not set`},
		{"empty issuer", "", []string{"uri", "--issuer", " ", "--account", "alice"}, "--issuer is empty"},
		{"empty account", "", []string{"uri", "--issuer", "Example", "--account", ""}, "--account is empty"},
		{"colon in issuer", "", []string{"uri", "--issuer", "Ex:ample", "--account", "alice"}, "colon"},
		{"bad base32", "", with("--secret", secret+"1"), "base32"},
		{"short secret", "", with("--secret", "JBSWY3DP"), "under the minimum"},
		{"blank secret", "", with("--secret", " - "), "missing secret"},
		{"unknown algorithm", "", with("--algorithm", "MD5"), `unknown algorithm "MD5"`},
		{"digits 7", "", with("--digits", "7"), `--digits must be 6 or 8, not "7"`},
		{"digits text", "", with("--digits", "six"), "--digits must be 6 or 8"},
		{"period 14", "", with("--period", "14"), "--period must be whole seconds from 15 to 120"},
		{"period 121", "", with("--period", "121"), "--period must be whole seconds"},
		{"period fraction", "", with("--period", "30.5s"), "--period must be whole seconds"},
		{"period text", "", with("--period", "soon"), "--period must be whole seconds"},
		{"empty stdin", "", with("--secret", "-"), "nothing on stdin"},
		{"extra argument", "", with("extra"), `unknown command "extra"`},
		{"unknown flag", "", with("--at", "59"), "unknown flag: --at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkBadInput(t, run(t, tc.stdin, tc.args...), tc.want, secret)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"code", "--help"}, {"uri", "-h"}, {"help", "uri"}} {
		r := run(t, "", args...)
		if r.status != ExitOK || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("totpctl %q: status %d, stdout %q, stderr %q; want usage on stdout", args, r.status, r.stdout, r.stderr)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteFailureIsExit1(t *testing.T) {
	var stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: failingWriter{}, stderr: &stderr, now: time.Now}
	status := execute(newRoot(e), []string{"code", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"}, &stderr)
	if status != ExitFailure || !strings.HasPrefix(stderr.String(), "totpctl: write output: broken pipe") {
		t.Errorf("status %d, stderr %q; want %d and a write error", status, stderr.String(), ExitFailure)
	}
}

func TestNewRootAndRun(t *testing.T) {
	var stdout, stderr bytes.Buffer
	root := NewRoot(&stdout, &stderr)
	root.SetArgs([]string{"code", "--uri", "otpauth://totp/x?secret=" + seedSHA1 + "&digits=8", "--at", "59"})
	if err := root.Execute(); err != nil || stdout.String() != "94287082\n" {
		t.Errorf("NewRoot code = %q, %v", stdout.String(), err)
	}
	stdout.Reset()
	if s := Run([]string{"uri", "--issuer", "E", "--account", "a", "--digits", "9"}, strings.NewReader(""), &stdout, &stderr); s != ExitBadInput {
		t.Errorf("Run with --digits 9 = %d, want %d", s, ExitBadInput)
	}
}

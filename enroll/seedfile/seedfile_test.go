package seedfile

import (
	"bytes"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/internal/testkit"
)

// rfcSecret is the secret of RFC 6030's and RFC 4226's examples.
var rfcSecret = []byte("12345678901234567890")

func readFile(t *testing.T, name string, keys Keys) ([]Token, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReadPSKC(f, keys)
}

func TestReadPSKCRFC6030(t *testing.T) {
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	tests := []struct {
		file string
		keys Keys
	}{
		{"rfc6030-figure6.pskcxml", Keys{PSK: psk}},
		{"rfc6030-figure7.pskcxml", Keys{Password: []byte("qwerty")}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tokens, err := readFile(t, tt.file, tt.keys)
			if err != nil {
				t.Fatalf("ReadPSKC: %v", err)
			}
			if len(tokens) != 1 {
				t.Fatalf("got %d tokens, want 1", len(tokens))
			}
			tok := tokens[0]
			if tok.Serial != "987654321" || tok.Kind != HOTP || tok.Key.Digits != 8 || !bytes.Equal(tok.Key.Secret, rfcSecret) {
				t.Errorf("token = serial %q kind %v digits %d secret %x; want 987654321 hotp 8 %x",
					tok.Serial, tok.Kind, tok.Key.Digits, tok.Key.Secret, rfcSecret)
			}
			// RFC 4226 Appendix D: counter 0 of this secret, 8 digits.
			if got := enroll.HOTP(tok.Key, 0); got != "84755224" {
				t.Errorf("HOTP(counter 0) = %s, want 84755224", got)
			}
		})
	}
}

func TestReadPSKCRefuses(t *testing.T) {
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	fig6, _ := os.ReadFile("testdata/rfc6030-figure6.pskcxml")
	fig7, _ := os.ReadFile("testdata/rfc6030-figure7.pskcxml")
	tests := []struct {
		name string
		xml  string
		keys Keys
		want string
	}{
		{"wrong password", string(fig7), Keys{Password: []byte("qwertz")}, "wrong password or key"},
		{"no password", string(fig7), Keys{}, "encrypted with a password"},
		{"wrong key", string(fig6), Keys{PSK: bytes.Repeat([]byte{1}, 16)}, "wrong password or key"},
		{"bad MAC", strings.Replace(string(fig6), "Su+NvtQfmvfJzF6bmQiJqoLRExc=", "Tu+NvtQfmvfJzF6bmQiJqoLRExc=", 1), Keys{PSK: psk}, "token 987654321: secret: MAC does not match"},
		{"unsupported algorithm", strings.Replace(string(fig6), "pskc:hotp", "pskc:ocra", 1), Keys{PSK: psk}, `token 987654321: algorithm "urn:ietf:params:xml:ns:keyprov:pskc:ocra" is not supported`},
		{"unsupported cipher", strings.Replace(string(fig6), "aes128-cbc\"/>\n                        <xenc:CipherData>", "kw-aes128\"/>\n                        <xenc:CipherData>", 1), Keys{PSK: psk}, "not supported (AES-CBC only)"},
		{"not XML", "serial,secret\n1,ABC", Keys{}, "not a PSKC file"},
		{"duplicate serial", dupPackages(string(fig6)), Keys{PSK: psk}, "token 987654321: serial number appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, err := ReadPSKC(strings.NewReader(tt.xml), tt.keys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadPSKC = %d tokens, %v; want error containing %q", len(tokens), err, tt.want)
			}
			if tokens != nil {
				t.Errorf("ReadPSKC returned %d tokens with an error; want none (all or nothing)", len(tokens))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has more than one line: %q", err)
			}
		})
	}
}

// dupPackages repeats a file's key package, so one serial appears twice.
func dupPackages(s string) string {
	i, j := strings.Index(s, "<KeyPackage>"), strings.Index(s, "</KeyPackage>")+len("</KeyPackage>")
	return s[:j] + s[i:j] + s[j:]
}

// sampleTokens returns n tokens with distinct secrets: TOTP and HOTP,
// SHA1 and SHA256, 6 and 8 digits.
func sampleTokens(n int) []Token {
	var out []Token
	for i := range n {
		secret := bytes.Repeat([]byte{byte(i + 1)}, 20)
		k := enroll.Key{Issuer: "Acme & Co", Account: fmt.Sprint(1000 + i), Secret: secret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}
		tok := Token{Serial: fmt.Sprint(1000 + i), Manufacturer: "Acme", Model: "C200", Kind: TOTP, Key: k}
		if i%2 == 1 {
			tok.Kind, tok.Counter, tok.Key.Digits = HOTP, uint64(i*7), 8
		}
		if i%3 == 2 {
			tok.Key.Algorithm, tok.Key.Period = enroll.SHA256, 60*time.Second
		}
		out = append(out, tok)
	}
	return out
}

func TestWritePSKCRoundTrip(t *testing.T) {
	in := sampleTokens(6)
	var buf bytes.Buffer
	if err := WritePSKC(&buf, in, []byte("s3cret"), WriteOptions{Iterations: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range in {
		if bytes.Contains(buf.Bytes(), []byte(tok.Key.SecretBase32())) {
			t.Fatalf("the export holds token %s's secret in the clear", tok.Serial)
		}
	}
	out, err := ReadPSKC(bytes.NewReader(buf.Bytes()), Keys{Password: []byte("s3cret")})
	if err != nil {
		t.Fatalf("ReadPSKC(WritePSKC) = %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d tokens, wrote %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.Serial != b.Serial || a.Kind != b.Kind || a.Counter != b.Counter || !bytes.Equal(a.Key.Secret, b.Key.Secret) ||
			a.Key.Digits != b.Key.Digits || a.Key.Algorithm != b.Key.Algorithm || (a.Kind == TOTP && a.Key.Period != b.Key.Period) {
			t.Errorf("token %d: read %+v, wrote %+v", i, b, a)
		}
	}
	if _, err := ReadPSKC(bytes.NewReader(buf.Bytes()), Keys{Password: []byte("s3cret!")}); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("ReadPSKC with a wrong password = %v, want wrong password", err)
	}
}

// TestPSKCInteropPythonPSKC checks the files against python-pskc, the
// PSKC library token vendors' tools use: what csv2pskc writes (plain and
// password-encrypted) we read with the same secrets, and what we export
// pskc2csv reads back with the same secrets.
func TestPSKCInteropPythonPSKC(t *testing.T) {
	csv2pskc := testkit.RequireProgram(t, "csv2pskc", "pskc-utils")
	pskc2csv := testkit.RequireProgram(t, "pskc2csv", "pskc-utils")
	dir := t.TempDir()
	in := sampleTokens(4)
	var csv strings.Builder
	csv.WriteString("serial,secret,algorithm,time_interval,counter,response_length,manufacturer\n")
	for _, tok := range in {
		alg, ti, counter := algTOTP, fmt.Sprint(int(tok.Key.Period.Seconds())), ""
		if tok.Kind == HOTP {
			alg, ti, counter = algHOTP, "", fmt.Sprint(tok.Counter)
		}
		fmt.Fprintf(&csv, "%s,%x,%s,%s,%s,%d,%s\n", tok.Serial, tok.Key.Secret, alg, ti, counter, tok.Key.Digits, tok.Manufacturer)
	}
	csvPath := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		keys Keys
	}{
		{"plain", nil, Keys{}},
		{"password", []string{"-p", "pass phrase"}, Keys{Password: []byte("pass phrase")}},
		{"pre-shared key", []string{"-s", "000102030405060708090a0b0c0d0e0f"}, Keys{PSK: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}},
	} {
		t.Run("csv2pskc "+tt.name, func(t *testing.T) {
			out, err := exec.Command(csv2pskc, append(tt.args, csvPath)...).Output()
			if err != nil {
				t.Fatalf("csv2pskc: %v", err)
			}
			got, err := ReadPSKC(bytes.NewReader(out), tt.keys)
			if err != nil {
				t.Fatalf("ReadPSKC(csv2pskc's file) = %v", err)
			}
			for i, tok := range got {
				if !bytes.Equal(tok.Key.Secret, in[i].Key.Secret) || tok.Kind != in[i].Kind || tok.Counter != in[i].Counter || tok.Key.Digits != in[i].Key.Digits {
					t.Errorf("token %s: read kind %v counter %d digits %d secret %x; want %v %d %d %x",
						tok.Serial, tok.Kind, tok.Counter, tok.Key.Digits, tok.Key.Secret, in[i].Kind, in[i].Counter, in[i].Key.Digits, in[i].Key.Secret)
				}
			}
		})
	}
	t.Run("pskc2csv reads our export", func(t *testing.T) {
		var buf bytes.Buffer
		if err := WritePSKC(&buf, in, []byte("export pw"), WriteOptions{Iterations: 2000}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "export.pskcxml")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(pskc2csv, "-p", "export pw", "-e", "hex", "-c", "serial,secret,counter,time_interval,response_length", path).CombinedOutput()
		if err != nil {
			t.Fatalf("pskc2csv: %v: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), "\n")
		if len(lines) != len(in)+1 {
			t.Fatalf("pskc2csv printed %d lines, want %d:\n%s", len(lines), len(in)+1, out)
		}
		for i, tok := range in {
			want := fmt.Sprintf("%s,%x,", tok.Serial, tok.Key.Secret)
			if tok.Kind == HOTP {
				want += fmt.Sprintf("%d,,%d", tok.Counter, tok.Key.Digits)
			} else {
				want += fmt.Sprintf(",%d,%d", int(tok.Key.Period.Seconds()), tok.Key.Digits)
			}
			if lines[i+1] != want {
				t.Errorf("pskc2csv line %d = %q, want %q", i+2, lines[i+1], want)
			}
		}
	})
}

func TestReadOATHCSV(t *testing.T) {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	good := "upn,serial number,secret key,time interval,manufacturer,model\n" +
		"Helga@contoso.com,1234567," + strings.ToLower(b32.EncodeToString(rfcSecret)) + ",60,Contoso,HardwareKey\n" +
		",7654321," + b32.EncodeToString(bytes.Repeat([]byte{7}, 20)) + ",30,Contoso,HardwareKey\n"
	tokens, err := ReadOATHCSV(strings.NewReader(good))
	if err != nil {
		t.Fatalf("ReadOATHCSV = %v", err)
	}
	if len(tokens) != 2 || tokens[0].Owner != "Helga@contoso.com" || tokens[0].Serial != "1234567" || tokens[0].Key.Period != time.Minute ||
		!bytes.Equal(tokens[0].Key.Secret, rfcSecret) || tokens[1].Owner != "" || tokens[1].Key.Period != 30*time.Second {
		t.Fatalf("ReadOATHCSV = %+v", tokens)
	}
	// A bad secret on line 417 of an otherwise good file: nothing read.
	var big strings.Builder
	big.WriteString("upn,serial number,secret key,time interval,manufacturer,model\n")
	for i := 2; i <= 500; i++ {
		secret := b32.EncodeToString(bytes.Repeat([]byte{byte(i)}, 20))
		if i == 417 {
			secret = "NOT-BASE32-!!"
		}
		fmt.Fprintf(&big, "u%d@example.com,%d,%s,30,Acme,C200\n", i, 100000+i, secret)
	}
	tests := []struct{ name, csv, want string }{
		{"bad secret on line 417", big.String(), "line 417 (serial 100417): secret key: secret is not valid base32"},
		{"missing column", "upn,serial number,secret key\nx,1,ABC\n", `line 1: the header has no "time interval" column`},
		{"duplicate serial", good + "x@y,1234567," + b32.EncodeToString(rfcSecret) + ",30,A,B\n", "line 4: serial number 1234567 appears again (first on line 2)"},
		{"bad interval", strings.Replace(good, ",60,", ",sixty,", 1), `line 2 (serial 1234567): time interval "sixty" is not a number`},
		{"interval out of range", strings.Replace(good, ",60,", ",600,", 1), "line 2: token 1234567: period must be whole seconds from 15 to 120"},
		{"short secret", strings.Replace(good, ",30,Contoso", ",30,Contoso", 1) + "a@b,99,MZXW6,30,A,B\n", "line 4 (serial 99): secret key: secret is"},
		{"empty", "", "the CSV file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, err := ReadOATHCSV(strings.NewReader(tt.csv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadOATHCSV = %d tokens, %v; want error containing %q", len(tokens), err, tt.want)
			}
			if tokens != nil {
				t.Errorf("got %d tokens with the error, want none", len(tokens))
			}
		})
	}
}

func TestReadMigration(t *testing.T) {
	in := []Token{
		{Kind: TOTP, Key: enroll.Key{Issuer: "GitHub", Account: "alice", Secret: rfcSecret, Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}},
		{Kind: HOTP, Counter: 42, Key: enroll.Key{Issuer: "Bank", Account: "bob", Secret: bytes.Repeat([]byte{9}, 16), Algorithm: enroll.SHA256, Digits: 8, Period: 30 * time.Second}},
		{Kind: TOTP, Key: enroll.Key{Account: "Example:carol@example.com", Secret: bytes.Repeat([]byte{3}, 10), Algorithm: enroll.SHA512, Digits: 6, Period: 30 * time.Second}},
	}
	var payload []byte
	for _, tok := range in {
		payload = AppendMigrationAccount(payload, tok)
	}
	got, err := ReadMigration(MigrationURI(payload))
	if err != nil {
		t.Fatalf("ReadMigration = %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d accounts, want 3", len(got))
	}
	if got[0].Key.Issuer != "GitHub" || got[0].Key.Account != "alice" || got[0].Kind != TOTP || !bytes.Equal(got[0].Key.Secret, rfcSecret) {
		t.Errorf("account 1 = %+v", got[0])
	}
	if got[1].Kind != HOTP || got[1].Counter != 42 || got[1].Key.Digits != 8 || got[1].Key.Algorithm != enroll.SHA256 {
		t.Errorf("account 2 = %+v", got[1])
	}
	if got[2].Key.Issuer != "Example" || got[2].Key.Account != "carol@example.com" || got[2].Key.Algorithm != enroll.SHA512 {
		t.Errorf("account 3 = issuer %q account %q alg %v", got[2].Key.Issuer, got[2].Key.Account, got[2].Key.Algorithm)
	}
	for _, tt := range []struct{ uri, want string }{
		{"otpauth://totp/x?secret=ABC", "not an otpauth-migration://offline URI"},
		{"otpauth-migration://offline?data=%%%", "has no data"},
		{"otpauth-migration://offline?data=!!!!", "not base64"},
		{"otpauth-migration://offline?data=CgA%3D", "account 1: missing secret"},
		{"otpauth-migration://offline", "has no data"},
	} {
		if _, err := ReadMigration(tt.uri); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadMigration(%q) = %v, want %q", tt.uri, err, tt.want)
		}
	}
}

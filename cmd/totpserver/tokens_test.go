package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

const (
	uriTOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
	uriHOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
)

// seedCSV is python-pskc's CSV of n tokens, alternately TOTP and HOTP,
// with distinct secrets, serials prefix-1 and up.
func seedCSV(prefix string, n int) (csv string, secrets map[string]string) {
	var b strings.Builder
	b.WriteString("serial,secret,algorithm,response_length,time_interval,counter,manufacturer\n")
	secrets = map[string]string{}
	for i := 1; i <= n; i++ {
		serial := fmt.Sprintf("%s-%d", prefix, i)
		secret := hex.EncodeToString(fmt.Appendf(nil, "secret-of-%-10s", serial))
		secrets[serial] = secret
		if i%2 == 1 {
			fmt.Fprintf(&b, "%s,%s,%s,6,30,,Feitian\n", serial, secret, uriTOTP)
		} else {
			fmt.Fprintf(&b, "%s,%s,%s,8,,%d,Feitian\n", serial, secret, uriHOTP, i*3)
		}
	}
	return b.String(), secrets
}

func newDataDir(t *testing.T) string {
	t.Helper()
	t.Setenv("TOTPSERVER_LOG_LEVEL", "error")
	isolateCredentials(t)
	data := filepath.Join(t.TempDir(), "data")
	if err, out := run(t, "init", "--data", data); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	return data
}

// storedTokens returns the serials of the imported tokens, by serial.
func storedTokens(t *testing.T, data string) []string {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(data, "totpserver.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.ListHardwareTokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, tk := range list {
		serials = append(serials, tk.Serial)
	}
	return serials
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokensImportExportPythonPSKC: the PSKC files python-pskc's csv2pskc
// writes — plain, with a pre-shared key, with a password — import; the
// export, refused without allow_export or --allow-export, is read by
// pskc2csv with the same secrets and counters.
func TestTokensImportExportPythonPSKC(t *testing.T) {
	csv2pskc := testkit.RequireProgram(t, "csv2pskc", "pskc-utils")
	pskc2csv := testkit.RequireProgram(t, "pskc2csv", "pskc-utils")
	data := newDataDir(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "correct horse\n")
	key := writeFile(t, dir, "key", "000102030405060708090a0b0c0d0e0f\n")
	all := map[string]string{}
	for _, tc := range []struct {
		prefix string
		pskc   []string // csv2pskc's flags
		flags  []string // tokens import's
	}{
		{"PLAIN", nil, nil},
		{"PSK", []string{"-s", "000102030405060708090a0b0c0d0e0f"}, []string{"--key-file", key}},
		{"PBKDF2", []string{"-p", "correct horse"}, []string{"--password-file", pw}},
	} {
		csv, secrets := seedCSV(tc.prefix, 4)
		for k, v := range secrets {
			all[k] = v
		}
		in := writeFile(t, dir, tc.prefix+".csv", csv)
		file := filepath.Join(dir, tc.prefix+".pskcxml")
		if out, err := exec.Command(csv2pskc, append(tc.pskc, "-o", file, in)...).CombinedOutput(); err != nil {
			t.Fatalf("csv2pskc %v: %v\n%s", tc.pskc, err, out)
		}
		err, out := run(t, append([]string{"tokens", "import", "--data", data, file}, tc.flags...)...)
		if err != nil || !strings.Contains(out, "Imported 4 hardware tokens") {
			t.Fatalf("tokens import %s = %v, %q", tc.prefix, err, out)
		}
	}
	if got := len(storedTokens(t, data)); got != 12 {
		t.Fatalf("%d tokens stored, want 12", got)
	}

	if err, out := run(t, "tokens", "export", "--data", data, "--format", "pskc", "--password-file", pw); err == nil || !strings.Contains(err.Error(), "allow_export") {
		t.Fatalf("tokens export without allow_export = %v, %q; want refused", err, out)
	}
	err, out := run(t, "tokens", "export", "--data", data, "--format", "pskc", "--password-file", pw, "--allow-export")
	if err != nil {
		t.Fatalf("tokens export --allow-export: %v", err)
	}
	export, _, _ := strings.Cut(out, "Exported 12 hardware tokens.")
	if !strings.Contains(out, "Exported 12 hardware tokens.") || strings.Contains(export, "secret-of") {
		t.Fatalf("tokens export printed %q", out)
	}
	file := writeFile(t, dir, "export.pskcxml", export)
	got, err := exec.Command(pskc2csv, "-p", "correct horse", "-e", "hex", "-c", "serial,secret,counter,response_length", file).Output()
	if err != nil {
		t.Fatalf("pskc2csv of the export: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(got), "\r", "")), "\n")
	if len(lines) != 13 {
		t.Fatalf("pskc2csv printed %d lines, want 13:\n%s", len(lines), got)
	}
	for _, line := range lines[1:] {
		f := strings.Split(line, ",")
		serial, secret, counter, digits := f[0], f[1], f[2], f[3]
		if all[serial] != secret {
			t.Errorf("export: token %s secret %s, want %s", serial, secret, all[serial])
		}
		var n int
		fmt.Sscanf(serial[strings.LastIndex(serial, "-")+1:], "%d", &n)
		wantCounter, wantDigits := "", "6"
		if n%2 == 0 {
			wantCounter, wantDigits = fmt.Sprint(n*3), "8"
		}
		if counter != wantCounter || digits != wantDigits {
			t.Errorf("export: token %s counter %q digits %s, want %q %s", serial, counter, digits, wantCounter, wantDigits)
		}
	}
}

// TestTokensImportBadInput: a bad file is refused with one line naming
// the token or line, and nothing of it is imported (all or nothing), on
// top of tokens imported before.
func TestTokensImportBadInput(t *testing.T) {
	csv2pskc := testkit.RequireProgram(t, "csv2pskc", "pskc-utils")
	data := newDataDir(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "correct horse\n")
	wrong := writeFile(t, dir, "wrong", "battery staple\n")
	pskc := func(name, csv string, flags ...string) string {
		in := writeFile(t, dir, name+".csv", csv)
		file := filepath.Join(dir, name+".pskcxml")
		if out, err := exec.Command(csv2pskc, append(flags, "-o", file, in)...).CombinedOutput(); err != nil {
			t.Fatalf("csv2pskc: %v\n%s", err, out)
		}
		return file
	}
	first, _ := seedCSV("OLD", 3)
	if err, out := run(t, "tokens", "import", "--data", data, pskc("old", first)); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	good, _ := seedCSV("NEW", 3)
	encrypted := pskc("enc", good, "-p", "correct horse")
	b, _ := os.ReadFile(encrypted)
	mac := regexp.MustCompile(`ValueMAC>([A-Za-z0-9+/]{4})`)
	badMAC := writeFile(t, dir, "badmac.pskcxml", mac.ReplaceAllString(string(b), "ValueMAC>AAAA"))
	ocra := pskc("ocra", strings.Replace(good, uriTOTP, "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA1-6:QN08", 1))
	dupInFile := pskc("dup", good+strings.SplitAfterN(good, "\n", 3)[1])
	dupBefore, _ := seedCSV("OLD", 4)
	var entra strings.Builder
	entra.WriteString("upn,serial number,secret key,time interval,manufacturer,model\n")
	for i := 2; i <= 420; i++ {
		secret := "JBSWY3DPEHPK3PXP"
		if i == 417 {
			secret = "NOT-BASE32-1!"
		}
		fmt.Fprintf(&entra, "user%d@example.com,CSV-%d,%s,30,Token2,C202\n", i, i, secret)
	}
	tests := []struct {
		name  string
		args  []string
		wants []string // the error names these
	}{
		{"wrong password", []string{encrypted, "--password-file", wrong}, []string{"wrong password"}},
		{"bad MAC", []string{badMAC, "--password-file", pw}, []string{"NEW-1", "MAC"}},
		{"unsupported algorithm", []string{ocra}, []string{"NEW-1", "not supported"}},
		{"duplicate serial in the file", []string{dupInFile}, []string{"NEW-1", "twice"}},
		{"serial imported before", []string{pskc("dupold", dupBefore)}, []string{"OLD-1", "already imported"}},
		{"bad secret on line 417", []string{writeFile(t, dir, "entra.csv", entra.String())}, []string{"line 417"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err, out := run(t, append([]string{"tokens", "import", "--data", data}, tc.args...)...)
			if err == nil {
				t.Fatalf("tokens import = ok, %q; want an error", out)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "nothing imported") {
				t.Errorf("error %q: want one line saying nothing was imported", msg)
			}
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
			if strings.Contains(msg, "JBSWY3DPEHPK3PXP") || strings.Contains(msg, "secret-of") {
				t.Errorf("error %q holds a secret", msg)
			}
			if got := storedTokens(t, data); strings.Join(got, ",") != "OLD-1,OLD-2,OLD-3" {
				t.Errorf("stored after a refused import: %v, want only OLD-1..3", got)
			}
		})
	}
}

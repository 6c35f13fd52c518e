//go:build linux

package vault

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/internal/testkit"
)

// memChildEnv, when set to a directory, turns the test binary into the
// child of TestTPMSecretNotInMemory.
const memChildEnv = "TOTPBOX_VAULT_MEM_CHILD"

// memChild reads a base32 secret from stdin, adds it as a pending account
// to a TPM-mode vault in dir, confirms it (moving it into the TPM), prints
// "ready" and waits for stdin to close.
func memChild(dir, addr string) int {
	d, err := tpm.Open(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	v, err := Open(dir, Config{TPM: d})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	var line [128]byte
	n, _ := os.Stdin.Read(line[:])
	text := bytes.TrimSpace(line[:n])
	secret := make([]byte, base32.StdEncoding.WithPadding(base32.NoPadding).DecodedLen(len(text)))
	m, err := base32.StdEncoding.WithPadding(base32.NoPadding).Decode(secret, text)
	clear(line[:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: bad secret")
		return 3
	}
	a, err := v.Add(Account{Key: enroll.Key{Account: "m", Secret: secret[:m], Digits: 6, Period: 30 * time.Second}, Source: "reg-mem"})
	clear(secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	clear(a.Key.Secret)
	a, err = v.Update(a.ID, func(a *Account) error { a.State = Active; return nil })
	if err != nil || !a.InTPM {
		fmt.Fprintln(os.Stderr, "child: confirm:", err, a.InTPM)
		return 3
	}
	code, err := a.CodeAt(1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("ready %s\n", code)
	io.Copy(io.Discard, os.Stdin)
	v.Close()
	return 0
}

// TestTPMSecretNotInMemory starts a child that receives a secret, adds it
// pending and confirms it, which moves it into the TPM; then it reads
// every readable mapping of the child's memory through /proc/PID/mem
// and looks for the secret raw, in base32 and in base64. The child runs
// with GODEBUG=clobberfree=1, as totpd re-executes itself with: without
// it, go-tpm's marshalling buffers (freed, not overwritten) held a raw
// copy in about one run in three.
func TestTPMSecretNotInMemory(t *testing.T) {
	addr := tpmtest.Start(t, "")
	// A random secret, so that it is not in the test binary the child
	// runs too.
	secret := make([]byte, 20)
	rand.Read(secret)
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	cmd, err := testkit.SelfCommand("-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), memChildEnv+"="+t.TempDir(), killTPMEnv+"="+addr, "GODEBUG=clobberfree=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	io.WriteString(stdin, b32+"\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child: %q, %v: %s", line, err, stderr.String())
	}
	want := enroll.CodeAt(enroll.Key{Secret: secret, Digits: 6, Period: 30 * time.Second}, 1)
	if got := strings.TrimSpace(strings.TrimPrefix(line, "ready ")); got != want {
		t.Fatalf("child's TPM code %s, want %s", got, want)
	}
	needles := map[string][]byte{"raw": secret, "base32": []byte(b32), "base64": []byte(base64.StdEncoding.EncodeToString(secret))}
	found, scanned := scanMemory(t, cmd.Process.Pid, needles)
	t.Logf("scanned %d bytes of the child's memory", scanned)
	for _, f := range found {
		t.Error(f)
	}
}

// scanMemory reads every readable mapping of process pid and reports
// where each needle occurs.
func scanMemory(t *testing.T, pid int, needles map[string][]byte) (found []string, scanned int64) {
	t.Helper()
	maps, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		t.Skipf("cannot read the child's memory: %v", err)
	}
	defer mem.Close()
	for _, l := range strings.Split(strings.TrimSpace(string(maps)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[1][0] != 'r' || strings.HasSuffix(l, "[vvar]") || strings.HasSuffix(l, "[vsyscall]") {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		scanned += int64(n)
		for what, needle := range needles {
			if i := bytes.Index(buf[:n], needle); i >= 0 {
				lo, hi := max(0, i-48), min(n, i+len(needle)+48)
				found = append(found, fmt.Sprintf("the secret (%s) is in the child's memory at %#x (%s): around it %x", what, start+uint64(i), l, buf[lo:hi]))
			}
		}
	}
	return found, scanned
}

//go:build unix

package vault

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/internal/testkit"
)

// killChildEnv, when set to a directory, turns the test binary into the
// child of TestKillDuringAdd: it adds accounts to the vault in that
// directory until it is killed.
const killChildEnv = "TOTPBOX_VAULT_KILL_CHILD"

// killTPMEnv, when set with killChildEnv, is the address of the TPM the
// child opens the vault with.
const killTPMEnv = "TOTPBOX_VAULT_KILL_TPM"

func TestMain(m *testing.M) {
	if dir := os.Getenv(migrateChildEnv); dir != "" {
		os.Exit(migrateChild(dir))
	}
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	if dir := os.Getenv(memChildEnv); dir != "" {
		os.Exit(memChild(dir, os.Getenv(killTPMEnv)))
	}
	os.Exit(m.Run())
}

// digest fingerprints everything stored for an account that a
// confirmation leaves as it is, the secret included through codes at a
// few steps (so an account held in the TPM has the same digest as
// before it moved there).
func digest(a Account) string {
	h := sha256.New()
	k := a.Key
	fmt.Fprintf(h, "%q %q %q %q %q %v %d %v %q %d", a.ID, a.Issuer, a.Label, k.Issuer, k.Account, k.Algorithm, k.Digits, k.Period,
		a.Source, a.Created.UnixNano())
	for _, step := range []int64{1, 2, 1_000_000_007} {
		c, err := a.CodeAt(step)
		fmt.Fprintf(h, " %s %v", c, err)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// killChild opens the vault in dir, prints "open", then adds accounts in a
// loop, printing "ID DIGEST" after each Add has returned. Each line is one
// write to an unbuffered stdout, so the parent never sees half a line.
func killChild(dir string) int {
	var opts Config
	if addr := os.Getenv(killTPMEnv); addr != "" {
		t, err := tpm.Open(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		opts.TPM = t
	}
	v, err := Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	os.Stdout.WriteString("open\n")
	algs := []enroll.Algorithm{enroll.SHA1, enroll.SHA256, enroll.SHA512}
	for i := 0; ; i++ {
		k, err := enroll.NewKey(fmt.Sprintf("Issuer %d", i%7), fmt.Sprintf("user%d@example.com", i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		k.Algorithm = algs[i%3]
		k.Digits = 6 + 2*(i%2)
		k.Period = time.Duration(15+i%106) * time.Second
		a := Account{Key: k, Label: fmt.Sprintf("account %d", i), State: State(i % 2)}
		if i%3 == 0 {
			a.Source = fmt.Sprintf("reg-%d-%d", os.Getpid(), i)
		}
		a, err = v.Add(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		os.Stdout.WriteString(a.ID + " " + digest(a) + "\n")
		if opts.TPM != nil && a.State == Pending && i%4 == 0 {
			// Confirm it: in TPM mode its secret moves into the TPM.
			a, err = v.Update(a.ID, func(a *Account) error { a.State = Active; return nil })
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 3
			}
			os.Stdout.WriteString(a.ID + " " + digest(a) + "\n")
		}
	}
}

// TestKillDuringAdd kills a child that is adding accounts, at random
// moments, and checks after every kill that the vault opens and holds
// every account whose Add had returned, intact.
func TestKillDuringAdd(t *testing.T) { killDuringAdd(t, 200, "") }

// TestKillDuringAddTPM is TestKillDuringAdd in TPM mode on swtpm, where
// adds of active accounts and confirmations move secrets into the TPM.
func TestKillDuringAddTPM(t *testing.T) {
	killDuringAdd(t, 60, tpmtest.Start(t, ""))
}

func killDuringAdd(t *testing.T, rounds int, tpmAddr string) {
	dir := filepath.Join(t.TempDir(), "vault")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	want := map[string]string{} // id -> digest of every Add that returned
	var confirmed, killedMidRun int
	for round := range rounds {
		cmd, err := testkit.SelfCommand("-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killTPMEnv+"="+tpmAddr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			r := bufio.NewReader(out)
			for {
				l, err := r.ReadString('\n')
				if err != nil { // io.EOF; a line without its newline is not complete
					return
				}
				lines <- strings.TrimSuffix(l, "\n")
			}
		}()

		var got []string
		if rng.IntN(10) == 0 {
			// Kill anywhere from start-up on, Open included.
			time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
		} else {
			// Kill after a random number of Adds, part-way into the next.
			n := rng.IntN(8)
			deadline := time.After(30 * time.Second)
		wait:
			for len(got) <= n {
				select {
				case l, ok := <-lines:
					if !ok {
						break wait
					}
					got = append(got, l)
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("round %d: child printed %d lines in 30s", round, len(got))
				}
			}
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		werr := cmd.Wait()
		for l := range lines {
			got = append(got, l)
		}
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v): %s", round, werr, strings.TrimSpace(stderr.String()))
		}
		added := 0
		for _, l := range got {
			if l == "open" {
				continue
			}
			id, sum, ok := strings.Cut(l, " ")
			if !ok {
				t.Fatalf("round %d: child printed %q", round, l)
			}
			want[id] = sum
			added++
		}
		confirmed += added
		if added > 0 {
			killedMidRun++
		}

		var opts Config
		if tpmAddr != "" {
			d, err := tpm.Open(tpmAddr)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			opts.TPM = d
		}
		v, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("round %d: after kill: %v", round, err)
		}
		for id, sum := range want {
			a, err := v.Get(id)
			if err != nil {
				t.Fatalf("round %d: account %s whose Add returned: %v", round, id, err)
			}
			if d := digest(a); d != sum {
				t.Fatalf("round %d: account %s changed: digest %s, want %s", round, id, d, sum)
			}
			if opts.TPM != nil && movable(a) {
				t.Fatalf("round %d: account %s is active but its secret is not in the TPM", round, id)
			}
		}
		// Open cleared what an interrupted write left behind.
		if stray := strayFiles(t, dir); len(stray) > 0 {
			t.Fatalf("round %d: vault directory holds %v after Open", round, stray)
		}
		// Keep the vault small so every round is quick.
		if v.Len() > 40 {
			if _, err := v.RemoveWhere(func(Account) bool { return true }); err != nil {
				t.Fatal(err)
			}
			clear(want)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if opts.TPM != nil {
			opts.TPM.(*tpm.TPM).Close() // swtpm serves one connection at a time
		}
	}
	t.Logf("%d kills, %d after at least one Add returned, %d Adds confirmed", rounds, killedMidRun, confirmed)
	if killedMidRun < rounds/2 {
		t.Errorf("only %d of %d kills came after an Add returned", killedMidRun, rounds)
	}
}

// strayFiles lists files in dir other than the vault's own.
func strayFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var stray []string
	for _, e := range entries {
		switch e.Name() {
		case VaultFileName, KeyFileName, LockFileName:
		default:
			stray = append(stray, e.Name())
		}
	}
	return stray
}

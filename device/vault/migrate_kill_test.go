package vault

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/tpm/tpmtest"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/internal/testkit"
)

// migrateChildEnv, when set to a directory, turns the test binary into
// the child of TestKillDuringMigrate: it opens the software vault there
// and moves it into the TPM at killTPMEnv, killing itself (SIGKILL) at
// the crash point numbered migrateStopEnv.
const (
	migrateChildEnv = "TOTPBOX_VAULT_MIGRATE_CHILD"
	migrateStopEnv  = "TOTPBOX_VAULT_MIGRATE_STOP"
)

// migrateChild is the child of TestKillDuringMigrate. It prints each
// crash point it passes, and "done" when the migration returned.
func migrateChild(dir string) int {
	stop, err := strconv.Atoi(os.Getenv(migrateStopEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	d, err := tpm.Open(os.Getenv(killTPMEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	v, err := Open(dir, Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	n := 0
	failpoint = func(where string) {
		n++
		os.Stdout.WriteString(where + "\n")
		if n == stop {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	if err := v.MigrateToTPM(d); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	os.Stdout.WriteString("done\n")
	return 0
}

// TestKillDuringMigrate stops `totpctl secrets migrate` (MigrateToTPM)
// at every crash point in turn, killing the process there, and checks
// that the vault then opens with the TPM, as totpd opens it in the
// auto and tpm modes, with every account and its codes, its key sealed
// to the TPM and nothing left beside it (issue 22, item 6).
func TestKillDuringMigrate(t *testing.T) {
	addr := tpmtest.Start(t, "")
	points := 0
	for stop := 1; ; stop++ {
		dir := filepath.Join(t.TempDir(), "vault")
		v, err := Open(dir, Config{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for i, alg := range []enroll.Algorithm{enroll.SHA1, enroll.SHA256, enroll.SHA512, enroll.SHA1} {
			a, err := v.Add(Account{Key: enroll.Key{Account: fmt.Sprint("m", i), Secret: bytes.Clone(rfcSeeds[alg]), Algorithm: alg, Digits: 6, Period: 30 * time.Second},
				State: State(min(1, 3-i))})
			if err != nil {
				t.Fatal(err)
			}
			want[a.ID] = enroll.CodeAt(a.Key, 4321)
		}
		v.Close()

		cmd, err := testkit.SelfCommand("-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(os.Environ(), migrateChildEnv+"="+dir, migrateStopEnv+"="+strconv.Itoa(stop), killTPMEnv+"="+addr)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		werr := cmd.Run()
		passed := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		finished := len(passed) > 0 && passed[len(passed)-1] == "done"
		if !finished {
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("stop %d: child ended by itself (%v): %s", stop, werr, strings.TrimSpace(stderr.String()))
			}
		}
		where := "after the migration"
		if !finished {
			where = fmt.Sprintf("killed at %q", passed[len(passed)-1])
		}

		// Open as totpd does in the auto mode: with the TPM when the key
		// file is sealed to it or a migration was cut short; a vault
		// still in software mode is migrated again.
		d, err := tpm.Open(addr)
		if err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(dir, KeyFileName)
		kind, err := KeyFileKind(keyPath)
		if err != nil {
			d.Close()
			t.Fatalf("stop %d, %s: %v", stop, where, err)
		}
		pending, err := MigrationPending(keyPath)
		if err != nil {
			d.Close()
			t.Fatalf("stop %d, %s: %v", stop, where, err)
		}
		var opts Config
		if kind == KeyTPM || pending {
			opts.TPM = d
		}
		v, err = Open(dir, opts)
		if err != nil {
			d.Close()
			t.Fatalf("stop %d, %s: Open (key file %s, migration pending %v): %v", stop, where, kind, pending, err)
		}
		if opts.TPM == nil {
			if err := v.MigrateToTPM(d); err != nil {
				t.Fatalf("stop %d, %s: migrating again: %v", stop, where, err)
			}
		}
		for id, code := range want {
			a, err := v.Get(id)
			if err != nil {
				t.Fatalf("stop %d, %s: account %s: %v", stop, where, id, err)
			}
			if c, err := a.CodeAt(4321); err != nil || c != code {
				t.Errorf("stop %d, %s: account %s: code %s, %v, want %s", stop, where, id, c, err, code)
			}
			if movable(a) {
				t.Errorf("stop %d, %s: account %s is active but its secret is not in the TPM", stop, where, id)
			}
		}
		if len(v.List()) != len(want) {
			t.Errorf("stop %d, %s: %d accounts, want %d", stop, where, len(v.List()), len(want))
		}
		v.Close()
		d.Close() // swtpm serves one connection at a time
		if k, err := KeyFileKind(filepath.Join(dir, KeyFileName)); err != nil || k != KeyTPM {
			t.Errorf("stop %d, %s: key file %v, %v, want tpm", stop, where, k, err)
		}
		if stray := strayFiles(t, dir); len(stray) > 0 {
			t.Errorf("stop %d, %s: left %v", stop, where, stray)
		}
		if finished {
			points = stop - 1
			break
		}
	}
	if points < 5 {
		t.Errorf("the migration passed %d crash points: the test stops it nowhere much", points)
	}
	t.Logf("killed at each of %d crash points", points)
}

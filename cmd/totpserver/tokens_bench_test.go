package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/seedfile"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// benchTokens is the size of the import BenchmarkTokensImport measures:
// issue 27's target, 10 000 tokens from one PSKC file.
var benchTokens = envInt("TOTPBOX_BENCH_TOKENS", 10_000)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkTokensImport runs the real command, `totpserver tokens import
// FILE --password-file F`, on a PSKC file of benchTokens tokens (half
// TOTP, half HOTP) encrypted with a password (PBKDF2, 100 000
// iterations, AES-128-CBC and HMAC-SHA1 per secret, as python-pskc
// writes), into a fresh database each time: SQLite, and PostgreSQL when
// TOTPBOX_TEST_POSTGRES_DSN is set. It reports the command's wall time
// (ns/op), tokens a second, its CPU time (user and system, cpu-s/op: on
// a shared machine the wall time waits for CPUs) and its peak resident
// memory (max-RSS-MB).
func BenchmarkTokensImport(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "totpserver")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	tokens := make([]seedfile.Token, benchTokens)
	for i := range tokens {
		t := seedfile.Token{Serial: fmt.Sprintf("BT-%06d", i), Manufacturer: "Feitian", Model: "c200",
			Key: enroll.Key{Secret: fmt.Appendf(nil, "bench-secret-%07d", i), Algorithm: enroll.SHA1, Digits: 6, Period: 30 * time.Second}}
		if i%2 == 1 {
			t.Kind, t.Counter = seedfile.HOTP, uint64(i)
		}
		tokens[i] = t
	}
	file := filepath.Join(dir, "tokens.pskcxml")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := seedfile.WritePSKC(f, tokens, []byte("bench password"), seedfile.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("bench password\n"), 0o600)

	databases := []string{"sqlite"}
	if os.Getenv(storetest.PostgresDSNEnv) != "" {
		databases = append(databases, "postgres")
	}
	for _, db := range databases {
		b.Run(db, func(b *testing.B) {
			var rss int64
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				env := append(os.Environ(), "TOTPSERVER_LOG_LEVEL=error", "CREDENTIALS_DIRECTORY=")
				if db == "postgres" {
					env = append(env, "TOTPSERVER_DATABASE_DSN="+storetest.CreateDatabase(b, storetest.PostgresDSN(b)))
				}
				data := filepath.Join(b.TempDir(), "data")
				initCmd := exec.Command(bin, "init", "--data", data)
				initCmd.Env = env
				if out, err := initCmd.CombinedOutput(); err != nil {
					b.Fatalf("init: %v\n%s", err, out)
				}
				cmd := exec.Command(bin, "tokens", "import", "--data", data, file, "--password-file", pw)
				cmd.Env = env
				b.StartTimer()
				out, err := cmd.CombinedOutput()
				b.StopTimer()
				if err != nil || !strings.Contains(string(out), fmt.Sprintf("Imported %d hardware tokens", benchTokens)) {
					b.Fatalf("tokens import: %v\n%s", err, out)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					rss = max(rss, ru.Maxrss) // KiB on Linux
					cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				}
			}
			b.ReportMetric(float64(benchTokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(rss)/1024, "max-RSS-MB")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

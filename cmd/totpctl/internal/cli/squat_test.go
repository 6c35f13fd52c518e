package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/totpbox/totpbox/device/localapi"
	"github.com/totpbox/totpbox/internal/testkit"
)

// squatEnv, when set, makes the test binary a squatter on the socket it
// names instead of running tests: see TestSquatterAsAnotherUser.
const squatEnv = "TOTPCTL_TEST_SQUAT"

func TestMain(m *testing.M) {
	if path := os.Getenv(squatEnv); path != "" {
		squatter(path)
		return
	}
	os.Exit(m.Run())
}

// squatter binds path, says "ready", and for each connection prints how
// many bytes it carried.
func squatter(path string) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	os.Chmod(path, 0o777)
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		fmt.Println("conn", n)
	}
}

// squatterUID is the unprivileged user the squatter runs as: neither root,
// nor totpbox, nor 65534.
const squatterUID = 4242

// TestSquatterAsAnotherUser is the attack of issue 12 item 7: api.socket in
// a directory every user may write, a local user (here uid 4242) binds the
// path first, and root runs "totpctl account add --secret". totpctl must
// refuse with the squatter's uid and the path, exit 1, and send nothing: the
// squatter, a real process of another user, counts the bytes it got. It
// needs root to start a process as another user.
func TestSquatterAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting a squatter as another user needs root")
	}
	if trusted, _ := localapi.TrustedUIDs(""); slices.Contains(trusted, squatterUID) {
		t.Skipf("uid %d is trusted here (%v)", squatterUID, trusted)
	}
	// The test binary, where the squatter may run it, and a shared
	// directory for the socket.
	binDir := tempDir(t, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "squatter")
	copyFile(t, exe, bin)
	shared := tempDir(t, 0o777)
	sock := filepath.Join(shared, "totpd.sock")

	cmd, err := testkit.InterpretedCommand(bin) // qemu-user runs the ARM tests
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{squatEnv + "=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: squatterUID, Gid: squatterUID}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("squatter: %q", lines.Text())
	}

	const secret = "JBSWY3DPEHPK3PXP"
	r := run(t, secret+"\n", "account", "add", "--socket", sock, "--secret", "-", "--issuer", "Bank", "--name", "alice")
	if r.status != ExitFailure || r.stdout != "" {
		t.Errorf("account add to a squatted socket = %+v, want exit %d and nothing on stdout", r, ExitFailure)
	}
	for _, want := range []string{sock, fmt.Sprintf("uid %d", squatterUID), "nothing sent"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
	if strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, secret) {
		t.Errorf("stderr %q: want one line without the secret", r.stderr)
	}
	// totpctl connected (that is how it learnt the uid): the squatter
	// reports what that connection carried.
	if !lines.Scan() || lines.Text() != "conn 0" {
		t.Errorf("the squatter reports %q, want \"conn 0\" (nothing received)", lines.Text())
	}
}

func tempDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d, err := os.MkdirTemp("", "totpctl-squat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

package clock

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chronydPath is Debian's chrony package's daemon.
const chronydPath = "/usr/sbin/chronyd"

// startChronyd runs a real chronyd as a local stratum-1 NTP server on a
// free port of 127.0.0.1, never touching the system clock (-x), and
// returns its "host:port".
func startChronyd(t testing.TB) string {
	t.Helper()
	return runChronyd(t, "chronyd", "local stratum 1\n")
}

// runChronyd runs chronyd with -x (it never touches the system clock) and
// the configuration lines conf, serving NTP on a free port of 127.0.0.1,
// and returns that "host:port". It stops chronyd when the test ends and
// logs its output, named what, when the test failed. Without chronyd the
// test is skipped, or fails when TOTPBOX_REQUIRE_PARTS=1.
func runChronyd(t testing.TB, what, conf string) string {
	t.Helper()
	_, err := os.Stat(chronydPath)
	testkit.RequirePart(t, err != nil, chronydPath+" (Debian package chrony)")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "chrony.conf")
	body := fmt.Sprintf("%sport %d\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\npidfile %s\n",
		conf, port, filepath.Join(dir, "chronyd.pid"))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// -u root: the test's files (NTS key and certificate) lie in
	// directories only root may read; chronyd would drop to _chrony.
	cmd := exec.Command(chronydPath, "-x", "-d", "-u", "root", "-f", path)
	out, _ := os.Create(filepath.Join(dir, "chronyd.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("%s log:\n%s", what, b)
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// skipIfHostClockMoved skips a test that compares the clock with the
// host's time (served by chronyd) when the host's clock was slewed or
// stepped meanwhile: the comparison then says nothing of the clock.
func skipIfHostClockMoved(t testing.TB, w *testkit.HostClockWatch) {
	t.Helper()
	if why := w.Disturbed(); why != "" {
		t.Skip(why)
	}
}

// TestServiceAgainstChrony disciplines the clock against two real chronyd
// servers over UDP: it must reach SYNCED, select both, and read a time
// within its own error bound of the host clock that chronyd serves.
func TestServiceAgainstChrony(t *testing.T) {
	host := testkit.WatchHostClock(t)
	servers := []string{startChronyd(t), startChronyd(t)}
	svc, err := New(Config{Servers: servers, DriftFile: filepath.Join(t.TempDir(), "drift.json")}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for svc.Now().State != Synced {
		if time.Now().After(deadline) {
			t.Fatalf("not SYNCED against chronyd after 30 s: %+v", svc.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 20 {
		// chronyd serves the host's clock: the reading must agree with it
		// within the bound it claims. The host clock is read before and
		// after, so a pause between the reads (a loaded machine, qemu-user)
		// widens the window rather than failing the test.
		before := time.Now()
		r := svc.Now()
		after := time.Now()
		if r.Time.Before(before.Add(-r.Bound-time.Millisecond)) || r.Time.After(after.Add(r.Bound+time.Millisecond)) {
			skipIfHostClockMoved(t, host)
			t.Fatalf("reading %v is outside [%v, %v] widened by its bound %v and 1 ms: off chronyd's time", r.Time, before, after, r.Bound)
		}
		if r.Bound > 50*time.Millisecond {
			t.Fatalf("bound %v on loopback; want a few ms at most", r.Bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := svc.Status()
	for _, s := range st.Servers {
		if !s.Selected || s.Reach == 0 {
			t.Errorf("server %s: selected %v, reach %o; want selected and reachable", s.Address, s.Selected, s.Reach)
		}
	}
}

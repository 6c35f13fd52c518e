package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/internal/testkit"
)

func TestParseRunAs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    runAs
		wantErr string
	}{
		{"totpbox", runAs{user: "totpbox"}, ""},
		{"totpbox:gpio", runAs{user: "totpbox", group: "gpio"}, ""},
		{"1000", runAs{user: "1000"}, ""},
		{"1000:997", runAs{user: "1000", group: "997"}, ""},
		{"_svc.totp-box", runAs{user: "_svc.totp-box"}, ""},
		{":997", runAs{}, "is not user"},
		{"1000:", runAs{}, "is not user"},
		{"a b", runAs{}, "neither a number nor"},
		{"-x", runAs{}, "neither a number nor"},
		{"1000:gp/io", runAs{}, "neither a number nor"},
		{"99999999999", runAs{}, "neither a number nor"},
		{"a:b:c", runAs{}, "neither a number nor"},
		// nobody is shared with other services (issue 22, item 7).
		{"65534:65534", runAs{}, "nobody"},
		{"65534", runAs{}, "nobody"},
		{"nobody", runAs{}, "nobody"},
		{"nobody:nogroup", runAs{}, "nobody"},
		{"2317:2317", runAs{user: "2317", group: "2317"}, ""},
	} {
		got, err := parseRunAs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "run_as: ") {
				t.Errorf("parseRunAs(%q) = %v, want an error about %q naming run_as", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseRunAs(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// fakeDB knows user totpbox (1001:1001, also in spi 999 and gpio 997) and
// the groups spi and gpio.
var fakeDB = userDB{
	lookupUser: func(name string) (*user.User, error) {
		switch name {
		case "totpbox":
			return &user.User{Uid: "1001", Gid: "1001", Username: "totpbox"}, nil
		case "root":
			return &user.User{Uid: "0", Gid: "0", Username: "root"}, nil
		}
		return nil, user.UnknownUserError(name)
	},
	lookupGroup: func(name string) (*user.Group, error) {
		switch name {
		case "spi":
			return &user.Group{Gid: "999", Name: name}, nil
		case "gpio":
			return &user.Group{Gid: "997", Name: name}, nil
		}
		return nil, user.UnknownGroupError(name)
	},
	groupIDs: func(u *user.User) ([]string, error) {
		if u.Username == "root" {
			return []string{"0"}, nil
		}
		return []string{"1001", "999", "997"}, nil
	},
}

// TestPlanDropDefaultWithoutUserDB: on gokrazy there is no user database,
// so root without run_as becomes a user id of totpd's own (never nobody,
// which other services share).
func TestPlanDropDefaultWithoutUserDB(t *testing.T) {
	none := userDB{
		lookupUser:  func(name string) (*user.User, error) { return nil, user.UnknownUserError(name) },
		lookupGroup: func(name string) (*user.Group, error) { return nil, user.UnknownGroupError(name) },
		groupIDs:    func(*user.User) ([]string, error) { return nil, nil },
	}
	got, err := planDrop(0, "", none)
	if err != nil || !got.Drop || got.ID.UID != 2317 || got.ID.GID != 2317 {
		t.Fatalf("planDrop(root, \"\") without a user database = %+v, %v; want a drop to 2317:2317", got, err)
	}
}

func TestPlanDrop(t *testing.T) {
	for _, tc := range []struct {
		euid    int
		runAs   string
		want    dropPlan
		warn    bool
		wantErr string
	}{
		{0, "", dropPlan{Drop: true, ID: Identity{1001, 1001, []int{999, 997}}}, false, ""},
		{1001, "", dropPlan{}, false, ""},
		{0, "root", dropPlan{ID: Identity{}}, true, ""},
		{0, "totpbox", dropPlan{Drop: true, ID: Identity{1001, 1001, []int{999, 997}}}, false, ""},
		{0, "totpbox:gpio", dropPlan{Drop: true, ID: Identity{1001, 997, []int{1001, 999}}}, false, ""},
		{0, "1000", dropPlan{Drop: true, ID: Identity{UID: 1000, GID: 1000}}, false, ""},
		{0, "1000:spi", dropPlan{Drop: true, ID: Identity{UID: 1000, GID: 999}}, false, ""},
		{0, "0:0", dropPlan{ID: Identity{}}, true, ""},
		{1001, "totpbox", dropPlan{ID: Identity{1001, 1001, []int{999, 997}}}, false, ""},
		{0, "nobody-here", dropPlan{}, false, `no user "nobody-here"`},
		{0, "1000:nogroup-here", dropPlan{}, false, `no group "nogroup-here"`},
		{0, "1000:", dropPlan{}, false, "is not user"},
	} {
		got, err := planDrop(tc.euid, tc.runAs, fakeDB)
		name := fmt.Sprintf("planDrop(euid %d, %q)", tc.euid, tc.runAs)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s = %v, want an error about %q", name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if (got.Warning != "") != tc.warn {
			t.Errorf("%s warning %q, want one: %v", name, got.Warning, tc.warn)
		}
		got.Warning = ""
		if got.Drop != tc.want.Drop || got.ID.UID != tc.want.ID.UID || got.ID.GID != tc.want.ID.GID || !slices.Equal(got.ID.Groups, tc.want.ID.Groups) {
			t.Errorf("%s = %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestStateDirs(t *testing.T) {
	for _, tc := range []struct {
		vault, drift string
		want         []string
	}{
		{"", "", []string{"/var/lib/totpbox"}},
		{"/var/lib/totpbox/v", "/var/lib/totpbox/d/drift.json", []string{"/var/lib/totpbox"}},
		{"/perm/vault", "", []string{"/var/lib/totpbox", "/perm/vault"}},
		{"", "/var/lib/totpbox-other/drift.json", []string{"/var/lib/totpbox", "/var/lib/totpbox-other"}},
	} {
		cfg := DefaultConfig()
		cfg.Vault.Dir, cfg.Clock.DriftFile = tc.vault, tc.drift
		if got := stateDirs(cfg); !slices.Equal(got, tc.want) {
			t.Errorf("stateDirs(vault %q, drift %q) = %v, want %v", tc.vault, tc.drift, got, tc.want)
		}
	}
}

func TestChownTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(filepath.Join(dir, "vault"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vault", "vault.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := Identity{UID: 65534, GID: 65533}
	if err := chownTree(dir, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "vault"), filepath.Join(dir, "vault", "vault.key")} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != id.UID || int(st.Gid) != id.GID {
			t.Errorf("%s owned by %d:%d, want %s", p, st.Uid, st.Gid, id)
		}
	}
	// A missing directory is created, 0700.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := chownTree(fresh, id); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("fresh state directory: %v, %v; want 0700", fi.Mode(), err)
	}
}

// dropChildEnv runs TestDropPrivileges's child part.
const dropChildEnv = "TOTPD_TEST_DROP_CHILD"

// TestDropPrivileges drops privileges for real, in a child process (the
// test binary run again), and checks from inside it that every thread
// changed, that root's files are closed to it and that root cannot be
// regained.
func TestDropPrivileges(t *testing.T) {
	if os.Getenv(dropChildEnv) != "" {
		dropChild()
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, err := testkit.SelfCommand("-test.run=^TestDropPrivileges$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), dropChildEnv+"="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dropped ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// dropChild is the child of TestDropPrivileges: it prints "dropped ok" or
// what went wrong.
func dropChild() {
	id := Identity{UID: 65534, GID: 65534, Groups: []int{65533}}
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL: "+format+"\n", args...)
		os.Exit(1)
	}
	// Goroutines pinned to threads of their own, so the program has several
	// threads to drop, whose ids are known.
	const pinned = 4
	tids := make(chan int, pinned)
	release := make(chan struct{})
	defer close(release)
	for range pinned {
		go func() {
			runtime.LockOSThread()
			tids <- syscall.Gettid()
			<-release
		}()
	}
	// Asked before the drop: a process that changed its credentials may no
	// longer read its own /proc links.
	interp, err := testkit.Interpreter()
	if err != nil {
		fail("%v", err)
	}
	if err := dropPrivileges(id); err != nil {
		fail("dropPrivileges: %v", err)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	if interp != "" {
		// Under an interpreter (qemu-user runs the ARM tests) the process
		// also holds the interpreter's own threads, which are not the
		// program's and keep their credentials: check the program's.
		tasks = []string{fmt.Sprintf("/proc/self/task/%d/status", syscall.Gettid())}
		for range pinned {
			tasks = append(tasks, fmt.Sprintf("/proc/self/task/%d/status", <-tids))
		}
	}
	if len(tasks) < 2 {
		fail("only %d threads to check", len(tasks))
	}
	for _, status := range tasks {
		b, err := os.ReadFile(status)
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 5 && f[0] == "Uid:" && !allEqual(f[1:], "65534"),
				len(f) == 5 && f[0] == "Gid:" && !allEqual(f[1:], "65534"),
				len(f) > 0 && f[0] == "Groups:" && strings.Join(f[1:], " ") != "65533":
				fail("%s: %q", status, line)
			}
		}
	}
	if _, err := os.ReadFile(os.Getenv(dropChildEnv)); !errors.Is(err, os.ErrPermission) {
		fail("reading a root-only file after the drop: %v, want permission denied", err)
	}
	fmt.Println("dropped ok")
}

func allEqual(ss []string, v string) bool {
	for _, s := range ss {
		if s != v {
			return false
		}
	}
	return true
}

// runDropChildEnv runs TestRunDropsPrivileges's child part.
const runDropChildEnv = "TOTPD_TEST_RUN_DROP_CHILD"

// TestRunDropsPrivileges runs totpd as root with run_as on emulated
// hardware, in a child process: it opens the hardware, gives the state
// directory to run_as, drops, and then opens and writes its vault as
// run_as.
func TestRunDropsPrivileges(t *testing.T) {
	if os.Getenv(runDropChildEnv) != "" {
		runDropChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	cmd, err := testkit.SelfCommand("-test.run=^TestRunDropsPrivileges$", "-test.v")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), runDropChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRunDropsPrivileges") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func runDropChild(t *testing.T) {
	e := newEmulated(t, "TOTPDDROP")
	// A user of totpd's own: run_as refuses nobody, whom other services
	// share.
	id := Identity{UID: 2317, GID: 2317}
	cfg := e.config(t, "run_as: \"2317:2317\"\n")
	// The test's own temporary tree becomes run_as's, so that it can be
	// removed after the drop; the state directory starts as root's.
	if err := chownTree(filepath.Dir(e.state), id); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(e.state, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 0, 0)
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, cfg.NewLogger(os.Stderr)) }()
	// Run drops privileges on its own goroutine, after opening the
	// hardware: wait for the drop itself rather than for something that
	// happens near it, so a slow machine cannot look too early.
	testkit.WaitFor(t, 20*time.Second, "privileges dropped to "+id.String(), func() bool {
		return os.Geteuid() == id.UID && os.Getegid() == id.GID
	})
	testkit.WaitFor(t, 20*time.Second, "a frame on the panel", func() bool { return e.panel.State().DisplayOn && litPixels(e.panel) >= 400 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	err := filepath.WalkDir(e.state, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != id.UID {
			t.Errorf("%s owned by uid %d after the drop, want %d", p, st.Uid, id.UID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The vault, opened after the drop, opens again as run_as.
	v, err := vault.Open(filepath.Join(e.state, "vault"), vault.Config{})
	if err != nil {
		t.Fatalf("vault after the run, as run_as: %v", err)
	}
	v.Close()
}

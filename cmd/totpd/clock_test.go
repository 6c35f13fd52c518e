package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/internal/testkit"
	"github.com/totpbox/totpbox/sim/ntpsim"
)

// TestClockCheck runs `totpd clock check` against a local NTP server: the
// clock reaches SYNCED within --for, the JSON has the documented fields,
// the text lists the server as selected, and nothing is written to the
// state directory.
func TestClockCheck(t *testing.T) {
	host := testkit.WatchHostClock(t)
	srv, err := ntpsim.ListenUDP("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "totpd.yaml")
	body := fmt.Sprintf("state_dir: %s\nlog:\n  level: error\nclock:\n  servers: [%q]\n", state, srv.Addr())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"clock", "check", "--config", cfg, "--for", "5s"}, args...))
		err := root.Execute()
		return out.String(), err
	}

	out, err := run("--json")
	if why := host.Disturbed(); err != nil && why != "" {
		// ntpsim serves the host's clock; the clock disciplines the raw
		// oscillator: a host clock slewed meanwhile is not trusted, rightly.
		t.Skip(why)
	}
	if err != nil {
		t.Fatalf("clock check --json = %v\n%s", err, out)
	}
	var rep struct {
		State   string   `json:"state"`
		Time    string   `json:"time"`
		Bound   *float64 `json:"bound_s"`
		Servers []struct {
			Address       *string  `json:"address"`
			Authenticated *bool    `json:"authenticated"`
			Reach         *int     `json:"reach"`
			Offset        *float64 `json:"offset_s"`
			Delay         *float64 `json:"delay_s"`
			Failures      *int     `json:"failures"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	tm, err := time.Parse(time.RFC3339Nano, rep.Time)
	if rep.State != "synced" || err != nil || rep.Bound == nil || *rep.Bound < 0 || *rep.Bound > 0.1 || time.Since(tm).Abs() > 10*time.Second {
		t.Fatalf("report %s; want synced, an RFC 3339 time, a bound of ms", out)
	}
	if len(rep.Servers) != 1 {
		t.Fatalf("servers %s, want one", out)
	}
	s := rep.Servers[0]
	if s.Address == nil || *s.Address != srv.Addr() || s.Authenticated == nil || *s.Authenticated || s.Reach == nil || *s.Reach == 0 ||
		s.Offset == nil || s.Delay == nil || s.Failures == nil || *s.Failures != 0 {
		t.Fatalf("server %s; want every field, reachable, not authenticated (plain NTP), no failures", out)
	}

	out, err = run()
	if err != nil {
		t.Fatalf("clock check = %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "State SYNCED\nTime  ") || !strings.Contains(out, "* "+srv.Addr()) {
		t.Fatalf("clock check printed\n%s\nwant the state, the time and the server marked selected", out)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Fatalf("clock check wrote %v to the state directory", ents)
	}

	// A server that never answers: the report says so, and the command
	// fails.
	srv.SetKiss("DENY")
	out, err = run("--json")
	if !errors.Is(err, errNotTrusted) || !strings.Contains(out, `"state": "unsynced"`) {
		t.Fatalf("clock check against a refusing server = %v\n%s\nwant unsynced and errNotTrusted", err, out)
	}
}

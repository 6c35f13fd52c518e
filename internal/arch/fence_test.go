package arch

import (
	"strings"
	"testing"
)

// synth builds an import graph from "from -> to to ..." lines of paths
// relative to the module (or outside it, with a dot in the first element);
// every package a line names exists. A command's Deps are everything it
// reaches. A package written with a trailing "!" imports testing.
func synth(lines ...string) graph {
	g := graph{}
	abs := func(p string) string {
		p = strings.TrimSuffix(p, "!")
		if first, _, _ := strings.Cut(p, "/"); !strings.Contains(first, ".") {
			return module + "/" + p
		}
		return p
	}
	add := func(name string) string {
		path := abs(name)
		p := g[path]
		p.ImportPath = path
		mod := module
		if !strings.HasPrefix(path, module) {
			mod, _, _ = strings.Cut(path, "/")
			mod += "/mod"
			if parts := strings.SplitN(path, "/", 3); len(parts) >= 2 {
				mod = parts[0] + "/" + parts[1]
			}
		}
		p.Module = &struct{ Path string }{mod}
		if strings.HasSuffix(name, "!") && !strings.Contains(strings.Join(p.Imports, " "), "testing") {
			p.Imports = append(p.Imports, "testing")
		}
		g[path] = p
		return path
	}
	for _, l := range lines {
		from, tos, _ := strings.Cut(l, "->")
		f := add(strings.TrimSpace(from))
		for _, to := range strings.Fields(tos) {
			t := add(to)
			p := g[f]
			p.Imports = append(p.Imports, t)
			g[f] = p
		}
	}
	// Deps: everything reachable.
	for path := range g {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, i := range g[p].Imports {
				if i != "testing" && !seen[i] {
					seen[i] = true
					walk(i)
				}
			}
		}
		walk(path)
		p := g[path]
		p.Deps = nil
		for d := range seen {
			p.Deps = append(p.Deps, d)
		}
		g[path] = p
	}
	return g
}

// healthy is a graph that keeps every rule: each rule's packages exist
// and nothing is out of place.
var healthy = []string{
	"cmd/totpd -> device/daemon",
	"device/daemon -> device device/hw device/uplink clock display enroll enroll/proto configs",
	"device -> device/button device/vault clock display",
	"device/hw -> device/button periph.io/x/conn/v3/gpio",
	"device/vault -> device/tpm internal/fsx",
	"clock -> internal/wallclock",
	"enroll/server -> internal/wallclock enroll/seedfile",
	"enroll/store -> internal/fsx",
	"device/uplink -> enroll/proto",
	"cmd/totpserver -> enroll/server/serve",
	"enroll/server/serve -> enroll/server enroll/store enroll enroll/proto configs",
	"enroll/store -> modernc.org/sqlite github.com/jackc/pgx/v5",
	"cmd/totpctl -> device/vault device/localapi enroll enroll/seedfile cmd/totpctl/internal/cli",
	"sim/system -> sim/swtpm device/daemon enroll/server/serve github.com/chromedp/chromedp",
	"internal/testkit! -> enroll",
}

// TestFenceHoldsOnAHealthyGraph checks that the rules pass a graph that
// keeps them, so the failures below are the violations' alone.
func TestFenceHoldsOnAHealthyGraph(t *testing.T) {
	g := synth(healthy...)
	for _, r := range importRules {
		if v := r.check(g); len(v) > 0 {
			t.Errorf("import rule %q on a healthy graph: %q", r.why, v)
		}
	}
	for _, r := range linkRules {
		r.maxModules = 0
		if v := r.check(g, g); len(v) > 0 {
			t.Errorf("%s on a healthy graph: %q", r.cmd, v)
		}
	}
}

// TestFenceFailsOnEachViolation feeds each rule a graph that breaks it on
// purpose and checks that the rule says so.
func TestFenceFailsOnEachViolation(t *testing.T) {
	with := func(extra ...string) graph { return synth(append(append([]string{}, healthy...), extra...)...) }
	without := func(drop string, extra ...string) graph {
		var lines []string
		for _, l := range healthy {
			if !strings.HasPrefix(l, drop+" ->") {
				lines = append(lines, l)
			}
		}
		return synth(append(lines, extra...)...)
	}
	totpd, totpserver := linkRules[0], linkRules[1]
	tests := []struct {
		name  string
		check func() []string
		want  string
	}{
		{"the loop imports a driver", func() []string { return importRules[0].check(with("device -> device/hw")) }, "device imports device/hw"},
		{"the loop imports the sync client", func() []string { return importRules[0].check(with("device -> device/uplink")) }, "device imports device/uplink"},
		{"the sync client imports the loop", func() []string { return importRules[1].check(with("device/uplink -> device")) }, "device/uplink imports device"},
		{"the server imports the appliance", func() []string { return importRules[2].check(with("enroll/server -> device/vault")) }, "enroll/server imports device/vault"},
		{"the drivers import the loop", func() []string { return importRules[3].check(with("device/hw -> device")) }, "device/hw imports device"},
		{"the sync client renamed: its rule matches nothing", func() []string {
			var renamed []string
			for _, l := range healthy {
				renamed = append(renamed, strings.ReplaceAll(l, "device/uplink", "device/link"))
			}
			return importRules[1].check(synth(renamed...))
		}, "matches no package"},
		{"totpd imports sim/swtpm", func() []string { return totpd.check(with("device/tpm -> sim/swtpm"), nil) }, "links sim/swtpm, outside its allow-list"},
		{"totpd links a database driver", func() []string { return totpd.check(with("device/vault -> modernc.org/sqlite"), nil) }, "links modernc.org/sqlite, banned"},
		{"totpd links chromedp", func() []string { return totpd.check(with("display -> github.com/chromedp/chromedp"), nil) }, "links github.com/chromedp/chromedp, banned"},
		{"totpd links the server", func() []string { return totpd.check(with("device/daemon -> enroll/store"), nil) }, "links enroll/store, outside its allow-list"},
		{"totpd links a test-only package", func() []string {
			return totpd.check(with("device/tpm/tpmfake! -> device/tpm", "device/daemon -> device/tpm/tpmfake"), nil)
		}, "device/tpm/tpmfake, which is test-only"},
		{"totpd over its module budget", func() []string {
			r := totpd
			r.maxModules = 1
			return r.check(with("display -> golang.org/x/image/font"), nil)
		}, "over its budget of 1"},
		{"totpserver links periph", func() []string { return totpserver.check(with("enroll/server -> periph.io/x/conn/v3/gpio"), nil) }, "links periph.io/x/conn/v3/gpio, banned"},
		{"totpserver links the appliance", func() []string { return totpserver.check(with("enroll/server -> display"), nil) }, "links display, outside its allow-list"},
		{"a command renamed", func() []string { return totpd.check(without("cmd/totpd"), nil) }, "no such command"},
		{"an allowed package that is gone", func() []string { return totpd.check(without("device/daemon", "cmd/totpd -> device"), nil) }, "allowed configs matches nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(tc.check(), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("violations = %q, want one with %q", got, tc.want)
			}
		})
	}
}

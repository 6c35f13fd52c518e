package arch

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// list runs go list -deps over patterns (with -test when tests is set)
// and returns every package it reports, with its direct imports, its
// dependencies and its module.
func list(t *testing.T, tests bool, patterns ...string) graph {
	t.Helper()
	args := []string{"list", "-deps", "-json=ImportPath,Imports,Deps,Module"}
	if tests {
		args = append(args, "-test")
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p.ImportPath, " [") || strings.HasSuffix(p.ImportPath, ".test") {
			continue // a test variant; its package is listed as itself too
		}
		g[p.ImportPath] = p
	}
	return g
}

// TestImportsPointInward checks the direct imports between the module's
// packages: the device loop knows no hardware and no sync client, the sync
// client knows no loop and no rendering, the drivers know no loop, and
// nothing the server or both sides share knows the appliance or the
// display.
func TestImportsPointInward(t *testing.T) {
	g := list(t, false, "./...")
	for _, r := range importRules {
		for _, v := range r.check(g) {
			t.Error(v)
		}
	}
}

// TestProgramsLinkTheirOwnSide checks what each command links against its
// allow-list and bans, and totpd's budget of modules.
func TestProgramsLinkTheirOwnSide(t *testing.T) {
	all := list(t, true, "./...")
	for _, r := range linkRules {
		t.Run(strings.TrimPrefix(r.cmd, "cmd/"), func(t *testing.T) {
			g := list(t, false, "./"+r.cmd)
			for _, v := range r.check(g, all) {
				t.Error(v)
			}
		})
	}
}

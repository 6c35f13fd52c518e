package arch

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/totpbox/totpbox"

// pkg is what go list says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs go list -deps over patterns and returns the module's packages
// by import path, with their direct imports and all their dependencies.
func list(t *testing.T, patterns ...string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps"}, patterns...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// matches reports whether the import path imp is the package named by
// pattern, a path relative to the module, or, for a pattern ending in
// "/...", that package or one below it.
func matches(imp, pattern string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return under(imp, module+"/"+dir)
	}
	return imp == module+"/"+pattern
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// TestImportsPointInward checks the direct imports between the module's
// packages: the device loop knows no hardware and no sync client, the sync
// client knows no loop and no rendering, and nothing the server or both
// sides share knows the appliance or the display.
func TestImportsPointInward(t *testing.T) {
	pkgs := list(t, "./...")
	rules := []struct {
		from   func(string) bool
		banned []string
		why    string
	}{
		{func(p string) bool { return p == module+"/device" }, []string{"device/hw/...", "device/uplink/..."},
			"the device loop defines the interfaces it consumes"},
		{func(p string) bool { return under(p, module+"/device/uplink") }, []string{"device", "display/..."},
			"the sync client publishes its own offer and link types"},
		{func(p string) bool { return under(p, module+"/enroll") }, []string{"device/...", "display/..."},
			"what the server runs and both sides share knows no appliance"},
	}
	checked := 0
	for path, p := range pkgs {
		for _, r := range rules {
			if !r.from(path) {
				continue
			}
			checked++
			for _, imp := range p.Imports {
				for _, b := range r.banned {
					if matches(imp, b) {
						t.Errorf("%s imports %s: %s", strings.TrimPrefix(path, module+"/"), strings.TrimPrefix(imp, module+"/"), r.why)
					}
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d packages matched the rules: the layout moved without this test", checked)
	}
}

// TestProgramsLinkTheirOwnSide checks what each command links: totpd no
// server, store or test-only code; totpserver no periph.
func TestProgramsLinkTheirOwnSide(t *testing.T) {
	tests := []struct {
		cmd    string
		banned func(dep string) bool
		why    string
	}{
		{"./cmd/totpd", func(d string) bool { return under(d, module+"/enroll/server") || under(d, module+"/enroll/store") },
			"the appliance links no server code"},
		{"./cmd/totpd", isTestOnly, "nothing test-only ships in the appliance"},
		{"./cmd/totpctl", isTestOnly, "nothing test-only ships in the appliance"},
		{"./cmd/totpserver", func(d string) bool { return strings.HasPrefix(d, "periph.io/") }, "the server drives no hardware"},
		{"./cmd/totpserver", isTestOnly, "nothing test-only ships in the server"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.cmd, "./cmd/")+"/"+tt.why, func(t *testing.T) {
			pkgs := list(t, tt.cmd)
			main, ok := pkgs[module+strings.TrimPrefix(tt.cmd, ".")]
			if !ok {
				t.Fatalf("go list did not report %s", tt.cmd)
			}
			for _, d := range append(slices.Clone(main.Deps), main.ImportPath) {
				if tt.banned(d) {
					t.Errorf("%s links %s: %s", tt.cmd, d, tt.why)
				}
			}
		})
	}
}

// isTestOnly reports whether a package exists only for tests: the standard
// testing packages, periph's fakes, and this module's *test packages.
func isTestOnly(path string) bool {
	if path == "testing" || strings.HasPrefix(path, "testing/") {
		return true
	}
	last := path[strings.LastIndex(path, "/")+1:]
	if strings.HasPrefix(path, "periph.io/") && strings.HasSuffix(last, "test") {
		return true
	}
	if under(path, module) && (strings.HasSuffix(last, "test") || under(path, module+"/internal/testkit")) {
		return true
	}
	return false
}

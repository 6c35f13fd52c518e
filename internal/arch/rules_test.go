package arch

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

const module = "github.com/totpbox/totpbox"

// pkg is what go list says of one package.
type pkg struct {
	ImportPath string
	Imports    []string // direct imports of its non-test files
	Deps       []string // everything it links
	Module     *struct{ Path string }
}

// graph is an import graph by import path: go list's, or one a test makes
// up to show that a rule fails.
type graph map[string]pkg

// pattern names packages: "device/uplink" is the module's package, and
// "device/..." that package and those below it; a pattern whose first
// element has a dot ("modernc.org/sqlite/...") names packages outside the
// module the same way; "std" names the standard library.
type pattern string

func (p pattern) match(path string) bool {
	s := string(p)
	if s == "std" {
		first, _, _ := strings.Cut(path, "/")
		return !strings.Contains(first, ".")
	}
	full := s
	if first, _, _ := strings.Cut(s, "/"); !strings.Contains(first, ".") {
		full = module + "/" + s
	}
	if dir, ok := strings.CutSuffix(full, "/..."); ok {
		return path == dir || strings.HasPrefix(path, dir+"/")
	}
	return path == full
}

// short drops the module's prefix from path, for messages.
func short(path string) string {
	return strings.TrimPrefix(path, module+"/")
}

// isTestOnly reports whether a package exists only for tests: it is
// testing itself, or its non-test files import testing.
func isTestOnly(g graph, path string) bool {
	if path == "testing" || strings.HasPrefix(path, "testing/") {
		return true
	}
	return slices.Contains(g[path].Imports, "testing")
}

// importRule bans direct imports from some of the module's packages.
type importRule struct {
	from   []pattern // the packages the rule applies to
	banned []pattern // what they may not import
	why    string
}

// check returns the rule's violations in g, and a violation of its own
// guard when from matches no package or a banned pattern of the module
// matches none: a rule that names nothing checks nothing.
func (r importRule) check(g graph) []string {
	var out []string
	matched := false
	for path, p := range sorted(g) {
		if !anyMatch(r.from, path) {
			continue
		}
		matched = true
		for _, imp := range p.Imports {
			for _, b := range r.banned {
				if b.match(imp) {
					out = append(out, fmt.Sprintf("%s imports %s: %s", short(path), short(imp), r.why))
				}
			}
		}
	}
	if !matched {
		out = append(out, fmt.Sprintf("rule %q: %v matches no package (renamed or moved?)", r.why, r.from))
	}
	for _, b := range r.banned {
		if inModule(b) && !matchesSome(g, b) {
			out = append(out, fmt.Sprintf("rule %q: banned %s matches no package (renamed or moved?)", r.why, b))
		}
	}
	return out
}

// linkRule fences what one command links: of the module, only allowed
// packages; of the rest, nothing banned and nothing test-only; at most
// maxModules modules besides the module itself (0: no budget).
type linkRule struct {
	cmd        string    // the command's package, e.g. "cmd/totpd"
	allowed    []pattern // the module's packages it may link (besides itself)
	banned     []pattern // packages it may not link, inside or outside the module
	maxModules int
}

// check returns the rule's violations in g: g must hold the command and
// its dependencies. Each allowed pattern must match a package the command
// links, and each banned one a package somewhere in all (the module's
// whole graph, tests included), or the rule names nothing.
func (r linkRule) check(g, all graph) []string {
	var out []string
	main, ok := g[module+"/"+r.cmd]
	if !ok {
		return []string{fmt.Sprintf("%s: no such command (renamed or moved?)", r.cmd)}
	}
	deps := append(slices.Clone(main.Deps), main.ImportPath)
	modules := map[string]bool{}
	for _, d := range deps {
		if p := g[d]; p.Module != nil && p.Module.Path != module {
			modules[p.Module.Path] = true
		}
		if d != main.ImportPath && strings.HasPrefix(d, module+"/") && !anyMatch(r.allowed, d) {
			out = append(out, fmt.Sprintf("%s links %s, outside its allow-list %v", r.cmd, short(d), r.allowed))
		}
		for _, b := range r.banned {
			if b.match(d) {
				out = append(out, fmt.Sprintf("%s links %s, banned (%s)", r.cmd, short(d), b))
			}
		}
		if isTestOnly(g, d) {
			out = append(out, fmt.Sprintf("%s links %s, which is test-only (it imports testing)", r.cmd, short(d)))
		}
	}
	if r.maxModules > 0 && len(modules) > r.maxModules {
		names := make([]string, 0, len(modules))
		for m := range modules {
			names = append(names, m)
		}
		sort.Strings(names)
		out = append(out, fmt.Sprintf("%s links %d modules, over its budget of %d: %s", r.cmd, len(modules), r.maxModules, strings.Join(names, " ")))
	}
	for _, a := range r.allowed {
		if !slices.ContainsFunc(deps, a.match) {
			out = append(out, fmt.Sprintf("%s: allowed %s matches nothing it links (renamed or moved?)", r.cmd, a))
		}
	}
	for _, b := range r.banned {
		if !matchesSome(all, b) {
			out = append(out, fmt.Sprintf("%s: banned %s matches no package of the module's graph (renamed or moved?)", r.cmd, b))
		}
	}
	return out
}

func anyMatch(ps []pattern, path string) bool {
	return slices.ContainsFunc(ps, func(p pattern) bool { return p.match(path) })
}

func matchesSome(g graph, p pattern) bool {
	for path := range g {
		if p.match(path) {
			return true
		}
	}
	return false
}

func inModule(p pattern) bool {
	first, _, _ := strings.Cut(string(p), "/")
	return string(p) != "std" && !strings.Contains(first, ".")
}

// sorted yields g's packages in import path order, for stable messages.
func sorted(g graph) func(func(string, pkg) bool) {
	return func(yield func(string, pkg) bool) {
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, g[k]) {
				return
			}
		}
	}
}

// The rules. README's Layout says the same in words.
var (
	importRules = []importRule{
		{from: []pattern{"device"}, banned: []pattern{"device/hw/...", "device/uplink/..."},
			why: "the device loop defines the interfaces it consumes"},
		{from: []pattern{"device/uplink/..."}, banned: []pattern{"device", "display/..."},
			why: "the sync client publishes its own offer and link types"},
		{from: []pattern{"enroll/..."}, banned: []pattern{"device/...", "display/..."},
			why: "what the server runs and both sides share knows no appliance"},
		{from: []pattern{"device/hw/..."}, banned: []pattern{"device", "device/vault/...", "device/tpm/..."},
			why: "the hardware drivers share only device/button with the loop, and link neither the vault nor the TPM"},
	}

	// What the appliance may never link, whatever its allow-list says.
	deviceBanned = []pattern{"sim/...", "modernc.org/sqlite/...", "github.com/jackc/pgx/...", "github.com/chromedp/..."}

	linkRules = []linkRule{
		{cmd: "cmd/totpd",
			allowed: []pattern{"device/...", "clock/...", "display/...", "enroll", "enroll/proto", "configs", "internal/fsx", "internal/wallclock"},
			banned:  deviceBanned,
			// The modules totpd links today: one more needs a reason (and
			// this number raised in the same change).
			maxModules: 31},
		{cmd: "cmd/totpserver",
			allowed: []pattern{"enroll/server/...", "enroll/store/...", "enroll", "enroll/proto", "enroll/seedfile/...", "configs", "internal/fsx", "internal/wallclock"},
			banned:  []pattern{"periph.io/...", "sim/...", "device/...", "github.com/chromedp/..."}},
		{cmd: "cmd/totpctl",
			allowed: []pattern{"device/vault/...", "device/tpm/...", "device/localapi/...", "enroll", "enroll/seedfile/...", "cmd/totpctl/...", "internal/fsx"},
			banned:  deviceBanned},
	}
)

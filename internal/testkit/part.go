package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequirePartsEnv names the environment variable that CI sets to 1: a test
// whose real part is missing then fails instead of skipping.
const RequirePartsEnv = "TOTPBOX_REQUIRE_PARTS"

// RequirePart skips the test when a real part is missing on this machine,
// or fails it when TOTPBOX_REQUIRE_PARTS=1 (CI, which installs every part).
// what names the part and how to get it, e.g. "slapd (Debian package slapd)".
func RequirePart(t testing.TB, missing bool, what string) {
	t.Helper()
	if !missing {
		return
	}
	if os.Getenv(RequirePartsEnv) == "1" {
		t.Fatalf("%s is missing and %s=1: install it", what, RequirePartsEnv)
	}
	t.Skipf("%s is missing; skipping (CI installs it)", what)
}

// RequireProgram returns the path of the named program on PATH (or at the
// absolute path given), skipping or failing the test as RequirePart does
// when it is missing. pkg names the Debian package that provides it.
func RequireProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	RequirePart(t, err != nil, name+" (Debian package "+pkg+")")
	return path
}

// NodeModules returns the folder of the npm packages the tests use
// (.ci/node/node_modules, installed by .ci/run with npm ci), skipping or
// failing the test as RequirePart does when node or the named package is
// missing.
func NodeModules(t testing.TB, pkg string) string {
	t.Helper()
	RequireProgram(t, "node", "nodejs")
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "node", "node_modules")
	_, err := os.Stat(filepath.Join(dir, pkg, "package.json"))
	RequirePart(t, err != nil, "npm package "+pkg+" (npm ci --prefix .ci/node)")
	return dir
}

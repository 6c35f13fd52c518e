// Package tpmtest starts swtpm for tests: skipped on a machine without
// it, failed in CI (TOTPBOX_REQUIRE_PARTS=1) where it must be installed.
package tpmtest

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"os"
	"testing"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/sim/swtpm"
)

// Require skips t when swtpm is missing, or fails it in CI.
func Require(t testing.TB) {
	t.Helper()
	testkit.RequirePart(t, !swtpm.Available(), "swtpm (Debian package swtpm)")
}

// Start starts a swtpm whose state lives in stateDir (a new temporary
// directory when empty) and returns its address for tpm.Open. It is
// stopped when the test ends.
func Start(t testing.TB, stateDir string) string {
	t.Helper()
	Require(t)
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	// A short socket path: unix socket names are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	e, err := swtpm.Start(stateDir, sockDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	return e.Addr
}

// Open starts a swtpm (see Start) and opens it; it is closed when the
// test ends.
func Open(t testing.TB, stateDir string) *tpm.TPM {
	t.Helper()
	d, err := tpm.Open(Start(t, stateDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

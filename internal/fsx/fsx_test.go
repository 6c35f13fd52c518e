package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteAtomic: the file holds the new contents with the asked mode;
// Create refuses an existing file and leaves it as it was; no temporary
// file stays behind either way; Step sees the write's stages in order.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, tc := range []struct {
		name  string
		data  string
		o     Options
		err   error
		want  string
		perm  fs.FileMode
		steps []string
	}{
		{"create", "one", Options{Create: true}, nil, "one", 0o600, nil},
		{"create over an existing file", "two", Options{Create: true}, fs.ErrExist, "one", 0o600, []string{"temporary file of state.json written"}},
		{"replace, readable", "three", Options{Perm: 0o644}, nil, "three", 0o644, []string{"temporary file of state.json written", "state.json renamed"}},
		{"replace, private", "four", Options{}, nil, "four", 0o600, []string{"temporary file of state.json written", "state.json renamed"}},
	} {
		var steps []string
		tc.o.Step = func(where string) { steps = append(steps, where) }
		err := WriteAtomic(path, []byte(tc.data), tc.o)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.err)
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil || string(b) != tc.want {
			t.Fatalf("%s: file holds %q, %v; want %q", tc.name, b, rerr, tc.want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != tc.perm {
			t.Errorf("%s: mode %v, want %v", tc.name, fi.Mode().Perm(), tc.perm)
		}
		if tc.steps != nil && !slices.Equal(steps, tc.steps) {
			t.Errorf("%s: steps %q, want %q", tc.name, steps, tc.steps)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%s: the directory holds %d files, want the one: %v", tc.name, len(entries), entries)
		}
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "x"), nil, Options{}); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}

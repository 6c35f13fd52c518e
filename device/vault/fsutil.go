package vault

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/totpbox/totpbox/internal/fsx"
)

// failpoint, when set (by tests only), is called at each point where a
// crash leaves the files in a different state: a test makes it kill the
// process there, to prove that Open recovers from every such state. It
// is nil in the daemon.
var failpoint func(where string)

// crashPoint calls failpoint, when set, with where.
func crashPoint(where string) {
	if failpoint != nil {
		failpoint(where)
	}
}

// tempPrefix returns the name prefix of temporary files written beside path.
func tempPrefix(path string) string { return fsx.TempPrefix(path) }

// writeFileAtomic writes data to path so that after a crash path holds
// either its old contents or data, never a mix (fsx.WriteAtomic): renamed
// over path, or, when overwrite is false, hard-linked to path, which fails
// with fs.ErrExist if path exists. The file is created 0600.
func writeFileAtomic(path string, data []byte, overwrite bool) error {
	return fsx.WriteAtomic(path, data, fsx.Options{Create: !overwrite, Step: crashPoint})
}

// syncDir fsyncs a directory so that renames and creations in it are
// durable.
func syncDir(dir string) error { return fsx.SyncDir(dir) }

// removeStaleTemps removes temporary files left beside path by a write that
// was interrupted before its rename. Only the holder of the vault lock may
// call it.
func removeStaleTemps(path string) error {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := tempPrefix(path)
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// ensurePrivateDir creates dir with mode 0700 (fsyncing its parent so the
// new directory survives a power cut), or tightens an existing directory to
// 0700.
func ensurePrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return err
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "open", Path: dir, Err: errors.New("not a directory")}
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// ensurePrivateFile tightens an existing file to mode 0600.
func ensurePrivateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		return os.Chmod(path, 0o600)
	}
	return nil
}

// replaceKeyFile puts the key file from in place of path with one
// rename, fsyncs the directory, and only then overwrites the old key
// file's contents with zeros through a descriptor opened before the
// rename (best effort: flash storage may keep old blocks elsewhere). A
// crash at any point leaves path holding the old key or the new, never
// zeros.
func replaceKeyFile(from, path string) error {
	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if old != nil {
		defer old.Close()
	}
	if err := os.Rename(from, path); err != nil {
		return err
	}
	crashPoint(filepath.Base(from) + " renamed to " + filepath.Base(path))
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	crashPoint("directory of " + filepath.Base(path) + " synced")
	if old != nil {
		if fi, err := old.Stat(); err == nil {
			old.WriteAt(make([]byte, fi.Size()), 0)
			old.Sync()
		}
	}
	return nil
}

// Package fsx writes files so that a crash or a power cut leaves either
// the old contents or the new, never a mix: the one atomic write behind
// the vault, its key files, the sync client's state and identity, and the
// clock's drift and RTC files.
package fsx

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how WriteAtomic writes.
type Options struct {
	// Perm is the file's permission bits; zero means 0600.
	Perm fs.FileMode
	// Create makes the write fail with fs.ErrExist when path exists: the
	// new file is hard-linked into place instead of renamed over path.
	Create bool
	// Step, when set (by tests only), is called at each point where a
	// crash leaves the files in a different state, with where it stands.
	Step func(where string)
}

// TempPrefix returns the name prefix of the temporary files WriteAtomic
// writes beside path, so their owner can remove those a crash left.
func TempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// WriteAtomic writes data to path durably: to a temporary file in the same
// directory, which is fsynced and then renamed over path (or hard-linked
// to it, with Options.Create), and finally the directory is fsynced so the
// new name survives a power cut. The temporary file is removed on failure.
func WriteAtomic(path string, data []byte, o Options) (err error) {
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	step := func(where string) {
		if o.Step != nil {
			o.Step(where)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix(path)+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	step("temporary file of " + filepath.Base(path) + " written")
	if o.Create {
		if err = os.Link(tmp, path); err == nil {
			os.Remove(tmp)
		}
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	step(filepath.Base(path) + " renamed")
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and creations in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

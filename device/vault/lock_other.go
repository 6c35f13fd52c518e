//go:build !unix

package vault

import "os"

// lockFile opens path without locking it: on systems without flock the
// vault relies on a single process using it.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

//go:build unix

package localapi

import (
	"fmt"
	"os"
	"syscall"
)

// checkDirOwner refuses a socket directory owned by anyone but root or the
// calling user: its owner could replace the socket.
func checkDirOwner(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not root or totpd's user (uid %d), and its owner could replace the socket: chown it or choose another directory", dir, uid, os.Geteuid())
	}
	return nil
}

package maildir

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameat2NoReplace moves oldName in oldDir to newName in newDir, failing
// with EEXIST rather than replacing newName. A kernel or file system without
// RENAME_NOREPLACE answers EINVAL (or ENOSYS).
func renameat2NoReplace(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
	oc, err := oldDir.SyscallConn()
	if err != nil {
		return err
	}
	nc, err := newDir.SyscallConn()
	if err != nil {
		return err
	}
	var rerr error
	cerr := oc.Control(func(ofd uintptr) {
		err := nc.Control(func(nfd uintptr) {
			rerr = unix.Renameat2(int(ofd), oldName, int(nfd), newName, unix.RENAME_NOREPLACE)
		})
		if err != nil {
			rerr = err
		}
	})
	if cerr != nil {
		return cerr
	}
	return rerr
}

//go:build !linux

package maildir

import (
	"os"
	"syscall"
)

// renameat2NoReplace: only Linux has renameat2 here, and a plain rename
// could replace a message, so file systems without hard links are not
// supported elsewhere.
func renameat2NoReplace(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
	return syscall.ENOSYS
}

//go:build !linux

package beneath

import (
	"io/fs"
	"os"
	"syscall"
)

const (
	oPath       = 0
	atRemoveDir = 0
)

// No openat2 outside Linux: every Root is an os.Root.
func kernelBeneath() bool { return false }

func openDir(string) (int, error)                        { return -1, syscall.ENOSYS }
func (r *Root) resolve(string, int, uint32) (int, error) { return -1, syscall.ENOSYS }
func mkdirat(int, string, uint32) error                  { return syscall.ENOSYS }
func unlinkat(int, string, int) error                    { return syscall.ENOSYS }
func linkat(int, string, int, string) error              { return syscall.ENOSYS }

// openatNoFollow: every Root is an os.Root here, which refuses a symbolic link only
// after opening it; not offered.
func openatNoFollow(*os.File, string, int, uint32) (int, error) { return -1, syscall.ENOSYS }

// WritableDir: without faccessat's AT_EACCESS the answer is the mode bits of the
// directory as os.Root describes it, for the effective ids.
func (r *Root) WritableDir(name string) error {
	if name == "" {
		name = "."
	}
	fi, err := r.Stat(name)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() == 0 {
		return nil
	}
	perm := uint32(fi.Mode().Perm())
	var bits uint32
	switch {
	case int(st.Uid) == os.Geteuid():
		bits = perm >> 6
	case int(st.Gid) == os.Getegid():
		bits = perm >> 3
	default:
		bits = perm
	}
	if bits&3 != 3 {
		return &fs.PathError{Op: "access", Path: name, Err: syscall.EACCES}
	}
	return nil
}

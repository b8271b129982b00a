//go:build !linux

package beneath

import (
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

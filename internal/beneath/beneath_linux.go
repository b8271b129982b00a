package beneath

import (
	"io/fs"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	oPath       = unix.O_PATH
	atRemoveDir = unix.AT_REMOVEDIR
)

// kernelBeneath reports, once per process, whether openat2 with RESOLVE_BENEATH works.
var kernelBeneath = sync.OnceValue(func() bool {
	if forceOSRoot {
		return false
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH,
	})
	if err != nil {
		// ENOSYS: no openat2; EPERM: a seccomp filter that does not know it. Any other
		// error is about ".", not about openat2.
		return err != unix.ENOSYS && err != unix.EPERM
	}
	unix.Close(fd)
	return true
})

// openDir opens the root itself; search permission on it is all a delivery needs.
func openDir(dir string) (int, error) {
	for {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// resolve is openat2 beneath the root.
func (r *Root) resolve(name string, flag int, perm uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flag) | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flag&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(perm)
	}
	if name == "" {
		return -1, syscall.ENOENT
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(r.fd, name, &how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EXDEV:
			// Only a refused escape gives EXDEV here.
			return -1, ErrEscapes
		case err == unix.EINTR, err == unix.EAGAIN && tries < 64:
			// EAGAIN: a rename somewhere in the system raced a ".." in the lookup; the
			// kernel asks for a retry rather than risk a wrong answer.
			continue
		}
		return -1, err
	}
}

// The *at calls are retried on EINTR, as the os package does: NFS and FUSE can return it.

func mkdirat(dfd int, name string, perm uint32) error {
	return ignoringEINTR(func() error { return unix.Mkdirat(dfd, name, perm) })
}

func unlinkat(dfd int, name string, flags int) error {
	return ignoringEINTR(func() error { return unix.Unlinkat(dfd, name, flags) })
}

func linkat(odfd int, oname string, ndfd int, nname string) error {
	// No AT_SYMLINK_FOLLOW: a symbolic link is linked, never its target.
	return ignoringEINTR(func() error { return unix.Linkat(odfd, oname, ndfd, nname, 0) })
}

// openatNoFollow opens name, one element, in the directory d, refusing a symbolic link.
func openatNoFollow(d *os.File, name string, flag int, perm uint32) (int, error) {
	sc, err := d.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := sc.Control(func(dfd uintptr) {
		err = ignoringEINTR(func() error {
			var oerr error
			fd, oerr = unix.Openat(int(dfd), name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
			return oerr
		})
	})
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// WritableDir reports whether the process may create entries in the directory name
// beneath the root: the kernel's access(2) check, for write and search, with the
// effective ids. It opens the directory with O_PATH, which needs no read permission on
// it, so the answer is the one a create beneath it would get, without creating anything.
func (r *Root) WritableDir(name string) error {
	if name == "" {
		name = "."
	}
	f, err := r.OpenFile(name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	err = ignoringEINTR(func() error {
		return unix.Faccessat(int(f.Fd()), ".", unix.W_OK|unix.X_OK, unix.AT_EACCESS)
	})
	if err != nil {
		return &fs.PathError{Op: "access", Path: name, Err: err}
	}
	return nil
}

// Package beneath opens files only beneath one directory, with the kernel enforcing it.
//
// A Root holds a descriptor of its directory. Every name given to a method is resolved
// relative to that descriptor by openat2(2) with RESOLVE_BENEATH and RESOLVE_NO_MAGICLINKS:
// the kernel refuses, during the lookup itself, any "..", absolute path or symbolic link
// that would leave the directory, so a link swapped into a path between a check and an
// open cannot redirect the open (there is no check to race: the open is the check). A
// symbolic link whose target stays beneath the root is followed, as os.Root does, and an
// absolute one is refused. /proc magic links are refused everywhere.
//
// Operations that openat2 cannot express (mkdir, unlink, link) resolve the parent
// directory that way, to a descriptor, and then act on one final name relative to it with
// the *at(2) call, which never follows a symbolic link in that last name. A final name of
// "." or ".." is refused rather than acted on.
//
// Where openat2 is missing (Linux before 5.6, a seccomp filter that answers ENOSYS or
// EPERM, another system) or the binary is built with the tag beneath_osroot, a Root is Go's
// os.Root, which walks the path one element at a time with O_NOFOLLOW and gives the same
// guarantees in user space. Kernel reports which of the two is in use.
//
// A refused escape is an *fs.PathError wrapping ErrEscapes in both cases, whose text is
// os.Root's own "path escapes from parent".
//
// One difference remains between the two: the kernel's Root opens its directory with
// O_PATH, which needs only search permission on it, as virtual(8) does; os.Root opens it
// for reading, which needs read permission too.
package beneath

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// ErrEscapes is wrapped by the error for a name that would resolve outside the root.
var ErrEscapes = errors.New("path escapes from parent")

// Root is a directory that every name passed to its methods stays beneath. Names are
// slash-separated and relative. Its methods may be called concurrently, but not Close
// while another is running.
type Root struct {
	name string
	fd   int      // O_PATH descriptor of the directory when the kernel confines (else -1)
	os   *os.Root // the user-space fallback
}

// Open opens the directory dir as a Root. dir itself is resolved as any path is: the
// confinement starts beneath it.
func Open(dir string) (*Root, error) {
	if kernelBeneath() {
		fd, err := openDir(dir)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		return &Root{name: dir, fd: fd}, nil
	}
	// os.OpenRoot says "not a directory" without an errno; the caller classifies errnos.
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{name: dir, fd: -1, os: r}, nil
}

// Name returns the directory name given to Open.
func (r *Root) Name() string { return r.name }

// Kernel reports whether the kernel enforces the confinement (openat2), rather than
// os.Root in user space.
func (r *Root) Kernel() bool { return r.os == nil }

// Close closes the directory descriptor.
func (r *Root) Close() error {
	if r.os != nil {
		return r.os.Close()
	}
	if r.fd < 0 {
		return os.ErrClosed
	}
	err := syscall.Close(r.fd)
	r.fd = -1
	return err
}

// Open opens name beneath the root for reading.
func (r *Root) Open(name string) (*os.File, error) {
	return r.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile is os.OpenFile beneath the root. O_CREATE|O_EXCL never follows a symbolic
// link and O_NOFOLLOW refuses one as the last element (ELOOP), as open(2) does.
func (r *Root) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if r.os != nil {
		return r.osOpenFile(name, flag, perm)
	}
	fd, err := r.resolve(name, flag, sysMode(perm))
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), joinName(r.name, name)), nil
}

// osOpenFile is OpenFile through os.Root, which follows a symbolic link as the last
// element even with O_NOFOLLOW. With O_NOFOLLOW the last element is therefore opened by
// openat(2) itself, relative to its directory opened through os.Root, so that a link is
// refused before anything is truncated or created through it.
func (r *Root) osOpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if flag&syscall.O_NOFOLLOW == 0 {
		f, err := r.os.OpenFile(name, flag, perm)
		return f, fromOS(err)
	}
	dir, base := split(name)
	if base == "" || base == "." || base == ".." || strings.HasSuffix(base, "/") {
		// Not a symbolic link ("." and ".."), or one that a trailing slash makes the
		// kernel follow: let os.Root resolve those, confined.
		f, err := r.os.OpenFile(name, flag, perm)
		return f, fromOS(err)
	}
	d, err := r.os.Open(dir)
	if err != nil {
		return nil, fromOS(err)
	}
	defer d.Close()
	fd, err := openatNoFollow(d, base, flag, sysMode(perm))
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), joinName(r.name, name)), nil
}

// Stat is os.Stat beneath the root: a symbolic link is followed, if it stays beneath.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	if r.os != nil {
		fi, err := r.os.Stat(name)
		return fi, fromOS(err)
	}
	return r.stat(name, 0)
}

// Lstat is os.Lstat beneath the root: a symbolic link as the last element is described,
// not followed.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	if r.os != nil {
		fi, err := r.os.Lstat(name)
		return fi, fromOS(err)
	}
	return r.stat(name, syscall.O_NOFOLLOW)
}

// stat describes name through an O_PATH descriptor: it needs no permission on the file
// and, with O_NOFOLLOW, opens a symbolic link itself.
func (r *Root) stat(name string, nofollow int) (fs.FileInfo, error) {
	fd, err := r.resolve(name, oPath|nofollow, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "statat", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &fs.PathError{Op: "statat", Path: name, Err: errors.Unwrap(err)}
	}
	return fi, nil
}

// Mkdir is os.Mkdir beneath the root. An existing name, a symbolic link included, gives
// an error wrapping fs.ErrExist.
func (r *Root) Mkdir(name string, perm fs.FileMode) error {
	if r.os != nil {
		return fromOS(r.os.Mkdir(name, perm))
	}
	err := r.inParent(name, func(dfd int, base string) error {
		return mkdirat(dfd, base, sysMode(perm))
	})
	if errors.Is(err, errDotName) {
		// "." and ".." always exist; whether they are beneath the root decides the error.
		if _, serr := r.stat(name, 0); serr != nil {
			return serr
		}
		err = syscall.EEXIST
	}
	if err != nil {
		return &fs.PathError{Op: "mkdirat", Path: name, Err: err}
	}
	return nil
}

// Remove removes the file or empty directory name beneath the root; a symbolic link is
// removed, not followed.
func (r *Root) Remove(name string) error {
	if r.os != nil {
		return fromOS(r.os.Remove(name))
	}
	err := r.inParent(name, func(dfd int, base string) error {
		err := unlinkat(dfd, base, 0)
		if err == syscall.EISDIR || err == syscall.EPERM {
			// unlink(2) says EISDIR (EPERM on some systems) for a directory.
			if derr := unlinkat(dfd, base, atRemoveDir); derr != syscall.ENOTDIR {
				err = derr
			}
		}
		return err
	})
	if errors.Is(err, errDotName) {
		err = syscall.EINVAL
	}
	if err != nil {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

// Link creates newname as a hard link to oldname, both beneath the root. A symbolic
// link as oldname is linked itself, not followed; an existing newname is never replaced.
func (r *Root) Link(oldname, newname string) error {
	if r.os != nil {
		return fromOS(r.os.Link(oldname, newname))
	}
	if strings.HasSuffix(oldname, "/") || strings.HasSuffix(newname, "/") {
		// A trailing slash would make linkat follow a symbolic link as the last element.
		return &os.LinkError{Op: "linkat", Old: oldname, New: newname, Err: syscall.ENOTDIR}
	}
	err := r.inParent(oldname, func(odfd int, obase string) error {
		return r.inParent(newname, func(ndfd int, nbase string) error {
			return linkat(odfd, obase, ndfd, nbase)
		})
	})
	if errors.Is(err, errDotName) {
		err = syscall.EINVAL
	}
	if err != nil {
		return &os.LinkError{Op: "linkat", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// fromOS makes os.Root's refused escape wrap ErrEscapes: its own sentinel is unexported,
// so only its text identifies it.
func fromOS(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err.Error() == ErrEscapes.Error() {
		pe.Err = ErrEscapes
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Err.Error() == ErrEscapes.Error() {
		le.Err = ErrEscapes
	}
	return err
}

var errDotName = errors.New(`last element is "." or ".."`)

// inParent resolves the directory holding name's last element beneath the root and calls
// fn with its descriptor and that element. The element keeps a trailing slash, which
// mkdirat and unlinkat honour without following a symbolic link.
func (r *Root) inParent(name string, fn func(dfd int, base string) error) error {
	if name == "" {
		return syscall.ENOENT
	}
	if strings.HasPrefix(name, "/") {
		return ErrEscapes
	}
	dir, base := split(name)
	if b := strings.TrimRight(base, "/"); b == "." || b == ".." {
		return errDotName
	}
	dfd := r.fd
	if dir != "." {
		var err error
		if dfd, err = r.resolve(dir, oPath|syscall.O_DIRECTORY, 0); err != nil {
			return err
		}
		defer syscall.Close(dfd)
	}
	return fn(dfd, base)
}

// split divides a relative name into the directory to resolve and the last element with
// any trailing slashes.
func split(name string) (dir, base string) {
	trimmed := strings.TrimRight(name, "/")
	i := strings.LastIndexByte(trimmed, '/')
	if i < 0 {
		return ".", name
	}
	return trimmed[:i], name[i+1:]
}

// sysMode is the mode bits open(2) and mkdir(2) take.
func sysMode(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		o |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		o |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		o |= syscall.S_ISVTX
	}
	return o
}

func joinName(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

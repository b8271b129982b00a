package mbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"vdeliver/internal/beneath"
)

const openFlags = os.O_WRONLY | os.O_APPEND | syscall.O_NONBLOCK

// opened is the result of safeOpen: the file and the names it was opened by.
type opened struct {
	f       *os.File
	st      *syscall.Stat_t // fstat of f right after opening
	viaLink bool            // path is a root-owned symlink that was followed
	root    *beneath.Root
	path    string // the mailbox beneath root
	full    string // the mailbox's full path, for errors
}

// safeOpen opens or creates the mailbox as Postfix's safe_open with
// O_CREAT: open existing; on ENOENT create exclusively; on EEXIST (someone
// created it meanwhile) open existing once more.
func safeOpen(root *beneath.Root, name, full string) (opened, error) {
	o, missing, err := openExisting(root, name, full)
	if !missing {
		return o, err
	}
	o, exists, err := createExcl(root, name, full)
	if !exists {
		return o, err
	}
	o, _, err = openExisting(root, name, full)
	return o, err
}

// openExisting opens an existing mailbox. missing reports that the open
// itself failed with ENOENT, the one failure after which creating is right.
func openExisting(root *beneath.Root, name, full string) (o opened, missing bool, err error) {
	// Refuse an untrusted symlink before opening anything: following it
	// would let a user aim our write (or the open side effects of a
	// device) at any file they choose (symlink attack). The post-open
	// comparison below catches a link swapped in after this check.
	if fi, lerr := root.Lstat(name); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
		if !trustedLink(root, name, fi) {
			return o, false, newError("open", full, "file is a symbolic link", ErrSymlink)
		}
	}

	f, oerr := root.OpenFile(name, openFlags, 0)
	if oerr != nil {
		return o, errors.Is(oerr, syscall.ENOENT),
			newError("open", full, "cannot open file: "+strerror(oerr), oerr)
	}
	fail := func(e error) (opened, bool, error) {
		f.Close()
		return opened{}, false, e
	}
	fst, serr := fstat(f)
	if serr != nil {
		return fail(newError("open", full, "cannot open file: "+strerror(serr), serr))
	}
	// A second hard link may be a lure: a link to /etc/passwd or another
	// user's mailbox placed where the mailbox should be.
	if fst.Nlink != 1 {
		return fail(newError("open", full, fmt.Sprintf("file has %d hard links", fst.Nlink), ErrLinked))
	}
	if fst.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return fail(newError("open", full, "file is a directory", syscall.EISDIR))
	}

	lfi, lerr := root.Lstat(name)
	if lerr != nil {
		return fail(newError("open", full, "file status changed unexpectedly: "+strerror(lerr), ErrChanged, lerr))
	}
	if lfi.Mode()&os.ModeSymlink != 0 {
		// Checked again: the link may have been put there after the first
		// Lstat, in which case we just opened its target.
		if !trustedLink(root, name, lfi) {
			return fail(newError("open", full, "file is a symbolic link", ErrSymlink))
		}
		return opened{f: f, st: fst, viaLink: true, root: root, path: name, full: full}, false, nil
	}
	// The file opened must be the file the path names now: otherwise it was
	// swapped (symlink or hard-link race) between open and lstat.
	lst, ok := lfi.Sys().(*syscall.Stat_t)
	if !ok || lst.Dev != fst.Dev || lst.Ino != fst.Ino || lst.Nlink != fst.Nlink || lst.Mode != fst.Mode {
		return fail(newError("open", full, "file status changed unexpectedly", ErrChanged))
	}
	return opened{f: f, st: fst, root: root, path: name, full: full}, false, nil
}

// createExcl creates a new mailbox, mode 0600 (less the umask). exists
// reports EEXIST: another process created the file first.
func createExcl(root *beneath.Root, name, full string) (o opened, exists bool, err error) {
	// O_EXCL does not follow a symlink, and
	// the root never creates a missing parent directory.
	f, cerr := root.OpenFile(name, openFlags|os.O_CREATE|os.O_EXCL, 0o600)
	if cerr != nil {
		return o, errors.Is(cerr, syscall.EEXIST),
			newError("open", full, "cannot create file exclusively: "+strerror(cerr), cerr)
	}
	st, serr := fstat(f)
	if serr != nil {
		f.Close()
		return o, false, newError("open", full, "cannot create file exclusively: "+strerror(serr), serr)
	}
	// Make the new name durable before anything is written into it: a message reported
	// delivered must survive a crash, and an fsynced file whose directory entry was lost
	// would not. (virtual(8) syncs only the file.) Failing here leaves an empty mailbox.
	if derr := syncDir(root, filepath.Dir(name)); derr != nil {
		f.Close()
		return o, false, newError("open", full, "cannot create file exclusively: "+strerror(derr), derr)
	}
	return opened{f: f, st: st, root: root, path: name, full: full}, false, nil
}

// syncDir fsyncs a directory beneath root.
func syncDir(root *beneath.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// trustedLink reports whether the symlink name (described by fi) may be
// followed: only root can have made it and only root can replace it
// (safe_open.c; systems where mailboxes or /dev entries are symlinks).
func trustedLink(root *beneath.Root, name string, fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 {
		return false
	}
	dfi, err := root.Stat(filepath.Dir(name))
	if err != nil {
		return false
	}
	dst, ok := dfi.Sys().(*syscall.Stat_t)
	return ok && dst.Uid == 0 && dst.Mode&(syscall.S_IWGRP|syscall.S_IWOTH) == 0
}

func fstat(f *os.File) (*syscall.Stat_t, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, syscall.ENOTSUP
	}
	return st, nil
}

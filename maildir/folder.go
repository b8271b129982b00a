package maildir

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"vdeliver/internal/beneath"
)

// FolderMarker is the empty file that marks a Maildir++ folder (Courier's and Dovecot's
// "maildirfolder"): quota code and IMAP servers tell a folder from a Maildir by it.
const FolderMarker = "maildirfolder"

// CreateFolder makes the Maildir++ folder name (one directory name starting with '.',
// such as ".lists") in the maildir dir: the folder's directory with cur/, new/ and tmp/,
// each 0700, and the empty FolderMarker file, 0600, all owned by the caller's effective
// ids and each fsynced with its directory, so that the folder survives a crash as a
// delivered message does. Missing parents (the maildir itself) are created too.
//
// What already exists is completed, never replaced or opened for writing: a concurrent
// delivery creating the same folder, or Dovecot, is no error. Every step goes through
// root. A failure is an *Error with Op "create" naming the folder.
func CreateFolder(root *beneath.Root, dir, name string) error {
	prefix := strings.TrimRight(dir, "/")
	folder := joinPath(prefix, name)
	if !strings.HasPrefix(name, ".") || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return &Error{Op: "create", Path: folder, Err: errors.New("not a Maildir++ folder name")}
	}
	if err := makeDirs(root, folder, "cur", "new", "tmp"); err != nil {
		return &Error{Op: "create", Path: folder, Err: err}
	}
	d, err := openDir(root, folder)
	if err != nil {
		return &Error{Op: "create", Path: folder, Err: err}
	}
	defer d.Close()
	markerPath := joinPath(folder, FolderMarker)
	f, err := createAt(d, FolderMarker, markerPath)
	if errors.Is(err, syscall.EEXIST) {
		// Made by another delivery or by the IMAP server; whatever it is, it is not ours.
		return nil
	}
	if err != nil {
		return &Error{Op: "create", Path: markerPath, Err: err}
	}
	err = syncFile(f)
	if cerr := closeFile(f); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(d)
	}
	if err != nil {
		return &Error{Op: "create", Path: markerPath, Err: err}
	}
	return nil
}

// FolderExists reports whether the Maildir++ folder name of the maildir dir is a
// directory. A name that is there but no directory gives an error wrapping
// syscall.ENOTDIR; a folder that is not there gives false and no error.
func FolderExists(root *beneath.Root, dir, name string) (bool, error) {
	folder := joinPath(strings.TrimRight(dir, "/"), name)
	fi, err := root.Stat(folder)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, &fs.PathError{Op: "stat", Path: folder, Err: syscall.ENOTDIR}
	}
	return true, nil
}

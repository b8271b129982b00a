package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"vdeliver/internal/beneath"
)

// Probe answers, without creating or writing anything, the error Deliver would return
// before its first write for a message of size bytes in the maildir dir: the message
// over limit, a tmp/ or new/ the process may not write, or, when tmp/ is missing, a
// directory Deliver would have to create it in that it may not write (or a name on the
// way that is not a directory). The caller must already run as the recipient: the
// answer is the kernel's access check for the process's own ids. The errors are
// *Error values with the Op and errno Deliver would give, so a caller classifies both
// the same way. nil means Deliver would get as far as writing the message.
func Probe(root *beneath.Root, dir string, size, limit int64) error {
	prefix := strings.TrimRight(dir, "/")
	sub := func(name string) string { return joinPath(prefix, name) }
	tmpPath := sub("tmp")
	if limit > 0 && size > limit {
		return &Error{Op: "write", Path: tmpPath, Err: fmt.Errorf("%w: %w", ErrTooLarge, syscall.EFBIG)}
	}
	fi, err := root.Stat(tmpPath)
	switch {
	case err == nil && !fi.IsDir():
		return &Error{Op: "create", Path: tmpPath, Err: &fs.PathError{Op: "open", Path: tmpPath, Err: syscall.ENOTDIR}}
	case err == nil:
		if err := root.WritableDir(tmpPath); err != nil {
			return &Error{Op: "create", Path: tmpPath, Err: err}
		}
		// The message is linked into new/ once written.
		if err := root.WritableDir(sub("new")); err != nil {
			return &Error{Op: "link", Path: sub("new"), Err: err}
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return &Error{Op: "create", Path: tmpPath, Err: err}
	}
	// tmp/ is missing: Deliver makes every missing directory of dir and tmp, new, cur,
	// each in its parent. The first one missing is made in the deepest that exists.
	parent := prefix
	if parent == "" {
		parent = "."
	}
	for {
		fi, err := root.Stat(parent)
		if err == nil {
			if !fi.IsDir() {
				return &Error{Op: "create", Path: tmpPath, Err: &fs.PathError{Op: "mkdir", Path: parent, Err: syscall.ENOTDIR}}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || parent == "." {
			return &Error{Op: "create", Path: tmpPath, Err: err}
		}
		parent, _ = splitPath(parent)
	}
	if err := root.WritableDir(parent); err != nil {
		return &Error{Op: "create", Path: tmpPath, Err: err}
	}
	return nil
}

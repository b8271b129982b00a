package mbox

import (
	"errors"
	"io/fs"
	"syscall"
)

// Sentinel errors; an *Error from Deliver wraps at most one of them, next to
// the OS error that caused it (if any).
var (
	// ErrNotRegular: the mailbox is a device, FIFO or socket. Postfix
	// bounces this (5.3.5): retrying cannot help.
	ErrNotRegular = errors.New("mbox: not a regular file")
	// ErrLinked: the file has more than one hard link (a link to a
	// sensitive file planted as a mailbox).
	ErrLinked = errors.New("mbox: file has more than one hard link")
	// ErrSymlink: the path is a symbolic link not owned by root or in a
	// directory others may write to.
	ErrSymlink = errors.New("mbox: file is a symbolic link")
	// ErrChanged: the path no longer names the opened file (fstat and lstat
	// disagree, or the file was replaced or unlinked before it was locked).
	ErrChanged = errors.New("mbox: file status changed unexpectedly")
	// ErrOwner: StrictOwner is set and the file belongs to another uid.
	ErrOwner = errors.New("mbox: file not owned by recipient")
	// ErrLockBusy: another process held a lock through every attempt, or the
	// context ran out while waiting. Errors wrapping it also wrap
	// syscall.EAGAIN.
	ErrLockBusy = errors.New("mbox: mailbox is locked by another process")
	// ErrTooLarge: the message would take the file over Options.Limit, or the
	// kernel refused the write with EFBIG. Errors wrapping it also wrap
	// syscall.EFBIG.
	ErrTooLarge = errors.New("mbox: mailbox size limit exceeded")
	// ErrOverQuota: the message would take the file over Options.Quota. Errors
	// wrapping it also wrap syscall.EDQUOT.
	ErrOverQuota = errors.New("mbox: mailbox over quota")
)

// Error says which step of a delivery failed. Op is "lock", "open" or
// "write"; Path is the mailbox path (the root's name joined with the path
// given to Deliver). Error returns the reason text virtual(8) uses, without
// the "delivery failed to mailbox <path>: " prefix; Reason returns it without
// any path, for the sender.
type Error struct {
	Op   string
	Path string
	Err  error
}

// Error returns Postfix's reason text for the failure. A few texts name the
// mailbox or its lock file ("unable to create lock file /b/u.lock: File
// exists"): it is for the log.
func (e *Error) Error() string {
	if r, ok := e.Err.(*reason); ok {
		return r.text
	}
	return e.opText()
}

// Reason is Error without a path ("unable to create lock file: File exists",
// "file has 2 hard links"): what the sender is shown, since the mailbox path
// is for the log only.
func (e *Error) Reason() string {
	if r, ok := e.Err.(*reason); ok {
		return r.bare
	}
	return e.opText()
}

// opText is the reason for an Error this package did not build: the step and
// the OS error, which strerror renders without a path.
func (e *Error) opText() string {
	switch e.Op {
	case "lock":
		return "unable to lock for exclusive access: " + strerror(e.Err)
	case "open":
		return "cannot open file: " + strerror(e.Err)
	default:
		return "error writing message: " + strerror(e.Err)
	}
}

// Unwrap returns the cause, through which errors.Is finds the sentinel and
// the errno.
func (e *Error) Unwrap() error { return e.Err }

// reason is the Err of an *Error built by this package: text is the
// complete Postfix reason, bare the same without the path it may name, and
// it unwraps to the sentinel and OS error.
type reason struct {
	text string
	bare string
	errs []error
}

func (r *reason) Error() string   { return r.text }
func (r *reason) Unwrap() []error { return r.errs }

// newError builds an *Error whose reason text names no path.
func newError(op, path, text string, errs ...error) *Error {
	return &Error{Op: op, Path: path, Err: &reason{text: text, bare: text, errs: errs}}
}

// newErrorNaming builds an *Error whose reason names a file between before
// and after, as Postfix's does: "before name after" for the log, "before
// after" for the sender.
func newErrorNaming(op, path, before, name, after string, errs ...error) *Error {
	return &Error{Op: op, Path: path, Err: &reason{text: before + " " + name + after, bare: before + after, errs: errs}}
}

// strerror renders err as C's strerror(3) would, so reasons read as
// Postfix's do ("No space left on device"): Go's errno texts are glibc's
// with a lower-case first letter.
func strerror(err error) string {
	if err == nil {
		return "Success"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" && s[0] >= 'a' && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:]
		}
		return s
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

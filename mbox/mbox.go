package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"vdeliver/internal/beneath"
)

// Options are virtual(8)'s mbox parameters, already parsed by the caller.
type Options struct {
	Locks    []string      // subset of "dotlock", "flock", "fcntl" (virtual_mailbox_lock); order is irrelevant
	Attempts int           // deliver_lock_attempts, per lock kind; <= 0 means 1
	Delay    time.Duration // deliver_lock_delay; each sleep is uniform in [0.75·Delay, 1.25·Delay]
	StaleAge time.Duration // stale_lock_time: a .lock whose ctime is older is removed; <= 0 means 500s
	Limit    int64         // virtual_mailbox_limit in bytes; 0 means no limit
	// Quota is a byte quota of the recipient's (vdeliver_quota_maps); 0 means none. It
	// bounds the file as Limit does, and the smaller of the two applies; a record refused
	// by the quota is ErrOverQuota, one refused by Limit ErrTooLarge.
	Quota       int64
	Owner       int              // the recipient's uid, checked when StrictOwner is set
	StrictOwner bool             // strict_mailbox_ownership
	Now         func() time.Time // clock for the From_ line; nil means time.Now
}

// Fault seams for tests: the write and fsync of the record, so that EIO,
// EDQUOT or EFBIG can be made to happen mid-message.
var (
	writeFile = func(f *os.File, b []byte) (int, error) { return f.Write(b) }
	syncFile  = (*os.File).Sync
)

// Deliver appends one message to the mbox file at path (relative to root):
// "From " + sender + "  " + date + "\n", then headers (already formatted by
// the caller, e.g. "Return-Path: <a@b>\nDelivered-To: c@d\n"), then msg with
// ">" before every line starting "From ", then "\n". sender must already be
// quoted ("MAILER-DAEMON" for the null sender; "" is written as that too);
// msg must have LF line ends, and a missing final newline is added. The
// package doc describes the open, lock, write and roll-back sequence.
//
// ctx bounds every lock wait: when the next sleep would pass its deadline,
// or it is cancelled, Deliver gives up with ErrLockBusy.
//
// Every error is an *Error. A failed delivery leaves the file at its
// previous size and removes the dotlock it made. It wraps ErrLockBusy and
// syscall.EAGAIN when a lock stayed busy; ErrSymlink, ErrLinked, ErrChanged,
// ErrNotRegular or ErrOwner when the file is refused; ErrTooLarge and
// syscall.EFBIG when Limit would be exceeded; ErrOverQuota and syscall.EDQUOT when
// Quota would; and the OS error (ENOENT,
// EACCES, EISDIR, ENXIO, ENOSPC, EDQUOT, EIO, ...) otherwise.
func Deliver(ctx context.Context, root *beneath.Root, path, sender string, headers, msg []byte, opt Options) error {
	killpoint("mbox:start")
	full := filepath.Join(root.Name(), path)
	locks, err := lockMethods(opt.Locks, full)
	if err != nil {
		return err
	}
	r := retry{ctx: ctx, attempts: max(opt.Attempts, 1), delay: opt.Delay}
	staleAge := opt.StaleAge
	if staleAge <= 0 {
		staleAge = defaultStaleAge
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}

	if locks.dot {
		// As virtual(8): no dotlock beside what is not a regular file,
		// such as /dev/null. stat, not lstat: a root-owned link to a
		// device gets no lock either.
		if fi, serr := root.Stat(path); serr != nil || fi.Mode().IsRegular() {
			dl, derr := lockDot(r, root, path+".lock", full+".lock", staleAge, full)
			if derr != nil {
				return derr
			}
			// Deferred first, so it runs last: after the close below has
			// dropped the kernel locks, as mbox_release.
			defer dl.unlock()
			killpoint("mbox:dotlocked")
		} else {
			// Asked for but not taken: from here on locks.dot says that
			// the dotlock is held.
			locks.dot = false
		}
	}

	o, err := safeOpen(root, path, full)
	if err != nil {
		return err
	}
	killpoint("mbox:opened")
	err = deliverOpen(r, o, recordParts(sender, now(), headers, msg), locks, opt)
	if cerr := o.f.Close(); cerr != nil && err == nil {
		// The data is synced, but some file systems (NFS, AFS) only report
		// a failed write at close; saying "delivered" would risk a loss.
		err = newError("write", full, "error writing message: "+strerror(cerr), cerr)
	}
	killpoint("mbox:closed")
	return err
}

// deliverOpen locks, checks and appends the record rec (recordParts) to the
// opened mailbox. locks.flock and locks.fcntl are the kernel locks it takes;
// locks.dot says that Deliver holds its dotlock. The caller closes the file.
func deliverOpen(r retry, o opened, rec [][]byte, locks lockSet, opt Options) error {
	root, path, full := o.root, o.path, o.full
	if o.st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return newError("open", full, "not a regular file", ErrNotRegular)
	}
	if locks.flock {
		if err := lockKernel(r, o.f, true, full); err != nil {
			return err
		}
		killpoint("mbox:flocked")
	}
	if locks.fcntl {
		if err := lockKernel(r, o.f, false, full); err != nil {
			return err
		}
		killpoint("mbox:fcntl-locked")
	}
	// Only with a lock that keeps other deliveries out may a fragment be
	// judged ours and cut off; without one it could be another delivery's
	// write in progress. The mutex is taken after the locks and before the
	// status below: a goroutine of this process may have appended until now
	// (fcntl alone does not keep it out), and a stale size would misplace the
	// roll-back, the last-byte check and the intent record.
	guarded := locks.flock || locks.fcntl || locks.dot
	if guarded {
		appendMu.Lock()
		defer appendMu.Unlock()
	}
	st, err := fstat(o.f)
	if err != nil {
		return newError("open", full, "target file status changed unexpectedly", ErrChanged, err)
	}
	// A POP daemon may have unlinked or renamed the mailbox and made a
	// new one while we waited for the lock: writing now would put the
	// message where no reader looks.
	if st.Nlink != 1 || !samePath(root, path, o.viaLink, st) {
		return newError("open", full, "target file status changed unexpectedly", ErrChanged)
	}
	if opt.StrictOwner && int64(st.Uid) != int64(opt.Owner) {
		return newErrorNaming("open", full, "destination", full, " is not owned by recipient", ErrOwner)
	}
	if guarded {
		if st, err = recoverAppend(root, path, o.f, st); err != nil {
			return newError("open", full, "target file status changed unexpectedly", ErrChanged, err)
		}
	}

	oldSize := st.Size
	if oldSize > 0 && !endsLine(root, path, st) {
		// A delivery killed in the middle of its write(2) (SIGKILL can cut
		// a large write short) leaves a record without its end, which
		// recovery above removes when it can prove the bytes are that
		// delivery's; when it cannot (no intent record, or another writer
		// appended since), our From_ line appended straight after that
		// unterminated last line would not start a line, and every reader
		// would take our message for part of the fragment: a delivery
		// reported as done, yet lost. Ending the fragment first keeps our
		// record a record.
		rec = append([][]byte{[]byte("\n\n")}, rec...)
	}
	if err := limitCheck(full, oldSize, partsLen(rec), opt); err != nil {
		return err
	}
	killpoint("mbox:checked")
	// The intent record goes first, so that no byte of ours is in the
	// mailbox without one (the package doc, "Torn writes").
	protected := guarded && writeIntent(root, path, st, rec)
	for _, p := range rec {
		var n int
		if n, err = writeFile(o.f, p); err == nil && n != len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			break
		}
	}
	killpoint("mbox:written")
	if err == nil {
		err = syncFile(o.f)
	}
	killpoint("mbox:synced")
	if err != nil {
		// Roll back while the locks are still held, so no reader ever
		// sees the partial message for longer than this, and a retry
		// does not leave a duplicate behind. Errors are ignored, as in
		// mail_copy: there is nothing better to do, except keeping the
		// intent record when the roll-back failed, so that the next
		// delivery tries again.
		terr := o.f.Truncate(oldSize)
		serr := o.f.Sync()
		killpoint("mbox:rolled-back")
		if protected && terr == nil && serr == nil {
			clearIntent(root, path)
		}
		errs := []error{err}
		if errors.Is(err, syscall.EFBIG) {
			errs = []error{ErrTooLarge, err}
		}
		return newError("write", full, "error writing message: "+strerror(err), errs...)
	}
	if protected {
		clearIntent(root, path)
	}
	return nil
}

// samePath reports whether path still names the file whose status is st.
func samePath(root *beneath.Root, path string, viaLink bool, st *syscall.Stat_t) bool {
	stat := root.Lstat
	if viaLink {
		stat = root.Stat
	}
	fi, err := stat(path)
	if err != nil {
		return false
	}
	pst, ok := fi.Sys().(*syscall.Stat_t)
	return ok && pst.Dev == st.Dev && pst.Ino == st.Ino
}

// openSame opens path read-only when it still names the file whose status is
// st, else returns nil. O_NONBLOCK: should the path have become a FIFO, the
// open must not wait for a writer; the inode check then refuses it.
func openSame(root *beneath.Root, path string, st *syscall.Stat_t) *os.File {
	f, err := root.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	if rst, err := fstat(f); err != nil || rst.Dev != st.Dev || rst.Ino != st.Ino {
		f.Close()
		return nil
	}
	return f
}

// endsLine reports whether the mailbox, whose locked descriptor has status
// st, ends with a newline. It reads the last byte through a second,
// read-only descriptor (the delivery's own is write-only), used only when it
// is the same file; when that cannot be done it answers true, which appends
// exactly as virtual(8) does.
func endsLine(root *beneath.Root, path string, st *syscall.Stat_t) bool {
	f := openSame(root, path, st)
	if f == nil {
		return true
	}
	defer f.Close()
	var last [1]byte
	if n, err := f.ReadAt(last[:], st.Size-1); n != 1 && err != nil {
		return true
	}
	return last[0] == '\n'
}

// lockSet is a set of the three lock methods.
type lockSet struct {
	dot, flock, fcntl bool
}

// lockMethods reads virtual_mailbox_lock's list (Options.Locks) for the mailbox full.
func lockMethods(list []string, full string) (lockSet, error) {
	var locks lockSet
	for _, l := range list {
		switch l {
		case "dotlock":
			locks.dot = true
		case "flock":
			locks.flock = true
		case "fcntl":
			locks.fcntl = true
		default:
			return lockSet{}, newError("lock", full, fmt.Sprintf("unknown mailbox lock method %q", l), syscall.EINVAL)
		}
	}
	return locks, nil
}

package mbox

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
)

// Probe answers, without writing anything, the error Deliver would return before its
// first write to the mbox file at path, for the same arguments: a lock method it does not
// know, a dotlock it could not create (a directory the process may not write) or that
// another process holds, a file it would refuse (symlink, hard links, not regular, not
// the recipient's with StrictOwner), a file it could not open or create, a kernel lock
// held by another process, or the message taking the file over Limit or Quota. Nothing is created
// and no lock is kept: a kernel lock is tried without waiting and released at once.
//
// The caller must already run as the recipient. The errors are the *Error values Deliver
// would give, so a caller classifies both the same way. nil means Deliver would get as
// far as writing the message, unless a lock holder keeps its lock through every attempt.
func Probe(root *beneath.Root, path, sender string, headers, msg []byte, opt Options) error {
	full := filepath.Join(root.Name(), path)
	locks, err := lockMethods(opt.Locks, full)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if locks.dot {
		if fi, serr := root.Stat(path); serr != nil || fi.Mode().IsRegular() {
			lock, lockFull := path+".lock", full+".lock"
			lockErr := func(err error, errs ...error) *Error {
				return newErrorNaming("lock", full, "unable to create lock file", lockFull, ": "+strerror(err), errs...)
			}
			if err := root.WritableDir(dir); err != nil {
				return lockErr(err, err)
			}
			staleAge := opt.StaleAge
			if staleAge <= 0 {
				staleAge = defaultStaleAge
			}
			if fi, err := root.Lstat(lock); err == nil && (fi.IsDir() || time.Since(ctime(fi)) <= staleAge) {
				return lockErr(syscall.EEXIST, ErrLockBusy, syscall.EAGAIN)
			}
		}
	}
	o, missing, err := openExisting(root, path, full)
	if missing {
		// Deliver creates the file exclusively in its directory.
		if werr := root.WritableDir(dir); werr != nil {
			var pe *fs.PathError
			if errors.As(werr, &pe) {
				werr = pe.Err
			}
			return newError("open", full, "cannot create file exclusively: "+strerror(werr), werr)
		}
		return sizeCheck(full, 0, sender, headers, msg, opt)
	}
	if err != nil {
		return err
	}
	defer o.f.Close()
	if o.st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return newError("open", full, "not a regular file", ErrNotRegular)
	}
	for _, kind := range []bool{true, false} {
		if (kind && !locks.flock) || (!kind && !locks.fcntl) {
			continue
		}
		if err := tryLock(o.f.Fd(), kind); err != nil {
			text := "unable to lock for exclusive access: " + strerror(err)
			if err == unix.EAGAIN {
				return newError("lock", full, text, ErrLockBusy, err)
			}
			return newError("lock", full, text, err)
		}
	}
	if opt.StrictOwner && int64(o.st.Uid) != int64(opt.Owner) {
		return newErrorNaming("open", full, "destination", full, " is not owned by recipient", ErrOwner)
	}
	extra := int64(0)
	if o.st.Size > 0 && !endsLine(root, path, o.st) {
		extra = 2
	}
	return sizeCheck(full, o.st.Size+extra, sender, headers, msg, opt)
}

// sizeCheck is Deliver's limit check for a file of size bytes.
func sizeCheck(full string, size int64, sender string, headers, msg []byte, opt Options) error {
	if opt.Limit <= 0 && opt.Quota <= 0 {
		return nil
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	return limitCheck(full, size, int64(len(record(sender, now(), headers, msg))), opt)
}

// limitCheck refuses a record of n bytes appended to a file of size bytes when it would
// take the file over the smaller of Limit and Quota; reaching either exactly is allowed.
// When the quota is the smaller, the refusal is the quota's, naming the quota and the
// file's size for the log.
func limitCheck(full string, size, n int64, opt Options) error {
	if opt.Quota > 0 && (opt.Limit <= 0 || opt.Quota < opt.Limit) {
		if size+n > opt.Quota {
			return newError("write", full, fmt.Sprintf("mailbox over quota: %d bytes, limit %d bytes, message %d bytes", size, opt.Quota, n),
				ErrOverQuota, syscall.EDQUOT)
		}
		return nil
	}
	if opt.Limit > 0 && size+n > opt.Limit {
		return newError("write", full, "error writing message: "+strerror(syscall.EFBIG), ErrTooLarge, syscall.EFBIG)
	}
	return nil
}

// tryLock asks for the lock Deliver would take, without waiting: flock is taken and
// released at once, an fcntl lock only tested (F_GETLK), so nothing is held afterwards.
func tryLock(fd uintptr, useFlock bool) error {
	var err error
	if useFlock {
		if err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return unix.Flock(int(fd), unix.LOCK_UN)
		}
	} else {
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err = unix.FcntlFlock(fd, unix.F_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
			err = unix.EAGAIN
		}
	}
	if err == unix.EWOULDBLOCK || err == unix.EACCES {
		err = unix.EAGAIN
	}
	return err
}

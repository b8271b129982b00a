package mbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
)

// defaultStaleAge is Postfix's stale_lock_time, used when Options.StaleAge
// is not set: treating every lock as stale would defeat locking.
const defaultStaleAge = 500 * time.Second

// retry paces the attempts of one lock kind (deliver_lock_attempts,
// deliver_lock_delay) within the caller's deadline.
type retry struct {
	ctx      context.Context
	attempts int
	delay    time.Duration
}

// wait sleeps before the next attempt, uniformly in [0.75·delay, 1.25·delay]
// as Postfix's rand_sleep. It returns the context's error, or
// context.DeadlineExceeded when the sleep would end after the deadline:
// waiting past it would only let pipe(8) kill us, which bounces the message.
func (r retry) wait() error {
	d := r.delay
	if d > 0 {
		d = d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if dl, ok := r.ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
		return context.DeadlineExceeded
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// dotlock is a <path>.lock file we created.
type dotlock struct {
	root     *beneath.Root
	name     string
	dev, ino uint64
}

// lockDot creates name (the mailbox path plus ".lock") as dot_lockfile.c
// does. full is the lock's path for the reason text.
func lockDot(r retry, root *beneath.Root, name, full string, staleAge time.Duration, mailbox string) (*dotlock, error) {
	lockErr := func(err error, errs ...error) *Error {
		return newErrorNaming("lock", mailbox, "unable to create lock file", full, ": "+strerror(err), errs...)
	}
	staleRemoved := false
	for i := 1; ; i++ {
		// O_EXCL never follows a symlink, so a planted link cannot make us
		// create a file elsewhere; mode 0 as Postfix, the name is the lock.
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0)
		if err == nil {
			l := &dotlock{root: root, name: name}
			if fi, serr := f.Stat(); serr == nil {
				l.dev, l.ino = devIno(fi)
			}
			if cerr := f.Close(); cerr != nil {
				l.unlock()
				return nil, lockErr(cerr, cerr)
			}
			return l, nil
		}
		if !errors.Is(err, syscall.EEXIST) {
			return nil, lockErr(err, err)
		}
		// A directory is never taken for a stale lock: Postfix's unlink
		// would fail on it, and we must not rmdir what we did not make.
		if fi, serr := root.Lstat(name); serr == nil && !fi.IsDir() && time.Since(ctime(fi)) > staleAge {
			// The holder died without cleaning up (stale_lock_time).
			if rerr := root.Remove(name); rerr != nil && !errors.Is(rerr, syscall.ENOENT) {
				return nil, lockErr(rerr, rerr)
			}
			if !staleRemoved {
				staleRemoved = true
				i--
				continue
			}
		}
		if i >= r.attempts {
			return nil, lockErr(err, ErrLockBusy, syscall.EAGAIN)
		}
		if werr := r.wait(); werr != nil {
			return nil, lockErr(err, ErrLockBusy, syscall.EAGAIN, werr)
		}
	}
}

// unlock removes the lock file, unless it is no longer ours: after
// StaleAge another deliverer may have broken it and made its own, and
// removing that one would let a third writer in. Errors are ignored as in
// Postfix: the delivery outcome is already decided, and a leftover lock only
// delays the next delivery until it is stale.
func (l *dotlock) unlock() {
	if fi, err := l.root.Lstat(l.name); err == nil {
		if dev, ino := devIno(fi); l.ino != 0 && (dev != l.dev || ino != l.ino) {
			return
		}
	}
	l.root.Remove(l.name)
}

// lockKernel takes an exclusive flock(2) or fcntl(2) lock on f without
// blocking, retrying as deliver_flock.c does. full is the mailbox path.
func lockKernel(r retry, f *os.File, useFlock bool, full string) error {
	const text = "unable to lock for exclusive access: "
	rc, err := f.SyscallConn()
	if err != nil {
		return newError("lock", full, text+strerror(err), err)
	}
	try := func() error {
		var lerr error
		cerr := rc.Control(func(fd uintptr) {
			if useFlock {
				lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
				return
			}
			lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
			lerr = unix.FcntlFlock(fd, unix.F_SETLK, &lk)
		})
		if cerr != nil {
			return cerr
		}
		// myflock.c: fcntl reports a held lock as EACCES on some systems.
		if lerr == unix.EWOULDBLOCK || lerr == unix.EACCES {
			lerr = unix.EAGAIN
		}
		return lerr
	}
	for i := 1; ; i++ {
		err := try()
		if err == nil {
			return nil
		}
		busy := err == unix.EAGAIN
		if i >= r.attempts {
			if busy {
				return newError("lock", full, text+strerror(err), ErrLockBusy, err)
			}
			return newError("lock", full, text+strerror(err), err)
		}
		if werr := r.wait(); werr != nil {
			if busy {
				return newError("lock", full, text+strerror(err), ErrLockBusy, err, werr)
			}
			return newError("lock", full, text+strerror(err), err, werr)
		}
	}
}

func devIno(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

func ctime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}

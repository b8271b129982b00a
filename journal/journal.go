package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune Open.
type Options struct {
	// MaxAge is maximal_queue_lifetime: a journal older than this is discarded. <= 0
	// keeps journals forever.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LockTimeout bounds the wait for the state directory's lock; <= 0 means 30s. The
	// lock is only ever held for one read-modify-write, so a longer wait means a stuck
	// process, and the caller should defer rather than wait for pipe(8)'s time limit.
	LockTimeout time.Duration
	// Deadline, when set, ends every lock wait earlier than LockTimeout would: the run's
	// own deadline, by which the delivery must have answered (a defer, not pipe(8)'s
	// time limit, which bounces).
	Deadline time.Time
}

var (
	// ErrQueueID reports a queue id that cannot be a file name (see the package doc).
	ErrQueueID = errors.New("bad queue id")
	// ErrEntry reports a recipient or destination that is empty or has a control
	// character.
	ErrEntry = errors.New("bad journal entry")
	// ErrOwner reports a state directory or journal not owned by the effective uid.
	ErrOwner = errors.New("not owned by the delivering user")
	// ErrMode reports a state directory writable by group or others.
	ErrMode = errors.New("writable by group or others")
	// ErrNotRegular reports a journal name that is a symlink, directory or device, or
	// a state directory that is not a directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrLinked reports a journal with more than one hard link.
	ErrLinked = errors.New("has more than one hard link")
	// ErrCorrupt reports a journal whose content does not parse.
	ErrCorrupt = errors.New("corrupt journal")
	// ErrBusy reports that the state directory's lock was not obtained in time.
	ErrBusy = errors.New("state directory lock not obtained")
)

// Fault-injection seams for the tests; production code always syncs.
var (
	syncFile = func(f *os.File) error { return f.Sync() }
	syncDir  = func(f *os.File) error { return f.Sync() }
)

const (
	magic   = "vdeliver-journal 1 "
	maxSize = 4 << 20 // a journal holds a few lines; anything larger is not ours
)

// Journal is the record of one queue id. It is not safe for concurrent use by several
// goroutines; several processes are fine (see the package doc).
type Journal struct {
	root    *os.Root
	dir     *os.File // the state directory itself: flock and fsync
	id      string
	opt     Options
	entries []entry
}

type entry struct{ rcpt, dest string }

// Open loads the journal of queueID from the state directory dir, creating nothing yet,
// and removes expired journals of other queue ids. The caller must already run as the
// delivering user.
//
// It fails with ErrQueueID for an unusable id, with ErrOwner, ErrMode or ErrNotRegular
// when dir or the journal fails the ownership checks, with ErrCorrupt when the journal
// does not parse, with ErrBusy when the directory lock is not obtained in time, and
// with the OS error (wrapped) when dir cannot be opened.
func Open(dir, queueID string, opt Options) (*Journal, error) {
	if !ValidQueueID(queueID) {
		return nil, fmt.Errorf("%w: %q", ErrQueueID, queueID)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = 30 * time.Second
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	d, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("state directory: %w", err)
	}
	j := &Journal{root: root, dir: d, id: queueID, opt: opt}
	if err := j.checkDir(dir); err != nil {
		j.Close()
		return nil, err
	}
	err = j.locked(func() error {
		j.expire()
		entries, created, err := j.read()
		if err != nil {
			return err
		}
		if !created.IsZero() && j.expired(created) {
			// A queue id seen again after maximal_queue_lifetime is another message.
			if err := j.root.Remove(j.id); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove expired journal %s: %w", j.id, err)
			}
			entries = nil
		}
		j.entries = entries
		return nil
	})
	if err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// ValidQueueID reports whether id can name a journal: 1 to 64 ASCII letters, digits and
// '-'.
func ValidQueueID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Done reports whether dest was recorded as delivered for rcpt, by this run or an
// earlier one.
func (j *Journal) Done(rcpt, dest string) bool {
	for _, e := range j.entries {
		if e.rcpt == rcpt && e.dest == dest {
			return true
		}
	}
	return false
}

// Record notes that dest has the message for rcpt, durably (see the package doc) before
// it returns nil.
//
// It fails with ErrEntry for an unusable rcpt or dest and otherwise with the error of
// the step that failed; the journal on disk is then the one before the call.
func (j *Journal) Record(rcpt, dest string) error {
	if !validEntry(rcpt) || !validEntry(dest) {
		return fmt.Errorf("%w: %q %q", ErrEntry, rcpt, dest)
	}
	return j.locked(func() error {
		entries, created, err := j.read()
		if err != nil {
			return err
		}
		if created.IsZero() {
			created = j.opt.Now()
		}
		j.entries = entries
		if j.Done(rcpt, dest) {
			return nil
		}
		next := append(entries[:len(entries):len(entries)], entry{rcpt, dest})
		if err := j.write(next, created); err != nil {
			return err
		}
		j.entries = next
		return nil
	})
}

// Forget drops every entry of the given recipients (their delivery is final: delivered
// or bounced) and removes the file when nothing is left.
func (j *Journal) Forget(rcpts ...string) error {
	drop := map[string]bool{}
	for _, r := range rcpts {
		drop[r] = true
	}
	return j.locked(func() error {
		entries, created, err := j.read()
		if err != nil {
			return err
		}
		var keep []entry
		for _, e := range entries {
			if !drop[e.rcpt] {
				keep = append(keep, e)
			}
		}
		j.entries = keep
		if len(keep) == len(entries) && len(keep) > 0 {
			return nil
		}
		if len(keep) > 0 {
			return j.write(keep, created)
		}
		if err := j.root.Remove(j.id); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("remove journal %s: %w", j.id, err)
		}
		if err := syncDir(j.dir); err != nil {
			return fmt.Errorf("fsync state directory: %w", err)
		}
		return nil
	})
}

// Close releases the state directory.
func (j *Journal) Close() error {
	return errors.Join(j.dir.Close(), j.root.Close())
}

// checkDir: the directory is ours alone. Another user able to write there could plant
// or replace a journal.
func (j *Journal) checkDir(name string) error {
	fi, err := j.dir.Stat()
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s: %w", name, ErrNotRegular)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s: owner uid %d, running as uid %d: %w", name, st.Uid, os.Geteuid(), ErrOwner)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state directory %s: mode %#o: %w", name, fi.Mode().Perm(), ErrMode)
	}
	return nil
}

// locked runs fn holding an exclusive flock(2) of the state directory, trying without
// blocking until LockTimeout so the wait has our own deadline.
func (j *Journal) locked(fn func() error) error {
	fd := int(j.dir.Fd())
	// The wall clock, not Options.Now: a test's fixed clock must not make this wait forever.
	start := time.Now()
	limit := j.opt.LockTimeout
	if !j.opt.Deadline.IsZero() && j.opt.Deadline.Sub(start) < limit {
		limit = max(j.opt.Deadline.Sub(start), 0).Round(time.Millisecond)
	}
	deadline := start.Add(limit)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return fmt.Errorf("lock state directory: %w", err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w within %s", ErrBusy, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	return fn()
}

func (j *Journal) expired(t time.Time) bool {
	return j.opt.MaxAge > 0 && j.opt.Now().Sub(t) > j.opt.MaxAge
}

// expire removes journals (and left-over temporary files) not modified for MaxAge.
// Errors are ignored: expiry is housekeeping, and a journal that stays is harmless.
func (j *Journal) expire() {
	if j.opt.MaxAge <= 0 {
		return
	}
	if _, err := j.dir.Seek(0, io.SeekStart); err != nil {
		return
	}
	ents, err := j.dir.ReadDir(-1)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		base := strings.TrimSuffix(strings.TrimPrefix(name, "."), ".tmp")
		if !e.Type().IsRegular() || !ValidQueueID(base) || (base != name && "."+base+".tmp" != name) {
			continue
		}
		if fi, err := e.Info(); err == nil && j.expired(fi.ModTime()) {
			j.root.Remove(name)
		}
	}
}

// read loads the journal file: no file is an empty journal.
func (j *Journal) read() ([]entry, time.Time, error) {
	lfi, err := j.root.Lstat(j.id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("journal %s: %w", j.id, err)
	}
	if !lfi.Mode().IsRegular() {
		// A symlink or device in our place: someone else's doing.
		return nil, time.Time{}, fmt.Errorf("journal %s: mode %v: %w", j.id, lfi.Mode(), ErrNotRegular)
	}
	f, err := j.root.OpenFile(j.id, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("journal %s: %w", j.id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("journal %s: %w", j.id, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	lst := lfi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular() || st.Dev != lst.Dev || st.Ino != lst.Ino:
		return nil, time.Time{}, fmt.Errorf("journal %s: replaced while opening: %w", j.id, ErrNotRegular)
	case int(st.Uid) != os.Geteuid():
		return nil, time.Time{}, fmt.Errorf("journal %s: owner uid %d, running as uid %d: %w", j.id, st.Uid, os.Geteuid(), ErrOwner)
	case st.Nlink != 1:
		// A hard link lure: the file could be someone else's, linked into our place.
		return nil, time.Time{}, fmt.Errorf("journal %s: %d links: %w", j.id, st.Nlink, ErrLinked)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("journal %s: %w", j.id, err)
	}
	if len(data) > maxSize {
		return nil, time.Time{}, fmt.Errorf("journal %s: larger than %d bytes: %w", j.id, maxSize, ErrCorrupt)
	}
	entries, created, err := parse(data)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("journal %s: %w", j.id, err)
	}
	return entries, created, nil
}

func parse(data []byte) ([]entry, time.Time, error) {
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" || !strings.HasPrefix(lines[0], magic) {
		return nil, time.Time{}, fmt.Errorf("%w: bad header or unterminated last line", ErrCorrupt)
	}
	sec, err := strconv.ParseInt(strings.TrimPrefix(lines[0], magic), 10, 64)
	if err != nil || sec < 0 {
		return nil, time.Time{}, fmt.Errorf("%w: line 1: bad creation time", ErrCorrupt)
	}
	var entries []entry
	for i, l := range lines[1 : len(lines)-1] {
		rcpt, dest, ok := strings.Cut(l, "\t")
		if !ok || !validEntry(rcpt) || !validEntry(dest) {
			return nil, time.Time{}, fmt.Errorf("%w: line %d: bad entry", ErrCorrupt, i+2)
		}
		entries = append(entries, entry{rcpt, dest})
	}
	return entries, time.Unix(sec, 0), nil
}

// write replaces the journal atomically: temporary file, fsync, rename, fsync of the
// directory. On failure the temporary file is removed and the old journal stays.
func (j *Journal) write(entries []entry, created time.Time) (err error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", magic, created.Unix())
	for _, e := range entries {
		fmt.Fprintf(&b, "%s\t%s\n", e.rcpt, e.dest)
	}
	tmp := "." + j.id + ".tmp"
	if err := j.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	// O_EXCL: never write through a name someone planted since the Remove.
	f, err := j.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil && !renamed {
			j.root.Remove(tmp)
		}
	}()
	if _, err := f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := syncFile(f); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("close %s: %w", tmp, cerr)
	}
	if err := j.root.Rename(tmp, j.id); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	renamed = true
	if err := syncDir(j.dir); err != nil {
		return fmt.Errorf("fsync state directory: %w", err)
	}
	return nil
}

func validEntry(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

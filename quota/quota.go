package quota

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
	"vdeliver/internal/rawfile"
)

// FileName is the Maildir++ quota file in the Maildir's top directory.
const FileName = "maildirsize"

// staleAfter is how old a maildirsize saying "over quota" may be before it is
// recalculated anyway (the specification's 15 minutes, Dovecot's MAILDIRSIZE_STALE_SECS).
const staleAfter = 15 * time.Minute

// ErrOverQuota is what an over-quota refusal matches with errors.Is.
var ErrOverQuota = errors.New("mailbox over quota")

// OverQuotaError is the refusal of a message that does not fit: its Limit, the Usage
// before it and its Size, for the log line.
type OverQuotaError struct {
	Limit Limit
	Usage Usage
	Size  int64
}

func (e *OverQuotaError) Error() string {
	return fmt.Sprintf("mailbox over quota: %d bytes in %d messages, limit %s, message %d bytes",
		e.Usage.Bytes, e.Usage.Count, e.Limit, e.Size)
}

// Is makes errors.Is(err, ErrOverQuota) true.
func (e *OverQuotaError) Is(target error) bool { return target == ErrOverQuota }

// ErrBusy is wrapped by the error of a Reserve that waited LockWait for the quota lock of
// the Maildir in vain: another delivery holds it (and may hang); try again later.
var ErrBusy = errors.New("quota lock busy")

// LockWait is how long Reserve waits for another delivery into the same Maildir to finish.
// Postfix waits as long for an mbox lock (deliver_lock_attempts × deliver_lock_delay).
var LockWait = 20 * time.Second

// Reservation is a message admitted by the quota and recorded in maildirsize before it is
// written. Until Done or Cancel it holds the Maildir's quota lock (when the Maildir is
// locked at all: see lockDir), so that no other vdeliver recalculates the file while the
// message is on its way (a recalculation then could not see it, and the file would
// forget it). Exactly one of Done or Cancel must be called; both are no-ops when there
// is no quota.
type Reservation struct {
	Limit Limit // the quota that applied; Unlimited() when there is none
	Usage Usage // the usage before this message
	Size  int64 // the message's size as recorded

	dir  *os.File // the Maildir, holding the lock; nil for a no-op reservation
	path string   // the Maildir's maildirsize, relative to the root, for errors
	// file is the maildirsize the delta line went into, nil when none did. It stays open
	// until Done or Cancel: while it is open its inode number cannot be given to a new
	// file, so comparing it with what the name holds then tells a replaced file for sure.
	file *os.File
}

// Reserve decides whether a message of size bytes may be delivered into the Maildir dir
// (a path beneath root, as maildir.Deliver takes it; for a Maildir++ folder, the quota of
// the Maildir above it applies) and, if so, appends "<size> 1" to its maildirsize before
// the message is written. size is the size of the file that will be written, headers
// added by the delivery included: Dovecot counts file sizes.
//
// The reservation holds the Maildir's lock until Done or Cancel: one process must end a
// reservation before it reserves again for the same Maildir (even through another
// folder of it), or the second Reserve waits LockWait and fails with ErrBusy.
//
// limit is the definition from the tables; nil means the first line of an existing
// maildirsize. Without either there is no quota, and the Reservation is a no-op: with
// limit nil and no maildirsize nothing is locked or opened but the name looked up. A
// Maildir that does not exist yet holds nothing: the message is checked against limit,
// and nothing is written or locked (the next delivery recalculates and counts it).
//
// A message that does not fit gives an *OverQuotaError, errors.Is ErrOverQuota, and
// nothing is written. Any other error leaves maildirsize as it was, or removed so that
// the next reader recalculates it; it is never left half-written.
func Reserve(root *beneath.Root, dir string, limit *Limit, size int64, now time.Time) (*Reservation, error) {
	if size < 0 {
		return nil, fmt.Errorf("quota: negative message size %d", size)
	}
	if limit != nil && limit.Unlimited() {
		return &Reservation{Size: size}, nil
	}
	dir = maildirOf(root, dir)
	path := joinPath(dir, FileName)
	if limit == nil {
		// No quota from the tables: only an existing maildirsize can give one. Without
		// it, nothing is opened or locked, as virtual(8) knows of no quota, and no lock
		// held by anyone can hold back mail for a user without a quota.
		if _, err := root.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return &Reservation{Size: size}, nil
		}
	}
	d, err := openMaildir(root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		if limit == nil {
			return &Reservation{Size: size}, nil
		}
		// No Maildir yet: it holds nothing, so only a message larger than the whole
		// limit is refused, and nothing is written or locked (the next delivery finds
		// no maildirsize and counts the Maildir).
		if !limit.Allows(Usage{}, size) {
			return nil, &OverQuotaError{Limit: *limit, Size: size}
		}
		return &Reservation{Limit: *limit, Size: size}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("quota: open maildir %s: %w", displayDir(dir), err)
	}
	keep := false
	defer func() {
		if !keep {
			d.Close() // closing the descriptor releases the lock
		}
	}()
	if err := lockDir(d, dir); err != nil {
		return nil, err
	}
	st, err := readState(d, path, limit, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	if st.limit.Unlimited() {
		st.close()
		return &Reservation{Size: size}, nil
	}
	if st.recalc || (!st.limit.Allows(st.usage, size) && st.mayBeStale(now)) {
		// The file's counts are missing, broken, for another limit, or say "over
		// quota" from deltas that may have drifted: count the Maildir itself.
		st.close()
		if err := recalculate(d, dir, &st, now); err != nil {
			return nil, err
		}
	}
	defer st.close()
	if !st.limit.Allows(st.usage, size) {
		return nil, &OverQuotaError{Limit: st.limit, Usage: st.usage, Size: size}
	}
	r := &Reservation{Limit: st.limit, Usage: st.usage, Size: size, path: path}
	if st.file != nil {
		if err := appendLine(st.file, size, 1); err != nil {
			// Whether part of the line went in is unknown: make the next reader
			// recalculate rather than add up a broken line.
			unix.Unlinkat(int(d.Fd()), FileName, 0)
			return nil, fmt.Errorf("quota: append to %s: %w", path, err)
		}
		r.file, st.file = st.file, nil
	}
	keep = true
	r.dir = d
	return r, nil
}

// Done ends a reservation whose message was delivered: it releases the lock. If
// maildirsize was replaced while the message was on its way (by Dovecot, which takes no
// lock), whether the new file counts the message is unknown, so it is removed and the
// next reader recalculates it.
func (r *Reservation) Done() error {
	if r == nil || r.dir == nil {
		return nil
	}
	defer r.release()
	if r.file == nil {
		return nil
	}
	if same, err := r.sameFile(); err != nil || same {
		return err
	}
	return r.removeFile()
}

// Cancel ends a reservation whose message was not delivered: it appends "-<size> -1" to
// the maildirsize it recorded the message in, through the descriptor it kept, and
// releases the lock. If that file was replaced meanwhile, the new one never counted the
// message; it is removed instead, for the same reason as in Done. If it was removed, the
// next reader recalculates anyway.
func (r *Reservation) Cancel() error {
	if r == nil || r.dir == nil {
		return nil
	}
	defer r.release()
	if r.file == nil {
		return nil
	}
	same, err := r.sameFile()
	if err != nil {
		return err
	}
	if !same {
		return r.removeFile()
	}
	if err := appendLine(r.file, -r.Size, -1); err != nil {
		unix.Unlinkat(int(r.dir.Fd()), FileName, 0)
		return fmt.Errorf("quota: append to %s: %w", r.path, err)
	}
	return nil
}

func (r *Reservation) release() {
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
	r.dir.Close()
	r.dir = nil
}

// sameFile reports whether maildirsize is still the file the reservation recorded in.
// A name that is gone counts as the same: there is nothing to remove, and the next
// reader recalculates.
func (r *Reservation) sameFile() (bool, error) {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(r.file.Fd()), &held); err != nil {
		return false, fmt.Errorf("quota: stat %s: %w", r.path, err)
	}
	err := unix.Fstatat(int(r.dir.Fd()), FileName, &now, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("quota: stat %s: %w", r.path, err)
	}
	return now.Dev == held.Dev && now.Ino == held.Ino, nil
}

func (r *Reservation) removeFile() error {
	if err := unix.Unlinkat(int(r.dir.Fd()), FileName, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("quota: remove %s: %w", r.path, err)
	}
	return nil
}

// Inspect says what Reserve would see for a message of size bytes into the Maildir dir,
// without writing or locking anything: the limit that applies (limit, or the first line
// of maildirsize), the usage (recalculated in memory when the file is missing, broken, or
// stale and saying the message does not fit, as Reserve would) and whether the message
// would be refused. Without any quota it returns the zero Limit.
func Inspect(root *beneath.Root, dir string, limit *Limit, size int64) (Limit, Usage, bool, error) {
	if limit != nil && limit.Unlimited() {
		return Limit{}, Usage{}, false, nil
	}
	dir = maildirOf(root, dir)
	d, err := openMaildir(root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		if limit == nil {
			return Limit{}, Usage{}, false, nil
		}
		return *limit, Usage{}, !limit.Allows(Usage{}, size), nil
	}
	if err != nil {
		return Limit{}, Usage{}, false, fmt.Errorf("quota: open maildir %s: %w", displayDir(dir), err)
	}
	defer d.Close()
	now := time.Now()
	// Opened with Reserve's flags, so that the same permissions decide (a maildirsize
	// its owner may not write defers a delivery; an append-only one does not); nothing
	// is written through it.
	st, err := readState(d, joinPath(dir, FileName), limit, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return Limit{}, Usage{}, false, err
	}
	st.close()
	if st.limit.Unlimited() {
		return Limit{}, Usage{}, false, nil
	}
	// Reserve's rule, with the same size.
	if st.recalc || (!st.limit.Allows(st.usage, size) && st.mayBeStale(now)) {
		u, _, err := count(d, dir)
		if err != nil {
			return Limit{}, Usage{}, false, err
		}
		st.usage = u
		if err := canRecalculate(root, dir); err != nil {
			return Limit{}, Usage{}, false, err
		}
	}
	return st.limit, st.usage, !st.limit.Allows(st.usage, size), nil
}

// canRecalculate tells, without writing, whether this process could write a recalculated
// maildirsize as Reserve does (recalculate): create a file in tmp/, when there is one, and
// rename it into the Maildir. The errors name the step as recalculate's would.
func canRecalculate(root *beneath.Root, dir string) error {
	tmp := joinPath(dir, "tmp")
	err := root.WritableDir(tmp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // recalculate writes nothing without tmp/
	case err != nil:
		return fmt.Errorf("quota: create in %s: %w", tmp, err)
	}
	if err := root.WritableDir(dir); err != nil {
		return fmt.Errorf("quota: write %s: %w", joinPath(dir, FileName), err)
	}
	return nil
}

// state is what readState found.
type state struct {
	limit  Limit // the limit that applies
	usage  Usage // the file's totals, when !recalc
	recalc bool  // the file must be recalculated
	lines  int   // delta lines after the first line
	mtime  time.Time
	file   *os.File // maildirsize, open O_APPEND, when it exists and is a regular file
}

func (s *state) close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// mayBeStale is the specification's rule for numbers that say "over quota": they are
// trusted only when they are one fresh line of totals, written by a recalculation less
// than 15 minutes ago.
func (s *state) mayBeStale(now time.Time) bool {
	return s.lines > 1 || now.Sub(s.mtime) >= staleAfter
}

// readState reads maildirsize in the Maildir d, opened with flag (O_RDWR|O_APPEND to
// append to it later, O_RDONLY to only look), and decides the limit and whether the file
// must be recalculated. Without limit and without a usable first line there is no quota
// (limit Unlimited).
func readState(d *os.File, path string, limit *Limit, flag int) (state, error) {
	var s state
	f, err := openFileAt(d, flag)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ELOOP):
		// Missing, or a symbolic link that a recalculation replaces (rename
		// replaces the link, never its target).
		if limit != nil {
			s.limit = *limit
		}
		s.recalc = true
		return s, nil
	case err != nil:
		return s, fmt.Errorf("quota: open %s: %w", path, err)
	}
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		f.Close()
		return s, fmt.Errorf("quota: stat %s: %w", path, err)
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		if limit != nil {
			s.limit = *limit
		}
		s.recalc = true
		return s, nil
	}
	s.file = f
	s.mtime = time.Unix(fst.Mtim.Unix())
	data, err := rawfile.ReadAll(f, maxFileSize, maxFileSize-1)
	tooLarge := errors.Is(err, rawfile.ErrTooLarge)
	if err != nil && !tooLarge {
		s.close()
		return s, fmt.Errorf("quota: read %s: %w", path, err)
	}
	var c fileContents
	ok := false
	if !tooLarge {
		c, ok = parseFile(data)
	}
	s.usage, s.lines = c.usage, c.lines
	switch {
	case limit != nil:
		s.limit = *limit
		s.recalc = !ok || !c.limitOK || c.limit != *limit
	case tooLarge:
		// Only the first line is needed: read it alone, bounded too.
		l, err := readHeader(f)
		if err != nil {
			s.close()
			return s, fmt.Errorf("quota: read %s: %w", path, err)
		}
		s.limit = l
	default:
		s.limit = c.limit
		s.recalc = !ok || !c.limitOK
	}
	if tooLarge || (len(data) > 0 && data[len(data)-1] != '\n') {
		// A last line without its newline is an append cut short: read without it, but
		// a delta appended after it would merge into one wrong line, so the file is
		// replaced by a count.
		s.recalc = true
	}
	return s, nil
}

// readHeader reads the first line of an oversized maildirsize, at most 512 bytes of it.
func readHeader(f *os.File) (Limit, error) {
	buf := make([]byte, 512)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return Limit{}, err
	}
	line, _, found := strings.Cut(string(buf[:n]), "\n")
	if !found {
		return Limit{}, nil
	}
	l, _ := parseHeader(line)
	return l, nil
}

// appendLine appends "<bytes> <count>\n" to f, opened O_APPEND, in one write(2): the
// kernel places the whole line at the end of the file at once, so that concurrent
// appenders (other vdelivers, Dovecot) never interleave parts of lines.
func appendLine(f *os.File, bytes, count int64) error {
	line := appendDelta(nil, bytes, count)
	for {
		n, err := unix.Write(int(f.Fd()), line)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n != len(line) {
			return fmt.Errorf("short write: %d of %d bytes", n, len(line))
		}
		return nil
	}
}

// Path is the maildirsize that Reserve and Inspect use for a delivery into dir, relative
// to root: dir's own, or for a Maildir++ folder the Maildir's above it. For messages.
func Path(root *beneath.Root, dir string) string {
	return joinPath(maildirOf(root, dir), FileName)
}

// folderMarker is the empty file that marks a Maildir++ folder, as Courier and Dovecot
// create it.
const folderMarker = "maildirfolder"

// maildirOf is the Maildir whose quota covers a delivery into dir: dir itself, or, when
// dir is a Maildir++ folder, the Maildir above it (the specification: "if we find a
// maildirfolder within the directory, we're delivering to a folder, so back up to the
// parent directory"). A folder is a directory named ".something" that holds
// folderMarker, or, with or without it, whose parent is a Maildir (has cur/), as a
// recalculation counts every such directory as a folder. The parent decides because a
// folder's marker comes last: Courier, Dovecot and maildir create cur/, new/ and tmp/
// first, and a delivery in between must not take the folder for a Maildir of its own
// (it would lock the wrong directory and leave a maildirsize in the folder).
func maildirOf(root *beneath.Root, dir string) string {
	dir = strings.TrimRight(dir, "/")
	parent, base := "", dir
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		parent, base = dir[:i], dir[i+1:]
	}
	if !strings.HasPrefix(base, ".") || base == "." || base == ".." {
		return dir
	}
	if fi, err := root.Stat(joinPath(parent, "cur")); err == nil && fi.IsDir() {
		return parent
	}
	if _, err := root.Lstat(joinPath(dir, folderMarker)); err == nil {
		return parent
	}
	return dir
}

// openMaildir opens the Maildir's top directory beneath root.
func openMaildir(root *beneath.Root, dir string) (*os.File, error) {
	name := dir
	if name == "" {
		name = "."
	}
	return root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// openFileAt opens maildirsize in the Maildir d, never through a symbolic link, and
// without blocking on a FIFO planted at its name.
func openFileAt(d *os.File, flag int) (*os.File, error) {
	for {
		fd, err := unix.Openat(int(d.Fd()), FileName, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "openat", Path: FileName, Err: err}
		}
		// Back to blocking reads: a regular file never blocks anyway, and the runtime's
		// poller must not take the descriptor.
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), FileName), nil
	}
}

// lockDir takes the quota lock of a Maildir: flock(2) on its top directory. Only
// vdeliver takes it (Dovecot and Courier take no lock for maildirsize), so that
// concurrent vdeliver deliveries check and record one at a time and never recalculate
// while another's message is on its way. A file system without flock on directories
// (some NFS setups) gets no lock, as Dovecot and Courier never have one.
//
// flock needs no more than a descriptor open for reading, so a directory that another
// user can open could be locked by that user to make every delivery wait LockWait and
// defer, for as long as they like. Such a directory is therefore never locked: only one
// owned by the delivering user that neither group nor others can read or search (a
// Maildir that virtual(8), Dovecot or vdeliver creates, mode 0700), which only its owner
// and root can open.
func lockDir(d *os.File, dir string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return fmt.Errorf("quota: stat maildir %s: %w", displayDir(dir), err)
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o055 != 0 {
		return nil
	}
	deadline := time.Now().Add(LockWait)
	delay := time.Millisecond
	for {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
		case unix.ENOLCK, unix.EOPNOTSUPP, unix.EINVAL:
			return nil
		default:
			return fmt.Errorf("quota: lock maildir %s: %w", displayDir(dir), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("quota: lock maildir %s: %w", displayDir(dir), ErrBusy)
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func joinPath(dir, elem string) string {
	if dir == "" {
		return elem
	}
	return dir + "/" + elem
}

func displayDir(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

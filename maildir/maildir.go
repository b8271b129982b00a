package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vdeliver/internal/beneath"
)

// Options for one delivery.
type Options struct {
	// Hostname is the last field of both names; "" means os.Hostname(). It
	// is used verbatim except that '/' becomes \057 and ':' becomes \072, as
	// the maildir specification requires.
	Hostname string
	// Limit is the largest message, in bytes, that may be written; 0 (or
	// less) means no limit.
	Limit int64
	// Now is read once per delivery; its seconds and microseconds go into
	// both names. nil means time.Now.
	Now func() time.Time
	// Seq numbers the process's deliveries. The pid and the second do not tell
	// apart two deliveries of one process into one maildir in the same second,
	// which a process that delivers message after message, or several in
	// parallel, makes (O_EXCL would refuse the second): from 2 on, the tmp name
	// carries "Q<Seq>". 0 and 1 leave it as Postfix makes it.
	Seq uint64
}

// Error says which step of a delivery failed, like Postfix's reasons.
//
// Op is "create" (the tmp file or a directory; Path is the tmp file),
// "write" (write, fsync or close of the tmp file, or the message being over
// the limit; Path is the tmp file) or "link" (into new/, or the fsync of
// new/; Path is the file in new/). Paths are relative to the root. Err is
// the underlying error, which keeps the errno for errors.Is.
type Error struct {
	Op   string
	Path string
	Err  error
}

// Error returns "create maildir file <Path>: <strerror>" for create and
// link, and "error writing message: <strerror>" for write, as virtual(8)
// words them.
func (e *Error) Error() string {
	if e.Op == "write" {
		return "error writing message: " + strerror(e.Err)
	}
	return "create maildir file " + e.Path + ": " + strerror(e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// strerror is the innermost message, without the path that *fs.PathError
// and *os.LinkError repeat.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// ErrTooLarge is wrapped (with syscall.EFBIG) by the error Deliver returns
// for a message larger than Options.Limit.
var ErrTooLarge = errors.New("message larger than mailbox limit")

// Seams for injecting faults that cannot be produced on a real file system
// on demand (EIO on fsync, a link that reports an error after succeeding).
// Tests replace them and restore them with t.Cleanup.
var (
	writeFile = func(f *os.File, b []byte) (int, error) { return f.Write(b) }
	syncFile  = (*os.File).Sync
	closeFile = (*os.File).Close
	syncDir   = (*os.File).Sync
	linkFile  = (*beneath.Root).Link
	// renameNoReplace is renameat2(RENAME_NOREPLACE) between two open
	// directories; see rename_linux.go.
	renameNoReplace = renameat2NoReplace
)

// Deliver writes the concatenation of parts as one new message in the
// maildir dir and returns the new file's path relative to root, e.g.
// "example.com/alice/new/1700000000.V803I1a2bM123456.host".
//
// dir is relative to root, with or without a trailing "/"; "" means root
// itself. Missing directories on the way are created with mode 0700. The
// message file has mode 0600 and is owned by the caller's effective ids: the
// caller must already run as the recipient.
//
// Every failure is an *Error naming the step. A message over opt.Limit
// gives Op "write" wrapping both ErrTooLarge and syscall.EFBIG, and nothing
// is created. After any failure nothing created by this call remains in
// tmp/ or new/.
func Deliver(root *beneath.Root, dir string, parts [][]byte, opt Options) (_ string, err error) {
	killpoint("maildir:start")
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	t := now()
	sec, usec := t.Unix(), int64(t.Nanosecond()/1000)

	// Lexical only: the root resolves the rest and refuses escapes.
	prefix := strings.TrimRight(dir, "/")
	sub := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "/" + name
	}
	host := opt.Hostname
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return "", &Error{Op: "create", Path: sub("tmp"), Err: fmt.Errorf("host name: %w", err)}
		}
	}
	host = escapeHost(host)
	tmpPath := sub("tmp/" + tmpName(sec, os.Getpid(), opt.Seq, host))

	if opt.Limit > 0 {
		var size int64
		for _, p := range parts {
			size += int64(len(p))
		}
		if size > opt.Limit {
			return "", &Error{Op: "write", Path: tmpPath, Err: fmt.Errorf("%w: %w", ErrTooLarge, syscall.EFBIG)}
		}
	}

	// The cleanup keys on err, so every failure below must set it.
	var (
		newPath   string
		f         *os.File
		tmpExists bool // the tmp name is ours to remove
		newExists bool // the new/ name is ours to remove
	)
	defer func() {
		if f != nil {
			f.Close()
		}
		if tmpExists {
			// XXX: an error here is lost; after success the message is in
			// new/ and a stray tmp link only wastes a name (SPEC §5 step 7).
			root.Remove(tmpPath)
		}
		if err != nil && newExists {
			root.Remove(newPath)
		}
	}()

	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err = root.OpenFile(tmpPath, flags, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = makeDirs(root, prefix, "tmp", "new", "cur"); err != nil {
			return "", &Error{Op: "create", Path: tmpPath, Err: err}
		}
		f, err = root.OpenFile(tmpPath, flags, 0o600)
	}
	if err != nil {
		// tmpExists stays false: a file already at that name is not ours.
		return "", &Error{Op: "create", Path: tmpPath, Err: err}
	}
	tmpExists = true
	killpoint("maildir:tmp-created")

	st, err := f.Stat()
	if err != nil {
		return "", &Error{Op: "create", Path: tmpPath, Err: err}
	}
	if st.Mode().Perm() != 0o600 {
		// A umask that removed owner bits would leave the file unreadable.
		if err = f.Chmod(0o600); err != nil {
			return "", &Error{Op: "create", Path: tmpPath, Err: err}
		}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", &Error{Op: "create", Path: tmpPath, Err: errors.New("no device and inode numbers")}
	}
	newPath = sub("new/" + newName(sec, uint64(sys.Dev), uint64(sys.Ino), usec, host))

	for _, p := range parts {
		if _, err = writeFile(f, p); err != nil {
			return "", &Error{Op: "write", Path: tmpPath, Err: err}
		}
	}
	killpoint("maildir:written")
	if err = syncFile(f); err != nil {
		return "", &Error{Op: "write", Path: tmpPath, Err: err}
	}
	killpoint("maildir:synced")
	cf := f
	f = nil
	if err = closeFile(cf); err != nil {
		return "", &Error{Op: "write", Path: tmpPath, Err: err}
	}
	killpoint("maildir:closed")

	moved, err := link(root, prefix, tmpPath, newPath, st)
	if err != nil {
		return "", &Error{Op: "link", Path: newPath, Err: err}
	}
	newExists, tmpExists = true, false
	killpoint("maildir:linked")
	if !moved {
		// Not fsynced: should a crash bring the name back, it is a second
		// link to a delivered message, and readers delete stale tmp/ files
		// without touching new/. The error is ignored as in the cleanup.
		root.Remove(tmpPath)
	}
	killpoint("maildir:tmp-removed")

	if err = syncPath(root, sub("new")); err != nil {
		return "", &Error{Op: "link", Path: newPath, Err: err}
	}
	killpoint("maildir:done")
	return newPath, nil
}

// link gives the file open as st the name newPath without ever replacing an
// existing name. moved reports that the tmp name is gone (renamed).
func link(root *beneath.Root, prefix, tmpPath, newPath string, st fs.FileInfo) (moved bool, err error) {
	err = linkFile(root, tmpPath, newPath)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		// new/ or cur/ went missing after tmp/ was there (Postfix does the
		// same make_dirs here). A failure shows in the second link.
		makeDirs(root, prefix, "new", "cur")
		err = linkFile(root, tmpPath, newPath)
	}
	if err != nil && !sameFile(root, newPath, st) {
		if !linkUnsupported(err) {
			return false, err
		}
		if rerr := renameInRoot(root, tmpPath, newPath); rerr != nil {
			if errors.Is(rerr, syscall.EINVAL) || errors.Is(rerr, syscall.ENOSYS) {
				// No RENAME_NOREPLACE either: the file system offers no
				// way to move without possibly replacing a message.
				return false, err
			}
			return false, rerr
		}
		moved = true
		killpoint("maildir:renamed")
	}
	// Names, not descriptors, were linked: if the tmp name was replaced
	// since we created it (a tmp/ cleaner racing a delivery with the same
	// tmp name), new/ now holds someone else's file and success would lose
	// our message.
	if !sameFile(root, newPath, st) {
		root.Remove(newPath)
		return false, errTmpReplaced
	}
	return moved, nil
}

var errTmpReplaced = errors.New("tmp file was replaced before it was linked")

// sameFile is Postfix's sane_link check: link(2) over NFS can report
// failure for a request that was carried out.
func sameFile(root *beneath.Root, name string, st fs.FileInfo) bool {
	lst, err := root.Lstat(name)
	return err == nil && os.SameFile(st, lst)
}

// linkUnsupported reports a link(2) error that means "this file system has
// no hard links" rather than a problem with these names.
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EXDEV) ||
		errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

// renameInRoot moves oldPath to newPath with RENAME_NOREPLACE. Both
// directories are opened through root and the names passed to renameat2
// are single elements, so the kernel resolves nothing outside the root.
func renameInRoot(root *beneath.Root, oldPath, newPath string) error {
	oldDir, oldBase := splitPath(oldPath)
	newDir, newBase := splitPath(newPath)
	od, err := root.Open(oldDir)
	if err != nil {
		return err
	}
	defer od.Close()
	nd, err := root.Open(newDir)
	if err != nil {
		return err
	}
	defer nd.Close()
	if err := renameNoReplace(od, oldBase, nd, newBase); err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldPath, New: newPath, Err: err}
	}
	return nil
}

func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	return p[:i], p[i+1:]
}

// makeDirs creates prefix (and its missing parents) and the given
// subdirectories of it, each with mode 0700, then fsyncs every directory it
// created and the parent of each, so the new entries survive a crash. An
// existing directory is left as it is.
func makeDirs(root *beneath.Root, prefix string, subdirs ...string) error {
	var paths []string
	cur := ""
	for _, elem := range strings.Split(prefix, "/") {
		if elem == "" || elem == "." {
			continue
		}
		cur = joinPath(cur, elem)
		paths = append(paths, cur)
	}
	for _, s := range subdirs {
		paths = append(paths, joinPath(cur, s))
	}

	var created []string
	for _, p := range paths {
		err := root.Mkdir(p, 0o700)
		if errors.Is(err, fs.ErrExist) {
			// Anything that is not a directory fails the next step with
			// ENOTDIR; a symlink out of the root fails it as an escape.
			continue
		}
		if err != nil {
			return err
		}
		created = append(created, p)
		killpoint("maildir:mkdir")
		if err := fixMode(root, p); err != nil {
			return err
		}
	}

	synced := make(map[string]bool)
	for _, p := range created {
		parent, _ := splitPath(p)
		for _, d := range []string{p, parent} {
			if synced[d] {
				continue
			}
			synced[d] = true
			if err := syncPath(root, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(dir, elem string) string {
	if dir == "" {
		return elem
	}
	return dir + "/" + elem
}

// fixMode makes a directory we just created exactly 0700: the umask may
// have removed owner bits, and a set-group-id parent adds its own bit.
func fixMode(root *beneath.Root, p string) error {
	d, err := root.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return err
	}
	if st.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0o700 {
		return d.Chmod(0o700)
	}
	return nil
}

func syncPath(root *beneath.Root, p string) error {
	d, err := root.Open(p)
	if err != nil {
		return err
	}
	err = syncDir(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// escapeHost applies the maildir specification's rule for the host field,
// so that a name is one path element without an info part.
func escapeHost(h string) string {
	if !strings.ContainsAny(h, "/:") {
		return h
	}
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '/':
			b.WriteString(`\057`)
		case ':':
			b.WriteString(`\072`)
		default:
			b.WriteByte(h[i])
		}
	}
	return b.String()
}

// tmpName is "<sec>.P<pid>.<host>", or "<sec>.P<pid>Q<seq>.<host>" when seq > 1 (the
// maildir convention's Q<deliveries>); host is already escaped.
func tmpName(sec int64, pid int, seq uint64, host string) string {
	b := make([]byte, 0, 48+len(host))
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, ".P"...)
	b = strconv.AppendInt(b, int64(pid), 10)
	if seq > 1 {
		b = append(b, 'Q')
		b = strconv.AppendUint(b, seq, 10)
	}
	b = append(b, '.')
	b = append(b, host...)
	return string(b)
}

// newName is "<sec>.V<dev>I<ino>M<usec>.<host>", dev and ino in lower-case
// hex without padding; host is already escaped.
func newName(sec int64, dev, ino uint64, usec int64, host string) string {
	b := make([]byte, 0, 64+len(host))
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, ".V"...)
	b = strconv.AppendUint(b, dev, 16)
	b = append(b, 'I')
	b = strconv.AppendUint(b, ino, 16)
	b = append(b, 'M')
	b = strconv.AppendInt(b, usec, 10)
	b = append(b, '.')
	b = append(b, host...)
	return string(b)
}

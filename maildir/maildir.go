package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	// SizeInName appends ",S=<size>,W=<size with CRLF line ends>" to the name in
	// new/, as Dovecot and Courier do, so that readers and quota code need not
	// stat the file. A ',' in the host is then written as \054, so that the
	// fields are the only commas of the name. false gives virtual(8)'s names.
	SizeInName bool
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
	// linkFile is linkat(2) between two open directories, never following a symlink.
	linkFile = func(oldDir *os.File, oldName string, newDir *os.File, newName string) error {
		return unix.Linkat(int(oldDir.Fd()), oldName, int(newDir.Fd()), newName, 0)
	}
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
// tmp/ or new/, even if the mailbox owner renamed them during the call (see
// the package documentation, "Guarantees").
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
	var sizes string
	if opt.SizeInName {
		host = strings.ReplaceAll(host, ",", `\054`)
		sizes = sizeFields(parts)
	}
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

	// Every step after the tmp file is created works on the directories opened here,
	// beneath the root: a mailbox owner who renames tmp/ or new/, or puts a symlink in
	// their place, cannot make a step act elsewhere, and the cleanup finds what this call
	// made wherever the directory has been moved since.
	tmpDir, err := openDir(root, sub("tmp"))
	if errors.Is(err, fs.ErrNotExist) {
		if err = makeDirs(root, prefix, "tmp", "new", "cur"); err != nil {
			return "", &Error{Op: "create", Path: tmpPath, Err: err}
		}
		tmpDir, err = openDir(root, sub("tmp"))
	}
	if err != nil {
		return "", &Error{Op: "create", Path: tmpPath, Err: err}
	}
	defer tmpDir.Close() // after the cleanup below, which uses it
	tmpBase := tmpPath[strings.LastIndexByte(tmpPath, '/')+1:]

	// The cleanup keys on err, so every failure below must set it.
	var (
		newPath, newBase string
		newDir           *os.File
		f                *os.File
		st               fs.FileInfo
		tmpExists        bool // the tmp name is ours to remove
		newExists        bool // the new/ name is ours to remove
	)
	defer func() {
		if f != nil {
			f.Close()
		}
		if tmpExists {
			// XXX: an error here is lost; after success the message is in
			// new/ and a stray tmp link only wastes a name (docs/behaviour.md §5 step 7).
			removeOwn(tmpDir, tmpBase, st)
		}
		if err != nil && newExists {
			removeOwn(newDir, newBase, st)
		}
		if newDir != nil {
			newDir.Close()
		}
	}()

	f, err = createAt(tmpDir, tmpBase, tmpPath)
	if err != nil {
		// tmpExists stays false: a file already at that name is not ours.
		return "", &Error{Op: "create", Path: tmpPath, Err: err}
	}
	tmpExists = true
	killpoint("maildir:tmp-created")

	st, err = f.Stat()
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
	newBase = newName(sec, uint64(sys.Dev), uint64(sys.Ino), usec, host) + sizes
	newPath = sub("new/" + newBase)

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

	newDir, err = openDir(root, sub("new"))
	if errors.Is(err, fs.ErrNotExist) {
		// new/ or cur/ went missing after tmp/ was there (Postfix does the
		// same make_dirs here).
		if err = makeDirs(root, prefix, "new", "cur"); err == nil {
			newDir, err = openDir(root, sub("new"))
		}
	}
	if err != nil {
		newDir = nil
		return "", &Error{Op: "link", Path: newPath, Err: err}
	}
	moved, err := link(entry{tmpDir, tmpBase, tmpPath}, entry{newDir, newBase, newPath}, st)
	if err != nil {
		return "", &Error{Op: "link", Path: newPath, Err: err}
	}
	newExists, tmpExists = true, false
	killpoint("maildir:linked")
	if !moved {
		// Not fsynced: should a crash bring the name back, it is a second
		// link to a delivered message, and readers delete stale tmp/ files
		// without touching new/. The error is ignored as in the cleanup.
		removeOwn(tmpDir, tmpBase, st)
	}
	killpoint("maildir:tmp-removed")

	if err = syncDir(newDir); err != nil {
		return "", &Error{Op: "link", Path: newPath, Err: err}
	}
	killpoint("maildir:done")
	return newPath, nil
}

// openDir opens the directory name beneath root, for the *at calls of a delivery.
func openDir(root *beneath.Root, name string) (*os.File, error) {
	return root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// createAt creates name in dir with O_EXCL, mode 0600: never an existing file, never
// through a symbolic link. path is the name for errors.
func createAt(dir *os.File, name, path string) (*os.File, error) {
	for {
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "openat", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// removeOwn removes name from dir only while it is the file st: a file another process
// has put at that name since (a tmp name is reused when a pid is, and the mailbox owner
// can do anything in its maildir) is not ours to remove. Without st (the tmp file could
// not even be described) the name is removed: it was created a moment ago by this call.
func removeOwn(dir *os.File, name string, st fs.FileInfo) {
	if dir == nil {
		return
	}
	if st != nil && !sameFile(dir, name, st) {
		return
	}
	unix.Unlinkat(int(dir.Fd()), name, 0)
}

// entry is a name in an open directory, with its path for errors.
type entry struct {
	dir  *os.File
	base string // the name in dir
	path string
}

// link gives the file st, at tmp, the name dst without ever replacing an existing name.
// moved reports that the tmp name is gone (renamed).
func link(tmp, dst entry, st fs.FileInfo) (moved bool, err error) {
	err = linkFile(tmp.dir, tmp.base, dst.dir, dst.base)
	if err != nil {
		err = &os.LinkError{Op: "linkat", Old: tmp.path, New: dst.path, Err: err}
	}
	if err != nil && !sameFile(dst.dir, dst.base, st) {
		if !linkUnsupported(err) {
			return false, err
		}
		if rerr := renameNoReplace(tmp.dir, tmp.base, dst.dir, dst.base); rerr != nil {
			if errors.Is(rerr, syscall.EINVAL) || errors.Is(rerr, syscall.ENOSYS) {
				// No RENAME_NOREPLACE either: the file system offers no
				// way to move without possibly replacing a message.
				return false, err
			}
			return false, &os.LinkError{Op: "renameat2", Old: tmp.path, New: dst.path, Err: rerr}
		}
		moved = true
		killpoint("maildir:renamed")
	}
	// Names in the two directories, not the descriptor, were linked: if the tmp name
	// was replaced since we created it (a tmp/ cleaner, or the owner, racing a delivery
	// with the same tmp name), new/ now holds someone else's file under a name we made,
	// and success would lose our message.
	if !sameFile(dst.dir, dst.base, st) {
		unix.Unlinkat(int(dst.dir.Fd()), dst.base, 0)
		return false, ErrTmpReplaced
	}
	return moved, nil
}

// ErrTmpReplaced is wrapped by the error of a delivery whose tmp file was replaced
// (another file at its name) before it was linked into new/: nothing was delivered.
var ErrTmpReplaced = errors.New("tmp file was replaced before it was linked")

// sameFile reports whether name in dir is the file st. It is Postfix's sane_link
// check (link(2) over NFS can report failure for a request that was carried out), and
// tells our own file from one put at its name.
func sameFile(dir *os.File, name string, st fs.FileInfo) bool {
	want, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	var got unix.Stat_t
	if unix.Fstatat(int(dir.Fd()), name, &got, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return uint64(got.Dev) == uint64(want.Dev) && got.Ino == want.Ino
}

// linkUnsupported reports a link(2) error that means "this file system has
// no hard links" rather than a problem with these names.
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EXDEV) ||
		errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
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

// sizeFields is ",S=<size>,W=<vsize>" for the message parts: size is the bytes
// written, vsize the size with every line end counted as CRLF (a LF not already
// preceded by a CR counts two), the size an IMAP client is told. bytes.Count, not a
// loop over every byte: it is several times faster on a large message.
func sizeFields(parts [][]byte) string {
	var size, bare int64
	lf, crlf := []byte("\n"), []byte("\r\n")
	prevCR := false
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		size += int64(len(p))
		bare += int64(bytes.Count(p, lf) - bytes.Count(p, crlf))
		if prevCR && p[0] == '\n' {
			bare-- // a CRLF split between two parts
		}
		prevCR = p[len(p)-1] == '\r'
	}
	b := make([]byte, 0, 48)
	b = append(b, ",S="...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ",W="...)
	b = strconv.AppendInt(b, size+bare, 10)
	return string(b)
}

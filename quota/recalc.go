package quota

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// recalcAttempts is how often a recalculation is repeated when the Maildir changed while
// it was counted, before maildirsize is removed instead (the specification allows both).
const recalcAttempts = 3

// counted is nil except in the package's tests, which set it to run between a
// recalculation's count and its rename, with the attempt's number (0, 1, ...): the
// window in which a delivery or an expunge by a program that takes no lock goes unseen
// by the count and must be caught by the directory times. A real delivery cannot be
// placed there on demand.
var counted func(attempt int)

// stamp is the modification time of one cur/ or new/ directory when it was counted.
type stamp struct {
	folder string // "" for the Maildir itself, else the folder's directory name
	sub    string // "cur" or "new"
	mtime  unix.Timespec
}

// recalculate counts the Maildir d and replaces its maildirsize with the limit and the
// totals, written to a new file in tmp/ and renamed over the old one, so that no reader
// (Dovecot, Courier, another vdeliver) ever sees half a file. The new file is left open in
// st.file for the delta of the message being admitted. When a cur/ or new/ directory
// changed while it was counted (a delivery or an expunge by a program that takes no
// lock), the count is repeated; after recalcAttempts, maildirsize is removed, so the next
// reader counts again, and the last count is used. Without tmp/ nothing is written.
func recalculate(d *os.File, dir string, st *state, now time.Time) error {
	path := joinPath(dir, FileName)
	var dst unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &dst); err != nil {
		return fmt.Errorf("quota: stat maildir %s: %w", displayDir(dir), err)
	}
	// Dovecot's mode for files it creates in a mailbox: the directory's read and write
	// bits, and always the owner's (0600 in a 0700 Maildir).
	mode := dst.Mode&0o666 | 0o600
	for attempt := range recalcAttempts {
		u, stamps, err := count(d, dir)
		if err != nil {
			return err
		}
		if counted != nil {
			counted(attempt)
		}
		st.usage, st.lines, st.mtime = u, 1, now
		tmp, err := openDirAt(d, "tmp")
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("quota: open %s: %w", joinPath(dir, "tmp"), err)
		}
		f, name, err := createTemp(tmp, now, mode)
		if err != nil {
			tmp.Close()
			return fmt.Errorf("quota: create in %s: %w", joinPath(dir, "tmp"), err)
		}
		err = writeAll(f, formatFile(st.limit, u))
		if err == nil {
			err = unix.Renameat(int(tmp.Fd()), name, int(d.Fd()), FileName)
		}
		if err != nil {
			unix.Unlinkat(int(tmp.Fd()), name, 0)
			tmp.Close()
			f.Close()
			return fmt.Errorf("quota: write %s: %w", path, err)
		}
		tmp.Close()
		changed, err := changedSince(d, stamps)
		if err != nil {
			f.Close()
			return err
		}
		if !changed {
			st.file = f
			return nil
		}
		f.Close()
	}
	if err := unix.Unlinkat(int(d.Fd()), FileName, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("quota: remove %s: %w", path, err)
	}
	return nil
}

// createTemp creates a new file in tmp/ with exactly mode whatever the umask, open for
// appending.
func createTemp(tmp *os.File, now time.Time, mode uint32) (*os.File, string, error) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%d.M%dP%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), FileName)
		if i > 0 {
			name = fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), i, FileName)
		}
		fd, err := unix.Openat(int(tmp.Fd()), name,
			unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err == unix.EINTR || (err == unix.EEXIST && i < 100) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			unix.Close(fd)
			unix.Unlinkat(int(tmp.Fd()), name, 0)
			return nil, "", err
		}
		return os.NewFile(uintptr(fd), name), name, nil
	}
}

func writeAll(f *os.File, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(int(f.Fd()), b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// count adds up the messages of the Maildir d: cur/ and new/ of the Maildir and of every
// Maildir++ folder (a directory whose name starts with '.'), Trash included, as Dovecot
// counts. A name carrying ",S=<size>" (ended by ':', ',' or the end of the name) gives
// the size; any other entry is measured by fstatat. A name starting with ".." is no
// message, as for Dovecot. An entry that vanishes meanwhile is not counted. Symbolic
// links are never followed: a folder that is a link is skipped, a message that is a
// link counts with the link's own size (Dovecot follows it and counts its target's:
// following a link could read outside the base).
func count(d *os.File, dir string) (Usage, []stamp, error) {
	var u Usage
	var stamps []stamp
	folders := []string{""}
	list, err := openDirAt(d, ".")
	if err != nil {
		return u, nil, fmt.Errorf("quota: read maildir %s: %w", displayDir(dir), err)
	}
	err = eachName(list, func(n string) error {
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." {
			return nil
		}
		var fst unix.Stat_t
		if unix.Fstatat(int(d.Fd()), n, &fst, unix.AT_SYMLINK_NOFOLLOW) == nil && fst.Mode&unix.S_IFMT == unix.S_IFDIR {
			folders = append(folders, n)
		}
		return nil
	})
	list.Close()
	if err != nil {
		return u, nil, fmt.Errorf("quota: read maildir %s: %w", displayDir(dir), err)
	}
	for _, folder := range folders {
		for _, sub := range []string{"new", "cur"} {
			s, err := sumDir(d, folder, sub, &u)
			if err != nil {
				return u, nil, fmt.Errorf("quota: count %s: %w", joinPath(joinPath(dir, folder), sub), err)
			}
			if s != nil {
				stamps = append(stamps, *s)
			}
		}
	}
	return u, stamps, nil
}

// sumDir adds the messages of folder/sub to u and returns the directory's stamp, or nil
// when it does not exist (or is no directory).
func sumDir(d *os.File, folder, sub string, u *Usage) (*stamp, error) {
	f, err := openSub(d, folder, sub)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return nil, err
	}
	err = eachName(f, func(n string) error {
		if strings.HasPrefix(n, "..") {
			return nil // no message: Dovecot skips these names too
		}
		size, ok := sizeFromName(n)
		if !ok {
			var mst unix.Stat_t
			err := unix.Fstatat(int(f.Fd()), n, &mst, unix.AT_SYMLINK_NOFOLLOW)
			if err == unix.ENOENT {
				return nil
			}
			if err != nil {
				return fmt.Errorf("stat %s: %w", n, err)
			}
			size = mst.Size
		}
		u.Bytes = satAdd(u.Bytes, size)
		u.Count++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &stamp{folder: folder, sub: sub, mtime: fst.Mtim}, nil
}

// sizeFromName reads the size of ",S=<digits>" as Dovecot does: the first ",S=" of the
// name, its digits ended by ':', ',' or the end of the name.
func sizeFromName(name string) (int64, bool) {
	i := strings.Index(name, ",S=")
	if i < 0 {
		return 0, false
	}
	rest := name[i+3:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j < len(rest) && rest[j] != ':' && rest[j] != ',' {
		return 0, false
	}
	if j == 0 {
		return 0, true // ",S=" alone: Dovecot counts 0 bytes
	}
	n, err := strconv.ParseInt(rest[:j], 10, 64)
	if err != nil {
		return 0, false // too large for a size: measure the file instead
	}
	return n, true
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

// changedSince reports whether any counted directory has another modification time now.
func changedSince(d *os.File, stamps []stamp) (bool, error) {
	for _, s := range stamps {
		f, err := openSub(d, s.folder, s.sub)
		if err != nil {
			return true, nil // gone or replaced: certainly changed
		}
		var fst unix.Stat_t
		err = unix.Fstat(int(f.Fd()), &fst)
		f.Close()
		if err != nil {
			return false, err
		}
		if fst.Mtim != s.mtime {
			return true, nil
		}
	}
	return false, nil
}

// openSub opens folder/sub of the Maildir d one element at a time, never following a
// symbolic link.
func openSub(d *os.File, folder, sub string) (*os.File, error) {
	if folder == "" {
		return openDirAt(d, sub)
	}
	fd, err := openDirAt(d, folder)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	return openDirAt(fd, sub)
}

// openDirAt opens the directory name in d for reading, refusing a symbolic link.
func openDirAt(d *os.File, name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// eachName calls fn for every name in the directory f, read 1024 names at a time (as
// getdents(2) gives them), without describing the entries (no path-based lstat): a
// directory of a million messages is counted in the memory of one batch, not of all its
// names at once.
func eachName(f *os.File, fn func(name string) error) error {
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if err := fn(n); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

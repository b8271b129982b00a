package mbox

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const oldContent = "From old@x  Mon Jan  1 00:00:00 2024\nS: old\n\nold\n\n"

// TestRefused covers the safe_open refusals
// (docs/behaviour.md §14.23-14.26, §14.30) that need no privilege: each leaves
// every file as it was and no dotlock behind.
func TestRefused(t *testing.T) {
	t.Parallel()
	uid := os.Getuid()
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // makes dir/mbox (or not)
		path    string                         // default "mbox"
		locks   []string
		owner   int
		op      string
		text    string // %s is replaced by the mailbox path
		targets []error
		check   func(t *testing.T, dir string)
	}{
		{
			name: "symlink owned by the user",
			setup: func(t *testing.T, dir string) {
				putFile(t, join(dir, "target"), oldContent, 0o600)
				if err := os.Symlink("target", join(dir, "mbox")); err != nil {
					t.Fatal(err)
				}
				if os.Geteuid() == 0 {
					if err := os.Lchown(join(dir, "mbox"), 65534, 65534); err != nil {
						t.Fatal(err)
					}
				}
			},
			op: "open", text: "file is a symbolic link", targets: []error{ErrSymlink},
			check: func(t *testing.T, dir string) { assertContent(t, join(dir, "target"), oldContent) },
		},
		{
			name: "dangling symlink is not created through",
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("target", join(dir, "mbox")); err != nil {
					t.Fatal(err)
				}
				if os.Geteuid() == 0 {
					if err := os.Lchown(join(dir, "mbox"), 65534, 65534); err != nil {
						t.Fatal(err)
					}
				}
			},
			op: "open", text: "file is a symbolic link", targets: []error{ErrSymlink},
			check: func(t *testing.T, dir string) { assertMissing(t, join(dir, "target")) },
		},
		{
			name: "two hard links",
			setup: func(t *testing.T, dir string) {
				putFile(t, join(dir, "mbox"), oldContent, 0o600)
				if err := os.Link(join(dir, "mbox"), join(dir, "other")); err != nil {
					t.Fatal(err)
				}
			},
			op: "open", text: "file has 2 hard links", targets: []error{ErrLinked},
			check: func(t *testing.T, dir string) { assertContent(t, join(dir, "other"), oldContent) },
		},
		{
			name:  "directory",
			setup: func(t *testing.T, dir string) { mkdirAll(t, join(dir, "mbox"), 0o700) },
			op:    "open", text: "cannot open file: Is a directory", targets: []error{syscall.EISDIR},
		},
		{
			name: "FIFO without reader",
			setup: func(t *testing.T, dir string) {
				if err := unix.Mkfifo(join(dir, "mbox"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			op: "open", text: "cannot open file: No such device or address", targets: []error{syscall.ENXIO},
		},
		{
			name:  "owned by another uid with strict ownership",
			setup: func(t *testing.T, dir string) { putFile(t, join(dir, "mbox"), oldContent, 0o600) },
			owner: uid + 1,
			op:    "open", text: "destination %s is not owned by recipient", targets: []error{ErrOwner},
		},
		{
			name:  "missing parent directory, dotlock",
			setup: func(t *testing.T, dir string) {},
			path:  "nodir/mbox",
			op:    "lock", text: "unable to create lock file %s.lock: No such file or directory",
			targets: []error{syscall.ENOENT},
			check:   func(t *testing.T, dir string) { assertMissing(t, join(dir, "nodir")) },
		},
		{
			name:  "missing parent directory, kernel locks only",
			setup: func(t *testing.T, dir string) {},
			path:  "nodir/mbox",
			locks: []string{"fcntl", "flock"},
			op:    "open", text: "cannot create file exclusively: No such file or directory",
			targets: []error{syscall.ENOENT},
			check:   func(t *testing.T, dir string) { assertMissing(t, join(dir, "nodir")) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			tc.setup(t, dir)
			path := "mbox"
			if tc.path != "" {
				path = tc.path
			}
			before := snapshot(t, dir)
			opt := opts()
			opt.Locks = []string{"dotlock", "flock", "fcntl"}
			if tc.locks != nil {
				opt.Locks = tc.locks
			}
			opt.StrictOwner = true
			opt.Owner = uid
			if tc.owner != 0 {
				opt.Owner = tc.owner
			}
			err := deliver(t, root, path, "S: new\n\nnew\n", opt)
			full := join(dir, path)
			checkErr(t, err, tc.op, full, sprintfPath(tc.text, full), tc.targets...)
			if after := snapshot(t, dir); after != before {
				t.Errorf("directory changed:\nbefore %s\nafter  %s", before, after)
			}
			if tc.check != nil {
				tc.check(t, dir)
			}
		})
	}
}

// TestStrictOwnerOff: another owner is fine without strict_mailbox_ownership.
func TestStrictOwnerOff(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	opt := opts()
	opt.Owner = os.Getuid() + 1
	if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestNewFile: a missing mailbox is created 0600, owned by the delivering
// uid (docs/behaviour.md §14.31).
func TestNewFile(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	mkdirAll(t, join(dir, "example.org"), 0o755)
	opt := opts()
	opt.StrictOwner = true
	opt.Owner = os.Geteuid()
	if err := deliver(t, root, "example.org/alice", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	st := statT(t, join(dir, "example.org/alice"))
	if st.Mode != syscall.S_IFREG|0o600 || int(st.Uid) != os.Geteuid() || st.Nlink != 1 {
		t.Errorf("new mbox: mode %#o uid %d nlink %d, want %#o uid %d nlink 1", st.Mode, st.Uid, st.Nlink, syscall.S_IFREG|0o600, os.Geteuid())
	}
	assertContent(t, join(dir, "example.org/alice"), want("x\n"))
	assertMissing(t, join(dir, "example.org/alice.lock"))
}

// TestOutsideRoot: nothing outside the root is reachable, through ".." or
// through a symlink (even a trusted one).
func TestOutsideRoot(t *testing.T) {
	t.Parallel()
	outer := t.TempDir()
	putFile(t, join(outer, "victim"), oldContent, 0o600)
	root, dir := newRoot(t)
	if err := os.Symlink(join(outer, "victim"), join(dir, "abs")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"../victim", "abs"} {
		opt := opts()
		opt.Locks = []string{"flock"}
		if err := deliver(t, root, path, "x\n", opt); err == nil {
			t.Errorf("Deliver(%q) reached outside the root", path)
		}
	}
	assertContent(t, join(outer, "victim"), oldContent)
}

// TestSymlinkRoot: a root-owned symlink in a root-owned directory that only
// root can write is followed (docs/behaviour.md §14.23); the same link in a
// group writable directory, or owned by another user, is refused.
func TestSymlinkRoot(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	tests := []struct {
		name     string
		dirMode  os.FileMode
		linkUser int
		ok       bool
	}{
		{"root link in 0755 root dir", 0o755, 0, true},
		{"root link in group writable dir", 0o775, 0, false},
		{"root link in world writable sticky dir", 0o1777, 0, false},
		{"user link in 0755 root dir", 0o755, 65534, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			mkdirAll(t, join(dir, "spool"), 0o755)
			putFile(t, join(dir, "real"), oldContent, 0o600)
			if err := os.Symlink("../real", join(dir, "spool/mbox")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(join(dir, "spool/mbox"), tc.linkUser, tc.linkUser); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(join(dir, "spool"), tc.dirMode); err != nil {
				t.Fatal(err)
			}
			opt := opts()
			opt.Locks = []string{"dotlock", "flock", "fcntl"}
			opt.StrictOwner = true
			err := deliver(t, root, "spool/mbox", "x\n", opt)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				assertContent(t, join(dir, "real"), oldContent+want("x\n"))
			} else {
				checkErr(t, err, "open", join(dir, "spool/mbox"), "file is a symbolic link", ErrSymlink)
				assertContent(t, join(dir, "real"), oldContent)
			}
			assertMissing(t, join(dir, "spool/mbox.lock"))
		})
	}
}

// TestOwnerRoot: a mailbox chowned to another user is refused under strict
// ownership (docs/behaviour.md §14.26), with a real chown.
func TestOwnerRoot(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	if err := os.Chown(join(dir, "mbox"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	opt := opts()
	opt.StrictOwner = true
	opt.Owner = 0
	err := deliver(t, root, "mbox", "x\n", opt)
	checkErr(t, err, "open", join(dir, "mbox"), "destination "+join(dir, "mbox")+" is not owned by recipient", ErrOwner)
	assertContent(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.lock"))

	opt.Owner = 65534
	if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestCharDevice: a /dev/null-like mailbox is refused as not regular
// (5.3.5 for the caller), with no dotlock beside it (docs/behaviour.md §14.25).
func TestCharDevice(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root, dir := newRoot(t)
	if err := unix.Mknod(join(dir, "mbox"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod: %v (no CAP_MKNOD here)", err)
	}
	opt := opts()
	opt.Locks = []string{"dotlock", "flock", "fcntl"}
	err := deliver(t, root, "mbox", "x\n", opt)
	if os.IsPermission(err) {
		t.Skipf("device nodes not usable on this file system: %v", err)
	}
	checkErr(t, err, "open", join(dir, "mbox"), "not a regular file", ErrNotRegular)
	assertMissing(t, join(dir, "mbox.lock"))
}

// TestFIFOWithReader: a FIFO that has a reader opens, and is then refused
// as not regular; nothing is written into it.
func TestFIFOWithReader(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	if err := unix.Mkfifo(join(dir, "mbox"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(join(dir, "mbox"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = deliver(t, root, "mbox", "x\n", opts())
	checkErr(t, err, "open", join(dir, "mbox"), "not a regular file", ErrNotRegular)
	buf := make([]byte, 10)
	if n, _ := r.Read(buf); n != 0 {
		t.Errorf("read %q from the FIFO", buf[:n])
	}
}

// TestChangedBeforeLock: the mailbox is replaced by another file while we
// wait for the lock (a POP daemon rewriting it): the message must not go
// into the old, unlinked or renamed file.
func TestChangedBeforeLock(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"unlinked", "renamed"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			o, err := safeOpen(root, "mbox", join(dir, "mbox"))
			if err != nil {
				t.Fatal(err)
			}
			defer o.f.Close()
			if how == "unlinked" {
				err = os.Remove(join(dir, "mbox"))
			} else {
				err = os.Rename(join(dir, "mbox"), join(dir, "mbox.old"))
				putFile(t, join(dir, "mbox"), "", 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = deliverOpen(retry{ctx: t.Context(), attempts: 1}, o, recordParts("a@b", epoch, nil, []byte("x\n")), lockSet{flock: true, fcntl: true}, Options{})
			checkErr(t, err, "open", join(dir, "mbox"), "target file status changed unexpectedly", ErrChanged)
			if how == "renamed" {
				assertContent(t, join(dir, "mbox.old"), oldContent)
				assertContent(t, join(dir, "mbox"), "")
			}
		})
	}
}

// snapshot describes every name in dir with its type, size and content
// digest, to prove a refused delivery changed nothing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, e := range ents {
		fi, err := os.Lstat(join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s += e.Name() + ":" + fi.Mode().String()
		if fi.Mode().IsRegular() {
			s += ":" + readFile(t, join(dir, e.Name()))
		}
		s += " "
	}
	return s
}

func sprintfPath(text, path string) string {
	for i := 0; i+1 < len(text); i++ {
		if text[i:i+2] == "%s" {
			return text[:i] + path + text[i+2:]
		}
	}
	return text
}

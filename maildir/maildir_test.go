package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomaildir "github.com/emersion/go-maildir"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
)

// A fixed clock: second 1700000000, microsecond 123456 (the nanoseconds
// below a microsecond are dropped, not rounded).
var clock = time.Unix(1700000000, 123456789)

func fixedNow() time.Time { return clock }

const host = "mx.example"

// newNameRE is the final name with the fields the package doc promises:
// lower-case hex without leading zeros, no info part.
var newNameRE = regexp.MustCompile(`^([0-9]+)\.V(0|[1-9a-f][0-9a-f]*)I(0|[1-9a-f][0-9a-f]*)M([0-9]+)\.([^/:]*)$`)

func opts() Options { return Options{Hostname: host, Now: fixedNow} }

// newRoot returns an empty base directory and a root opened on it.
func newRoot(t testing.TB) (*beneath.Root, string) {
	t.Helper()
	base := t.TempDir()
	root, err := beneath.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, base
}

// entries lists a directory; a missing directory has no entries.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// assertNothingLeft fails unless tmp/ and new/ of the maildir are empty or
// missing.
func assertNothingLeft(t *testing.T, maildir string) {
	t.Helper()
	for _, sub := range []string{"tmp", "new"} {
		if got := entries(t, filepath.Join(maildir, sub)); len(got) != 0 {
			t.Errorf("%s/ after failure: %q, want empty", sub, got)
		}
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky); got != want {
		t.Errorf("mode of %s = %v, want %v", path, got, want)
	}
}

// checkDelivered verifies one delivery: the returned path, the name's
// fields against the file's own stat, the bytes, the mode, and that
// go-maildir reads exactly that message from new/.
func checkDelivered(t *testing.T, base, dir, got string, want []byte) {
	t.Helper()
	prefix := strings.TrimRight(dir, "/")
	if prefix != "" {
		prefix += "/"
	}
	if !strings.HasPrefix(got, prefix+"new/") {
		t.Fatalf("Deliver returned %q, want it under %q", got, prefix+"new/")
	}
	name := strings.TrimPrefix(got, prefix+"new/")
	m := newNameRE.FindStringSubmatch(name)
	if m == nil {
		t.Fatalf("name %q does not match %v", name, newNameRE)
	}
	full := filepath.Join(base, got)
	st, err := os.Lstat(full)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	wantFields := []string{"1700000000", strconv.FormatUint(uint64(sys.Dev), 16),
		strconv.FormatUint(sys.Ino, 16), "123456", host}
	if diff := cmp.Diff(wantFields, m[1:]); diff != "" {
		t.Errorf("name fields (-want +got):\n%s", diff)
	}
	if sys.Nlink != 1 {
		t.Errorf("message has %d links, want 1 (tmp name left?)", sys.Nlink)
	}
	assertMode(t, full, 0o600)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("content = %q, want %q", b, want)
	}

	md := filepath.Join(base, prefix)
	if got := entries(t, filepath.Join(md, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after success: %q", got)
	}
	n, err := gomaildir.Dir(md).UnseenCount()
	if err != nil || n != 1 {
		t.Fatalf("go-maildir sees %d new messages (err %v), want 1", n, err)
	}
	msgs, err := gomaildir.Dir(md).Unseen()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("go-maildir Unseen: %d messages, %v", len(msgs), err)
	}
	if msgs[0].Key() != name {
		t.Errorf("go-maildir key %q, want %q", msgs[0].Key(), name)
	}
	rc, err := msgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if rb, _ := io.ReadAll(rc); !bytes.Equal(rb, want) {
		t.Errorf("go-maildir reads %q, want %q", rb, want)
	}
}

// TestDeliver covers docs/behaviour.md §14.33, §14.34 and §14.36: layout creation with 0700
// directories, the name format, 0600 files, and the bytes exactly as given.
func TestDeliver(t *testing.T) {
	t.Parallel()
	hdr := []byte("Return-Path: <a@example.org>\nDelivered-To: alice@example.com\n")
	body := []byte("Subject: hi\n\nFrom here on\n")
	tests := []struct {
		name    string
		pre     func(t *testing.T, base string)
		dir     string
		parts   [][]byte
		created []string // directories Deliver must have created, 0700
		kept    map[string]fs.FileMode
	}{
		{
			name:    "all missing",
			dir:     "example.com/alice/",
			parts:   [][]byte{hdr, body},
			created: []string{"example.com", "example.com/alice", "example.com/alice/tmp", "example.com/alice/new", "example.com/alice/cur"},
		},
		{
			name:    "no trailing slash",
			dir:     "example.com/alice",
			parts:   [][]byte{hdr, body},
			created: []string{"example.com", "example.com/alice", "example.com/alice/tmp"},
		},
		{
			name:    "root itself",
			dir:     "",
			parts:   [][]byte{body},
			created: []string{"tmp", "new", "cur"},
		},
		{
			name:    "doubled slashes",
			dir:     "a//b/",
			parts:   [][]byte{body},
			created: []string{"a", "a/b", "a/b/new"},
		},
		{
			name: "existing maildir keeps its modes",
			pre: func(t *testing.T, base string) {
				for _, d := range []string{"d/u/tmp", "d/u/new", "d/u/cur"} {
					mkdir(t, filepath.Join(base, d), 0o755)
				}
			},
			dir:   "d/u/",
			parts: [][]byte{hdr, body},
			kept:  map[string]fs.FileMode{"d/u": fs.ModeDir | 0o755, "d/u/tmp": fs.ModeDir | 0o755, "d/u/new": fs.ModeDir | 0o755},
		},
		{
			name: "only tmp exists: new and cur made at link time",
			pre: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "d/u/tmp"), 0o750)
			},
			dir:     "d/u/",
			parts:   [][]byte{body},
			created: []string{"d/u/new", "d/u/cur"},
			kept:    map[string]fs.FileMode{"d/u/tmp": fs.ModeDir | 0o750},
		},
		{
			name: "set-group-id parent does not leak into created directories",
			pre: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "d"), 0o755)
				if err := os.Chmod(filepath.Join(base, "d"), fs.ModeSetgid|0o775); err != nil {
					t.Fatal(err)
				}
			},
			dir:     "d/u/",
			parts:   [][]byte{body},
			created: []string{"d/u", "d/u/tmp", "d/u/new", "d/u/cur"},
			kept:    map[string]fs.FileMode{"d": fs.ModeDir | fs.ModeSetgid | 0o775},
		},
		{
			name: "symlink inside the root is followed",
			pre: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "real"), 0o700)
				if err := os.Symlink("real", filepath.Join(base, "alias")); err != nil {
					t.Fatal(err)
				}
			},
			dir:     "alias/",
			parts:   [][]byte{body},
			created: []string{"real/tmp", "real/new", "real/cur"},
		},
		{
			// The orchestrator normalises line ends; this package stores
			// bytes as given, CR included.
			name:  "CRLF kept verbatim",
			dir:   "d/u/",
			parts: [][]byte{[]byte("Subject: x\r\n\r\nbody\r\n")},
		},
		{
			name:  "no trailing newline added",
			dir:   "d/u/",
			parts: [][]byte{[]byte("no newline")},
		},
		{
			name:  "empty message",
			dir:   "d/u/",
			parts: nil,
		},
		{
			name:  "empty parts",
			dir:   "d/u/",
			parts: [][]byte{{}, hdr, {}, body, nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, base := newRoot(t)
			if tc.pre != nil {
				tc.pre(t, base)
			}
			got, err := Deliver(root, tc.dir, tc.parts, opts())
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			for _, d := range tc.created {
				assertMode(t, filepath.Join(base, d), fs.ModeDir|0o700)
			}
			for d, mode := range tc.kept {
				assertMode(t, filepath.Join(base, d), mode)
			}
			checkDelivered(t, base, tc.dir, got, bytes.Join(tc.parts, nil))
		})
	}
}

func mkdir(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestDeliverSameSecond: deliveries from one process in the same
// microsecond reuse the tmp name (it is removed each time) and still get
// distinct final names from their inodes.
func TestDeliverSameSecond(t *testing.T) {
	t.Parallel()
	root, base := newRoot(t)
	seen := make(map[string]bool)
	for i := range 3 {
		got, err := Deliver(root, "u/", [][]byte{[]byte(strconv.Itoa(i))}, opts())
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if seen[got] {
			t.Fatalf("delivery %d reused %s", i, got)
		}
		seen[got] = true
		if b, err := os.ReadFile(filepath.Join(base, got)); err != nil || string(b) != strconv.Itoa(i) {
			t.Errorf("%s = %q, %v", got, b, err)
		}
	}
	if got := entries(t, filepath.Join(base, "u/new")); len(got) != 3 {
		t.Errorf("new/ = %q, want 3 messages", got)
	}
	if got := entries(t, filepath.Join(base, "u/tmp")); len(got) != 0 {
		t.Errorf("tmp/ = %q, want empty", got)
	}
}

// TestDeliverUmask: a umask that takes away owner bits must not leave
// unreadable files or unwritable directories. Not parallel: the umask is
// per process.
func TestDeliverUmask(t *testing.T) {
	root, base := newRoot(t)
	old := syscall.Umask(0o277)
	t.Cleanup(func() { syscall.Umask(old) })
	got, err := Deliver(root, "d/u/", [][]byte{[]byte("x")}, opts())
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"d", "d/u", "d/u/tmp", "d/u/new", "d/u/cur"} {
		assertMode(t, filepath.Join(base, d), fs.ModeDir|0o700)
	}
	checkDelivered(t, base, "d/u/", got, []byte("x"))
}

func TestHostname(t *testing.T) {
	t.Parallel()
	sys, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name to compare with: %v", err)
	}
	tests := []struct {
		in, want string
	}{
		{"", escapeHost(sys)},
		{"mx.example", "mx.example"},
		{"a/b:c", `a\057b\072c`},
		{"::", `\072\072`},
		{`back\slash`, `back\slash`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			root, _ := newRoot(t)
			got, err := Deliver(root, "", nil, Options{Hostname: tc.in, Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(got, "M123456."+tc.want) || strings.ContainsRune(strings.TrimPrefix(got, "new/"), '/') {
				t.Errorf("Deliver = %q, want host field %q", got, tc.want)
			}
		})
	}
}

// TestLimit covers docs/behaviour.md §14.22 for maildir: a message of exactly the limit
// is written, one byte more fails before anything is created.
func TestLimit(t *testing.T) {
	t.Parallel()
	msg := [][]byte{[]byte("Return-Path: <>\n"), []byte("0123456789")} // 26 bytes
	tests := []struct {
		limit int64
		ok    bool
	}{
		{0, true},
		{-1, true},
		{27, true},
		{26, true},
		{25, false},
		{1, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			t.Parallel()
			root, base := newRoot(t)
			o := opts()
			o.Limit = tc.limit
			got, err := Deliver(root, "d/u/", msg, o)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				checkDelivered(t, base, "d/u/", got, bytes.Join(msg, nil))
				return
			}
			if got != "" {
				t.Errorf("Deliver returned %q on failure", got)
			}
			var e *Error
			if !errors.As(err, &e) || e.Op != "write" {
				t.Fatalf("err = %#v, want *Error with Op write", err)
			}
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, syscall.EFBIG) {
				t.Errorf("err = %v, want both ErrTooLarge and EFBIG", err)
			}
			if want := "error writing message: file too large"; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if got := entries(t, base); len(got) != 0 {
				t.Errorf("base after oversize message: %q, want nothing created", got)
			}
		})
	}
}

// TestExistingTmpName covers docs/behaviour.md §14.38: O_EXCL refuses an existing tmp
// name, including a symlink planted there, and neither is touched.
func TestExistingTmpName(t *testing.T) {
	t.Parallel()
	tmp := fmt.Sprintf("d/u/tmp/1700000000.P%d.%s", os.Getpid(), host)
	tests := []struct {
		name  string
		plant func(t *testing.T, base string)
	}{
		{"regular file", func(t *testing.T, base string) {
			putFile(t, filepath.Join(base, tmp), "old")
		}},
		{"symlink to a file (lure)", func(t *testing.T, base string) {
			if err := os.Symlink("../../../victim", filepath.Join(base, tmp)); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, base string) {
			if err := os.Symlink("../../../nothing", filepath.Join(base, tmp)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, base := newRoot(t)
			for _, d := range []string{"d/u/tmp", "d/u/new", "d/u/cur"} {
				mkdir(t, filepath.Join(base, d), 0o700)
			}
			putFile(t, filepath.Join(base, "victim"), "old")
			tc.plant(t, base)
			before, _ := os.Lstat(filepath.Join(base, tmp))

			_, err := Deliver(root, "d/u/", [][]byte{[]byte("new")}, opts())
			var e *Error
			if !errors.As(err, &e) || e.Op != "create" || e.Path != tmp {
				t.Fatalf("err = %#v, want *Error{create, %s}", err, tmp)
			}
			if !errors.Is(err, syscall.EEXIST) {
				t.Errorf("err = %v, want EEXIST", err)
			}
			if want := "create maildir file " + tmp + ": file exists"; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			after, err := os.Lstat(filepath.Join(base, tmp))
			if err != nil || !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
				t.Errorf("planted tmp name was changed or removed: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(base, "victim")); string(b) != "old" {
				t.Errorf("victim = %q, want %q", b, "old")
			}
			if got := entries(t, filepath.Join(base, "d/u/new")); len(got) != 0 {
				t.Errorf("new/ = %q, want empty", got)
			}
		})
	}
}

func putFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfinement: no step leaves the root, whether through "..", an
// absolute name, or a symlink anywhere in the maildir path (path traversal
// and symlink swaps by whoever controls the mailbox tree).
func TestConfinement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		dir    string
		plant  func(t *testing.T, base, outside string)
		wantOp string
	}{
		{"dot-dot", "../outside/", nil, "create"},
		{"dot-dot inside", "d/../../outside/", nil, "create"},
		{"absolute", "/outside/", nil, "create"},
		{"maildir is absolute symlink", "d/u/", func(t *testing.T, base, outside string) {
			symlink(t, outside, filepath.Join(base, "d/u"))
		}, "create"},
		{"domain is relative symlink, maildir missing", "d/u/", func(t *testing.T, base, outside string) {
			symlink(t, "../outside", filepath.Join(base, "d"))
		}, "create"},
		{"tmp is symlink", "d/u/", func(t *testing.T, base, outside string) {
			mkdir(t, filepath.Join(base, "d/u/new"), 0o700)
			symlink(t, outside, filepath.Join(base, "d/u/tmp"))
		}, "create"},
		{"new is symlink", "d/u/", func(t *testing.T, base, outside string) {
			mkdir(t, filepath.Join(base, "d/u/tmp"), 0o700)
			symlink(t, outside, filepath.Join(base, "d/u/new"))
		}, "link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top := t.TempDir()
			base := filepath.Join(top, "base")
			outside := filepath.Join(top, "outside")
			mkdir(t, base, 0o755)
			mkdir(t, outside, 0o755)
			if tc.plant != nil {
				tc.plant(t, base, outside)
			}
			root, err := beneath.Open(base)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()

			dir := tc.dir
			if dir == "/outside/" {
				dir = outside + "/"
			}
			got, err := Deliver(root, dir, [][]byte{[]byte("x")}, opts())
			var e *Error
			if !errors.As(err, &e) || e.Op != tc.wantOp {
				t.Fatalf("Deliver = %q, %v; want *Error with Op %q", got, err, tc.wantOp)
			}
			if !errors.Is(err, beneath.ErrEscapes) || !strings.HasSuffix(err.Error(), ": path escapes from parent") {
				t.Errorf("Error() = %q, want the root's escape error", err.Error())
			}
			if got := entries(t, outside); len(got) != 0 {
				t.Errorf("outside the root: %q, want nothing", got)
			}
			if tc.plant != nil {
				assertNothingLeft(t, filepath.Join(base, "d/u"))
			}
		})
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// stub replaces a seam for one test.
func stub[T any](t *testing.T, p *T, v T) {
	t.Helper()
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// TestFaults covers docs/behaviour.md §14.37 and the durability steps: each step is
// made to fail and the result must be the right *Error with the errno, and
// nothing left in tmp/ or new/. Not parallel: the seams are package state.
func TestFaults(t *testing.T) {
	tmp := fmt.Sprintf("d/u/tmp/1700000000.P%d.%s", os.Getpid(), host)
	eio := func(*os.File) error { return syscall.EIO }
	tests := []struct {
		name    string
		pre     func(t *testing.T, base string) // before Deliver; default: existing maildir
		install func(t *testing.T)
		op      string
		newPath bool // Path is the new/ name (else the tmp name)
		err     error
		text    string
	}{
		{
			name: "ENOSPC after a partial write",
			install: func(t *testing.T) {
				stub(t, &writeFile, func(f *os.File, b []byte) (int, error) {
					n, _ := f.Write(b[:len(b)/2])
					return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
				})
			},
			op: "write", err: syscall.ENOSPC, text: "error writing message: no space left on device",
		},
		{
			name: "EFBIG on the second part",
			install: func(t *testing.T) {
				calls := 0
				stub(t, &writeFile, func(f *os.File, b []byte) (int, error) {
					if calls++; calls == 2 {
						return 0, syscall.EFBIG
					}
					return f.Write(b)
				})
			},
			op: "write", err: syscall.EFBIG, text: "error writing message: file too large",
		},
		{
			name: "EDQUOT",
			install: func(t *testing.T) {
				stub(t, &writeFile, func(f *os.File, b []byte) (int, error) { return 0, syscall.EDQUOT })
			},
			op: "write", err: syscall.EDQUOT, text: "error writing message: disk quota exceeded",
		},
		{
			name:    "EIO on file fsync",
			install: func(t *testing.T) { stub(t, &syncFile, eio) },
			op:      "write", err: syscall.EIO, text: "error writing message: input/output error",
		},
		{
			name: "EIO on close",
			install: func(t *testing.T) {
				stub(t, &closeFile, func(f *os.File) error { f.Close(); return syscall.EIO })
			},
			op: "write", err: syscall.EIO, text: "error writing message: input/output error",
		},
		{
			name:    "EIO on new/ fsync after the link",
			install: func(t *testing.T) { stub(t, &syncDir, eio) },
			op:      "link", newPath: true, err: syscall.EIO,
		},
		{
			name:    "EIO on directory fsync while creating the maildir",
			pre:     func(t *testing.T, base string) {},
			install: func(t *testing.T) { stub(t, &syncDir, eio) },
			op:      "create", err: syscall.EIO, text: "create maildir file " + tmp + ": input/output error",
		},
		{
			name: "EACCES creating the maildir",
			pre: func(t *testing.T, base string) {
				mkdir(t, filepath.Join(base, "d"), 0o500)
			},
			install: func(t *testing.T) {
				if os.Geteuid() == 0 {
					// Root ignores the mode; let mkdir report what a
					// recipient uid would see.
					stub(t, &syncDir, func(*os.File) error { return syscall.EACCES })
				}
			},
			op: "create", err: syscall.EACCES, text: "create maildir file " + tmp + ": permission denied",
		},
		{
			name: "link fails with EIO",
			install: func(t *testing.T) {
				stub(t, &linkFile, func(*os.File, string, *os.File, string) error { return syscall.EIO })
			},
			op: "link", newPath: true, err: syscall.EIO,
		},
		{
			name: "no hard links and no RENAME_NOREPLACE",
			install: func(t *testing.T) {
				stub(t, &linkFile, func(*os.File, string, *os.File, string) error { return syscall.EPERM })
				stub(t, &renameNoReplace, func(*os.File, string, *os.File, string) error { return syscall.EINVAL })
			},
			op: "link", newPath: true, err: syscall.EPERM,
		},
		{
			name: "name in new/ exists",
			install: func(t *testing.T) {
				stub(t, &linkFile, func(od *os.File, oldname string, nd *os.File, newname string) error {
					if err := os.WriteFile(filepath.Join(nd.Name(), newname), []byte("older message"), 0o600); err != nil {
						t.Fatal(err)
					}
					return linkAt(od, oldname, nd, newname)
				})
			},
			op: "link", newPath: true, err: syscall.EEXIST,
		},
		{
			name: "tmp name replaced before the link",
			install: func(t *testing.T) {
				stub(t, &linkFile, func(od *os.File, oldname string, nd *os.File, newname string) error {
					// Keep our file's inode alive elsewhere: freed, the kernel may hand the
					// same inode number to the impostor and hide the swap.
					if err := linkAt(od, oldname, od, "../kept-inode"); err != nil {
						t.Fatal(err)
					}
					if err := os.Remove(filepath.Join(od.Name(), oldname)); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(od.Name(), oldname), []byte("impostor"), 0o600); err != nil {
						t.Fatal(err)
					}
					return linkAt(od, oldname, nd, newname)
				})
			},
			op: "link", newPath: true, err: ErrTmpReplaced,
		},
		{
			name: "name in new/ exists, no hard links",
			install: func(t *testing.T) {
				stub(t, &linkFile, func(od *os.File, oldname string, nd *os.File, newname string) error {
					if err := os.WriteFile(filepath.Join(nd.Name(), newname), []byte("older message"), 0o600); err != nil {
						t.Fatal(err)
					}
					return syscall.EOPNOTSUPP
				})
			},
			op: "link", newPath: true, err: syscall.EEXIST,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, base := newRoot(t)
			if tc.pre != nil {
				tc.pre(t, base)
			} else {
				for _, d := range []string{"d/u/tmp", "d/u/new", "d/u/cur"} {
					mkdir(t, filepath.Join(base, d), 0o700)
				}
			}
			var linked string
			tc.install(t)
			link := linkFile
			stub(t, &linkFile, func(od *os.File, oldname string, nd *os.File, newname string) error {
				linked = "d/u/new/" + newname
				return link(od, oldname, nd, newname)
			})

			got, err := Deliver(root, "d/u/", [][]byte{[]byte("Return-Path: <>\n"), []byte("body\n")}, opts())
			if got != "" {
				t.Errorf("Deliver returned %q on failure", got)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			wantPath := tmp
			if tc.newPath {
				wantPath = linked
				tc.text = "create maildir file " + linked + ": " + tc.err.Error()
			}
			if e.Op != tc.op || e.Path != wantPath {
				t.Errorf("Op, Path = %q, %q; want %q, %q", e.Op, e.Path, tc.op, wantPath)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.err)
			}
			if err.Error() != tc.text {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.text)
			}
			// Nothing of ours is left in tmp/; a file another process put at our tmp
			// name (the impostor) is not ours to remove.
			for _, n := range entries(t, filepath.Join(base, "d/u/tmp")) {
				if b, _ := os.ReadFile(filepath.Join(base, "d/u/tmp", n)); string(b) != "impostor" {
					t.Errorf("tmp/%s = %q left behind", n, b)
				}
			}
			// A message that was already in new/ is never replaced.
			newDir := filepath.Join(base, "d/u/new")
			for _, n := range entries(t, newDir) {
				b, _ := os.ReadFile(filepath.Join(newDir, n))
				if string(b) != "older message" {
					t.Errorf("new/%s = %q: left behind or replaced", n, b)
				}
			}
		})
	}
}

// TestLinkRecovery: link outcomes that must still deliver exactly one copy.
// Not parallel: seams.
func TestLinkRecovery(t *testing.T) {
	tests := []struct {
		name string
		link func(t *testing.T) func(*os.File, string, *os.File, string) error
	}{
		{
			// Postfix's sane_link: NFS can report failure for a link it made.
			name: "link made but reported EIO",
			link: func(t *testing.T) func(*os.File, string, *os.File, string) error {
				return func(od *os.File, o string, nd *os.File, n string) error {
					if err := linkAt(od, o, nd, n); err != nil {
						t.Fatal(err)
					}
					return syscall.EIO
				}
			},
		},
		{
			name: "no hard links: renameat2 NOREPLACE",
			link: func(t *testing.T) func(*os.File, string, *os.File, string) error {
				return func(*os.File, string, *os.File, string) error { return syscall.EPERM }
			},
		},
		{
			name: "cross-device link",
			link: func(t *testing.T) func(*os.File, string, *os.File, string) error {
				return func(*os.File, string, *os.File, string) error { return syscall.EXDEV }
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, base := newRoot(t)
			stub(t, &linkFile, tc.link(t))
			got, err := Deliver(root, "d/u/", [][]byte{[]byte("m\n")}, opts())
			if errors.Is(err, syscall.EINVAL) {
				t.Skipf("file system without RENAME_NOREPLACE: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkDelivered(t, base, "d/u/", got, []byte("m\n"))
		})
	}
}

// TestOrder pins the durability sequence (docs/behaviour.md §13.1): the
// file is fsynced and closed before it is linked, the tmp name is removed,
// and new/ is fsynced last. Not parallel: seams.
func TestOrder(t *testing.T) {
	root, base := newRoot(t)
	for _, d := range []string{"u/tmp", "u/new", "u/cur"} {
		mkdir(t, filepath.Join(base, d), 0o700)
	}
	var events []string
	tmpDir := filepath.Join(base, "u/tmp")
	stub(t, &writeFile, func(f *os.File, b []byte) (int, error) {
		events = append(events, "write "+string(b))
		return f.Write(b)
	})
	stub(t, &syncFile, func(f *os.File) error { events = append(events, "fsync file"); return f.Sync() })
	stub(t, &closeFile, func(f *os.File) error { events = append(events, "close"); return f.Close() })
	stub(t, &linkFile, func(od *os.File, o string, nd *os.File, n string) error {
		rel, _ := filepath.Rel(base, nd.Name())
		events = append(events, fmt.Sprintf("link %s (tmp/ holds %d)", rel, len(entries(t, tmpDir))))
		return linkAt(od, o, nd, n)
	})
	stub(t, &syncDir, func(f *os.File) error {
		rel, _ := filepath.Rel(base, f.Name())
		events = append(events, fmt.Sprintf("fsync %s (tmp/ holds %d)", rel, len(entries(t, tmpDir))))
		return f.Sync()
	})
	if _, err := Deliver(root, "u/", [][]byte{[]byte("a"), []byte("b")}, opts()); err != nil {
		t.Fatal(err)
	}
	want := []string{"write a", "write b", "fsync file", "close", "link u/new (tmp/ holds 1)", "fsync u/new (tmp/ holds 0)"}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// TestOrderCreate: directories made for a new maildir are each fsynced,
// and so is every parent that gained an entry. Not parallel: seams.
func TestOrderCreate(t *testing.T) {
	root, base := newRoot(t)
	mkdir(t, filepath.Join(base, "d"), 0o700)
	var synced []string
	stub(t, &syncDir, func(f *os.File) error {
		rel, _ := filepath.Rel(base, f.Name())
		synced = append(synced, rel)
		return f.Sync()
	})
	if _, err := Deliver(root, "d/u/", nil, opts()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(synced)
	want := []string{"d", "d/u", "d/u/cur", "d/u/new", "d/u/new", "d/u/tmp"}
	if diff := cmp.Diff(want, synced); diff != "" {
		t.Errorf("fsynced directories (-want +got):\n%s", diff)
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	pe := &fs.PathError{Op: "open", Path: "d/tmp/x", Err: syscall.EEXIST}
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "create", Path: "d/tmp/x", Err: pe}, "create maildir file d/tmp/x: file exists"},
		{&Error{Op: "link", Path: "d/new/y", Err: &os.LinkError{Op: "link", Old: "a", New: "b", Err: syscall.ENOSPC}}, "create maildir file d/new/y: no space left on device"},
		{&Error{Op: "write", Path: "d/tmp/x", Err: fmt.Errorf("write: %w", syscall.EIO)}, "error writing message: input/output error"},
		{&Error{Op: "create", Path: "p", Err: errors.New("path escapes from parent")}, "create maildir file p: path escapes from parent"},
		{&Error{Op: "create", Path: "p", Err: &fs.PathError{Op: "openat", Path: "p", Err: errors.New("path escapes from parent")}}, "create maildir file p: path escapes from parent"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if tc.err.Unwrap() != tc.err.Err {
			t.Errorf("Unwrap() is not Err")
		}
	}
}

// linkAt is linkat(2) between two open directories, as the real linkFile.
func linkAt(od *os.File, o string, nd *os.File, n string) error {
	return unix.Linkat(int(od.Fd()), o, int(nd.Fd()), n, 0)
}

// The mailbox owner renames tmp/ or new/ away during a delivery and puts a symlink out of
// the base in its place. The promise: no loss and no duplicate. A failure leaves nothing
// of ours behind, in the directory where we made it (now renamed); a success means the
// message is there exactly once. Not parallel: seams.
func TestOwnerSwapsDirectories(t *testing.T) {
	swap := func(t *testing.T, base, dir string) {
		t.Helper()
		p := filepath.Join(base, "d/u", dir)
		if err := os.Rename(p, p+".moved"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(t.TempDir(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		install func(t *testing.T, base string)
		fails   bool
	}{
		{"tmp/ swapped, then the write fails", func(t *testing.T, base string) {
			stub(t, &writeFile, func(f *os.File, b []byte) (int, error) {
				swap(t, base, "tmp")
				return 0, syscall.EIO
			})
		}, true},
		{"new/ swapped after the link, then its fsync fails", func(t *testing.T, base string) {
			stub(t, &syncDir, func(f *os.File) error {
				swap(t, base, "new")
				return syscall.EIO
			})
		}, true},
		{"new/ swapped after the link", func(t *testing.T, base string) {
			stub(t, &syncDir, func(f *os.File) error {
				swap(t, base, "new")
				return f.Sync()
			})
		}, false},
		{"tmp/ and new/ swapped before the link", func(t *testing.T, base string) {
			stub(t, &closeFile, func(f *os.File) error {
				swap(t, base, "tmp")
				swap(t, base, "new")
				return f.Close()
			})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, base := newRoot(t)
			for _, d := range []string{"d/u/tmp", "d/u/new", "d/u/cur"} {
				mkdir(t, filepath.Join(base, d), 0o700)
			}
			tc.install(t, base)
			_, err := Deliver(root, "d/u/", [][]byte{[]byte("m\n")}, opts())
			if (err != nil) != tc.fails {
				t.Fatalf("Deliver: %v, want failure %v", err, tc.fails)
			}
			var copies []string
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					copies = append(copies, p)
				}
				return nil
			})
			want := 1
			if tc.fails {
				want = 0
			}
			if len(copies) != want {
				t.Fatalf("after %v: %d copies under the base, want %d: %q", err, len(copies), want, copies)
			}
		})
	}
}

// TestSizeInName: with SizeInName the name in new/ ends in Dovecot's ",S=" and ",W="
// fields for the bytes written; without it the name is virtual(8)'s, no field added.
func TestSizeInName(t *testing.T) {
	t.Parallel()
	parts := [][]byte{[]byte("Return-Path: <a@example.org>\n"), []byte("Subject: x\n\nline\r\nbody\n")}
	// 29+23 bytes; LFs without a CR before them: 1 + 3 = 4.
	tests := []struct {
		name     string
		sizes    bool
		hostname string
		suffix   string
	}{
		{"off", false, "mx.example", "M123456.mx.example"},
		{"off comma", false, "a,b", "M123456.a,b"},
		{"on", true, "mx.example", "M123456.mx.example,S=52,W=56"},
		{"on comma", true, "a,S=1", `M123456.a\054S=1,S=52,W=56`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, base := newRoot(t)
			got, err := Deliver(root, "u/", parts, Options{Hostname: tc.hostname, Now: fixedNow, SizeInName: tc.sizes})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(got, tc.suffix) {
				t.Errorf("Deliver = %q, want it to end in %q", got, tc.suffix)
			}
			st, err := os.Stat(filepath.Join(base, got))
			if err != nil || st.Size() != 52 {
				t.Fatalf("stat %s: %v, %v", got, st, err)
			}
		})
	}
}

package mbox

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vdeliver/internal/beneath"
)

// TestLimit: virtual_mailbox_limit counts the old size plus the whole
// record; exactly the limit is fine, one byte more is refused before
// anything is written (docs/behaviour.md §14.22).
func TestLimit(t *testing.T) {
	t.Parallel()
	full := int64(len(oldContent) + len(want("S: x\n\nbody\n")))
	tests := []struct {
		limit int64
		ok    bool
	}{
		{0, true},
		{full, true},
		{full + 1, true},
		{full - 1, false},
		{int64(len(oldContent)), false},
	}
	for _, tc := range tests {
		t.Run(strconv.FormatInt(tc.limit, 10), func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			opt := opts()
			opt.Limit = tc.limit
			err := deliver(t, root, "mbox", "S: x\n\nbody\n", opt)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				assertContent(t, join(dir, "mbox"), oldContent+want("S: x\n\nbody\n"))
				return
			}
			checkErr(t, err, "write", join(dir, "mbox"), "error writing message: File too large", ErrTooLarge, syscall.EFBIG)
			assertContent(t, join(dir, "mbox"), oldContent)
			assertMissing(t, join(dir, "mbox.lock"))
		})
	}
}

// TestQuota: a byte quota bounds the file as the limit does and the smaller of the two
// applies; a refusal by the quota is ErrOverQuota with EDQUOT and names the quota and the
// size, one by the limit stays virtual(8)'s EFBIG. Nothing is written either way.
func TestQuota(t *testing.T) {
	t.Parallel()
	old := int64(len(oldContent))
	n := int64(len(want("S: x\n\nbody\n")))
	full := old + n
	quotaText := "mailbox over quota: " + strconv.FormatInt(old, 10) + " bytes, limit " + strconv.FormatInt(full-1, 10) +
		" bytes, message " + strconv.FormatInt(n, 10) + " bytes"
	tests := []struct {
		name         string
		limit, quota int64
		want         error // nil: delivered
	}{
		{"quota exactly reached", 0, full, nil},
		{"quota one byte short", 0, full - 1, ErrOverQuota},
		{"quota below a limit that fits", full + 100, full - 1, ErrOverQuota},
		{"limit below the quota", full - 1, full + 100, ErrTooLarge},
		{"equal: the limit's text", full - 1, full - 1, ErrTooLarge},
		{"quota above the limit, both fit", full, full + 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			opt := opts()
			opt.Limit, opt.Quota = tc.limit, tc.quota
			perr := Probe(root, "mbox", testSender, []byte(testHeaders), []byte("S: x\n\nbody\n"), opt)
			err := deliver(t, root, "mbox", "S: x\n\nbody\n", opt)
			switch tc.want {
			case nil:
				if err != nil || perr != nil {
					t.Fatalf("Probe: %v, Deliver: %v; want both nil", perr, err)
				}
				assertContent(t, join(dir, "mbox"), oldContent+want("S: x\n\nbody\n"))
				return
			case ErrOverQuota:
				checkErr(t, err, "write", join(dir, "mbox"), quotaText, ErrOverQuota, syscall.EDQUOT)
			default:
				checkErr(t, err, "write", join(dir, "mbox"), "error writing message: File too large", ErrTooLarge, syscall.EFBIG)
			}
			if !errors.Is(perr, tc.want) {
				t.Fatalf("Probe: %v; want %v", perr, tc.want)
			}
			assertContent(t, join(dir, "mbox"), oldContent)
			assertMissing(t, join(dir, "mbox.lock"))
		})
	}
}

// TestWriteFaults injects write and fsync failures after part of the
// message is on disk: the file goes back to its old size and content, the
// lock goes, and the errno reaches the caller (docs/behaviour.md §14.21, §14.32).
func TestWriteFaults(t *testing.T) {
	tests := []struct {
		name    string
		write   func(*os.File, []byte) (int, error)
		sync    func(*os.File) error
		text    string
		targets []error
	}{
		{
			name:  "EIO mid-write",
			write: halfThen(syscall.EIO),
			text:  "error writing message: Input/output error", targets: []error{syscall.EIO},
		},
		{
			name:  "EDQUOT mid-write",
			write: halfThen(syscall.EDQUOT),
			text:  "error writing message: Disk quota exceeded", targets: []error{syscall.EDQUOT},
		},
		{
			name:  "EFBIG mid-write",
			write: halfThen(syscall.EFBIG),
			text:  "error writing message: File too large", targets: []error{ErrTooLarge, syscall.EFBIG},
		},
		{
			name:  "ENOSPC mid-write",
			write: halfThen(syscall.ENOSPC),
			text:  "error writing message: No space left on device", targets: []error{syscall.ENOSPC},
		},
		{
			name:  "short write without error",
			write: halfThen(nil),
			text:  "error writing message: short write", targets: []error{io.ErrShortWrite},
		},
		{
			name: "EIO from fsync after a complete write",
			sync: func(*os.File) error { return &os.PathError{Op: "sync", Path: "mbox", Err: syscall.EIO} },
			text: "error writing message: Input/output error", targets: []error{syscall.EIO},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			ino := statT(t, join(dir, "mbox")).Ino
			if tc.write != nil {
				hookWrite(t, tc.write)
			}
			if tc.sync != nil {
				saved := syncFile
				syncFile = tc.sync
				t.Cleanup(func() { syncFile = saved })
			}
			err := deliver(t, root, "mbox", "S: x\n\n"+strings.Repeat("body line\n", 100), opts())
			checkErr(t, err, "write", join(dir, "mbox"), tc.text, tc.targets...)
			assertContent(t, join(dir, "mbox"), oldContent)
			assertMissing(t, join(dir, "mbox.lock"))
			if statT(t, join(dir, "mbox")).Ino != ino {
				t.Error("mailbox was replaced instead of truncated")
			}
		})
	}
}

// halfThen returns a write seam that really writes the first half of the
// record and then fails with errno (a short write when errno is nil).
func halfThen(errno error) func(*os.File, []byte) (int, error) {
	return func(f *os.File, b []byte) (int, error) {
		n, err := f.Write(b[:len(b)/2])
		if err != nil {
			return n, err
		}
		if errno == nil {
			return n, nil
		}
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: errno}
	}
}

// TestDiskFull fills a real 64 KiB tmpfs: the kernel's ENOSPC arrives after
// part of the message is written, and the mailbox is rolled back
// (docs/behaviour.md §14.32: a real disk-full case).
func TestDiskFull(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs as root under CI: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	root, err := beneath.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	err = deliver(t, root, "mbox", "S: big\n\n"+strings.Repeat("0123456789abcdef\n", 16<<10), opts())
	checkErr(t, err, "write", join(dir, "mbox"), "error writing message: No space left on device", syscall.ENOSPC)
	assertContent(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.lock"))
	// The space is back: a small message still fits.
	if err := deliver(t, root, "mbox", "x\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestFileSizeLimit runs the delivery in a child with RLIMIT_FSIZE, the
// mechanism virtual(8) itself uses for virtual_mailbox_limit: the kernel's
// EFBIG comes mid-write (Go ignores SIGXFSZ) and the file is rolled back.
func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	_, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	cmd := helper("deliver", "MBOX_DIR="+dir, "MBOX_PATH=mbox", "MBOX_FSIZE=4096",
		"MBOX_MSG=S: big\n\n"+strings.Repeat("x", 10000)+"\n")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("delivery past RLIMIT_FSIZE succeeded: %s", out)
	}
	if got, want := string(out), "write|error writing message: File too large|EFBIG|ErrTooLarge\n"; got != want {
		t.Errorf("helper said %q, want %q", got, want)
	}
	assertContent(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.lock"))
}

// helperDeliver is the "deliver" helper process: one Deliver call set up
// from the environment; it prints "ok" or "op|reason|errno|sentinel".
func helperDeliver() int {
	if v := os.Getenv("MBOX_FSIZE"); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: n}); err != nil {
			println(err.Error())
			return 2
		}
	}
	if err := dropPrivileges(); err != nil {
		println(err.Error())
		return 2
	}
	root, err := beneath.Open(os.Getenv("MBOX_DIR"))
	if err != nil {
		println(err.Error())
		return 2
	}
	opt := Options{
		Locks:    []string{"dotlock", "flock", "fcntl"},
		Attempts: 6000,
		Delay:    10 * time.Millisecond,
		StaleAge: time.Hour,
		Now:      fixedNow,
	}
	if v := os.Getenv("MBOX_LOCKS"); v != "" {
		opt.Locks = strings.Split(v, ",")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = Deliver(ctx, root, os.Getenv("MBOX_PATH"), testSender, []byte(testHeaders), []byte(os.Getenv("MBOX_MSG")), opt)
	if err == nil {
		os.Stdout.WriteString("ok\n")
		return 0
	}
	var e *Error
	errors.As(err, &e)
	line := e.Op + "|" + err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		line += "|" + unix.ErrnoName(errno)
	}
	for _, s := range []error{ErrNotRegular, ErrLinked, ErrSymlink, ErrChanged, ErrOwner, ErrLockBusy, ErrTooLarge} {
		if errors.Is(err, s) {
			line += "|" + sentinelName(s)
		}
	}
	os.Stdout.WriteString(line + "\n")
	return 1
}

func sentinelName(err error) string {
	switch err {
	case ErrNotRegular:
		return "ErrNotRegular"
	case ErrLinked:
		return "ErrLinked"
	case ErrSymlink:
		return "ErrSymlink"
	case ErrChanged:
		return "ErrChanged"
	case ErrOwner:
		return "ErrOwner"
	case ErrLockBusy:
		return "ErrLockBusy"
	case ErrTooLarge:
		return "ErrTooLarge"
	}
	return "?"
}

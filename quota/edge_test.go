package quota

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoQuota: without a limit and without maildirsize nothing is checked or written; a
// Maildir that does not exist yet is checked against the table's limit and not created.
func TestNoQuota(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	root := openRoot(t, base)
	now := time.Now()

	r, err := Reserve(root, "u", nil, 1<<40, now)
	if err != nil || !r.Limit.Unlimited() {
		t.Fatalf("Reserve without quota: %+v, %v", r, err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(md, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("maildirsize created without a quota: %v", err)
	}
	// "0S" from the table, or as the file's first line, is no quota either.
	r, err = Reserve(root, "u", lim("0S"), 1<<40, now)
	if err != nil || !r.Limit.Unlimited() {
		t.Fatalf("Reserve with 0S: %+v, %v", r, err)
	}
	r.Cancel()
	writeFile(t, filepath.Join(md, FileName), "0S\n5 1\n", time.Time{})
	r, err = Reserve(root, "u", nil, 1<<40, now)
	if err != nil || !r.Limit.Unlimited() {
		t.Fatalf("Reserve with a 0S file: %+v, %v", r, err)
	}
	r.Done()
	if got := readFile(t, filepath.Join(md, FileName)); got != "0S\n5 1\n" {
		t.Errorf("a file without limits was changed: %q", got)
	}
	if l, u, over, err := Inspect(root, "u", nil, 1); err != nil || !l.Unlimited() || u != (Usage{}) || over {
		t.Errorf("Inspect: %v %+v %v %v", l, u, over, err)
	}

	// No Maildir yet.
	r, err = Reserve(root, "new/user", lim("100S"), 100, now)
	if err != nil || r.Limit != (Limit{Bytes: 100}) || r.Usage != (Usage{}) {
		t.Fatalf("Reserve into a missing Maildir: %+v, %v", r, err)
	}
	r.Done()
	if _, err := Reserve(root, "new/user", lim("100S"), 101, now); !errors.Is(err, ErrOverQuota) {
		t.Errorf("a message larger than the quota into a missing Maildir: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reserve created the Maildir: %v", err)
	}
	if l, u, over, err := Inspect(root, "new/user", lim("100S"), 1); err != nil || l != (Limit{Bytes: 100}) || u != (Usage{}) || over {
		t.Errorf("Inspect of a missing Maildir: %v %+v %v %v", l, u, over, err)
	}
}

// TestHostileFile: maildirsize as a symbolic link (to a file outside the base) or a FIFO
// is never read through or written through; with a limit it is replaced by a count.
func TestHostileFile(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"symlink", "fifo", "directory"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			outside := t.TempDir()
			target := filepath.Join(outside, "target")
			writeFile(t, target, "1S\n999 999\n", time.Time{})
			base := t.TempDir()
			md := maildirAt(t, base, "u")
			putMessage(t, md, "new", "a,S=10", 0)
			p := filepath.Join(md, FileName)
			var err error
			switch kind {
			case "symlink":
				err = os.Symlink(target, p)
			case "fifo":
				err = syscall.Mkfifo(p, 0o600)
			case "directory":
				err = os.Mkdir(p, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			root := openRoot(t, base)
			if kind == "directory" {
				// Neither read nor replaceable (rename(2) does not put a file over a
				// directory): an error, never a guess.
				for _, l := range []*Limit{nil, lim("100S")} {
					if r, err := Reserve(root, "u", l, 5, time.Now()); !errors.Is(err, syscall.EISDIR) {
						t.Errorf("Reserve(%v) with a directory maildirsize: %+v, %v", l, r, err)
					}
					// Inspect says what Reserve would do: the same error.
					if got, u, _, err := Inspect(root, "u", l, 1); !errors.Is(err, syscall.EISDIR) {
						t.Errorf("Inspect(%v) with a directory maildirsize: %v %+v, %v", l, got, u, err)
					}
				}
				return
			}
			// Inspect neither blocks on a FIFO nor reads through a link.
			if l, u, _, err := Inspect(root, "u", lim("100S"), 1); err != nil || l != (Limit{Bytes: 100}) || u != (Usage{10, 1}) {
				t.Errorf("Inspect: %v %+v %v", l, u, err)
			}
			// Without a limit: no quota, nothing touched.
			r, err := Reserve(root, "u", nil, 5, time.Now())
			if err != nil || !r.Limit.Unlimited() {
				t.Fatalf("Reserve: %+v, %v", r, err)
			}
			r.Done()
			r, err = Reserve(root, "u", lim("100S"), 5, time.Now())
			if err != nil || r.Usage != (Usage{10, 1}) {
				t.Fatalf("Reserve: %+v, %v", r, err)
			}
			r.Done()
			if got := readFile(t, target); got != "1S\n999 999\n" {
				t.Errorf("the link's target was changed: %q", got)
			}
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("maildirsize is %v, %v", fi, err)
			}
			if got := readFile(t, p); got != "100S\n10 1\n5 1\n" {
				t.Errorf("maildirsize %q", got)
			}
		})
	}
}

// TestOversizedWithoutLimit: a maildirsize of 5120 bytes or more is recalculated with its
// own first line as the limit, read without reading the rest.
func TestOversizedWithoutLimit(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	writeFile(t, filepath.Join(md, FileName), "777S,7C\n"+strings.Repeat("1 1\n", 100000), time.Time{})
	r, err := Reserve(openRoot(t, base), "u", nil, 5, time.Now())
	if err != nil || r.Limit != (Limit{777, 7}) || r.Usage != (Usage{10, 1}) {
		t.Fatalf("Reserve: %+v, %v", r, err)
	}
	r.Done()
	if got := readFile(t, filepath.Join(md, FileName)); got != "777S,7C\n10 1\n5 1\n" {
		t.Errorf("maildirsize %q", got)
	}
}

// TestNoTmp: a Maildir without tmp/ is counted, but no file is written there or anywhere.
func TestNoTmp(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	os.Remove(filepath.Join(md, "tmp"))
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
	if err != nil || r.Usage != (Usage{10, 1}) {
		t.Fatalf("Reserve: %+v, %v", r, err)
	}
	r.Done()
	ents, _ := os.ReadDir(md)
	if len(ents) != 2 {
		t.Errorf("the Maildir holds %v, want cur and new only", ents)
	}
}

// TestEscape: a Maildir path leaving the base, or through a link out of it, is refused.
func TestEscape(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	maildirAt(t, outside, "m")
	putMessage(t, filepath.Join(outside, "m"), "cur", "a,S=10", 0)
	base := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "m"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	root := openRoot(t, base)
	for _, dir := range []string{"../" + filepath.Base(outside) + "/m", "link", "/etc"} {
		if _, err := Reserve(root, dir, lim("100S"), 1, time.Now()); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("Reserve(%q) = %v, want an escape refused", dir, err)
		}
		if _, _, _, err := Inspect(root, dir, lim("100S"), 1); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("Inspect(%q) = %v, want an escape refused", dir, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(outside, "m", FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a maildirsize was written outside the base: %v", err)
	}
}

// TestReplacedInFlight: when maildirsize is replaced while a message is on its way (a
// recalculation by Dovecot, which does not see our lock), Done and Cancel remove the new
// file instead of trusting it or appending to it.
func TestReplacedInFlight(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"done", "cancel"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			md := maildirAt(t, base, "u")
			root := openRoot(t, base)
			r, err := Reserve(root, "u", lim("100S"), 5, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(md, FileName)
			writeFile(t, p+".new", "100S\n0 0\n", time.Time{})
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
			if end == "done" {
				err = r.Done()
			} else {
				err = r.Cancel()
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("maildirsize replaced in flight survives: %v", err)
			}
		})
	}
	// Not replaced: Done leaves the file alone.
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(md, FileName)); got != "100S\n0 0\n5 1\n" {
		t.Errorf("maildirsize %q", got)
	}
}

// TestReplacedInFlightInodeReuse: a maildirsize removed and created anew while a message
// is on its way is noticed even when the file system gives the new file the old one's
// inode number (ext4 does, once the old file is unlinked and closed): the reservation
// keeps the file it recorded in open, so its inode cannot be reused.
func TestReplacedInFlightInodeReuse(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"done", "cancel"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			md := maildirAt(t, base, "u")
			r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(md, FileName)
			os.Remove(p)
			writeFile(t, p, "100S\n0 0\n", time.Time{}) // a count without our message
			if end == "done" {
				err = r.Done()
			} else {
				err = r.Cancel()
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("maildirsize replaced in flight survives: %q", readFile(t, p))
			}
		})
	}
}

// TestLockBusy: a delivery holding its reservation keeps a second one waiting; after
// LockWait the second gives up with ErrBusy, and gets through once the first is done.
// Not parallel: it shortens LockWait.
func TestLockBusy(t *testing.T) {
	base := t.TempDir()
	maildirAt(t, base, "u")
	root := openRoot(t, base)
	first, err := Reserve(root, "u", lim("100S"), 5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := LockWait
	LockWait = 100 * time.Millisecond
	defer func() { LockWait = old }()
	start := time.Now()
	if _, err := Reserve(root, "u", lim("100S"), 5, time.Now()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Reserve while the first holds the lock: %v", err)
	}
	if time.Since(start) < LockWait {
		t.Errorf("gave up after %v, before LockWait", time.Since(start))
	}
	if _, _, _, err := Inspect(root, "u", nil, 1); err != nil {
		t.Errorf("Inspect waits for the lock: %v", err)
	}
	first.Done()
	second, err := Reserve(root, "u", lim("100S"), 5, time.Now())
	if err != nil || second.Usage != (Usage{5, 1}) {
		t.Fatalf("Reserve after Done: %+v, %v", second, err)
	}
	second.Cancel()
}

// TestNoQuotaNoLock: without a limit and without maildirsize, Reserve takes no lock, so
// a lock held on the Maildir by anyone never holds back mail for a user without a quota.
// Not parallel: it shortens LockWait.
func TestNoQuotaNoLock(t *testing.T) {
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	d, err := os.Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := LockWait
	LockWait = 100 * time.Millisecond
	defer func() { LockWait = old }()
	r, err := Reserve(openRoot(t, base), "u", nil, 5, time.Now())
	if err != nil || !r.Limit.Unlimited() {
		t.Fatalf("Reserve without a quota while the Maildir is locked: %+v, %v", r, err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(md, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("maildirsize created without a quota: %v", err)
	}
}

// TestLockByOtherUser: no user but the Maildir's owner (and root) can make deliveries
// wait and defer by holding a lock: a Maildir open to all is not locked, and for a
// Maildir not created yet no directory above it is (here the base, 0755, held by
// nobody). Not parallel: it shortens LockWait.
func TestLockByOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run flock(1) as another user")
	}
	for _, c := range []struct {
		name, dir, lockDir string
		maildir            bool
	}{
		{"ancestor", "example.com/newuser", "", false},
		{"maildir", "example.com/u", "example.com/u", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			os.Chmod(filepath.Dir(base), 0o755)
			os.Chmod(base, 0o755)
			if c.maildir {
				md := maildirAt(t, base, c.dir)
				os.Chmod(filepath.Dir(md), 0o755)
				os.Chmod(md, 0o755)
			}
			cmd := exec.Command("flock", "-s", filepath.Join(base, c.lockDir), "sleep", "3")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			time.Sleep(300 * time.Millisecond)
			old := LockWait
			LockWait = time.Second
			defer func() { LockWait = old }()
			r, err := Reserve(openRoot(t, base), c.dir, lim("1000S"), 10, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Done(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPartialLine: a maildirsize whose last line has no newline (an append cut short) is
// recalculated before a delta is appended, or the delta would merge with the partial
// line into a wrong one ("-" and "300 1" making "-300 1").
func TestPartialLine(t *testing.T) {
	t.Parallel()
	for _, partial := range []string{"-", "12", "100 1"} {
		t.Run(partial, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			md := maildirAt(t, base, "u")
			putMessage(t, md, "cur", "a,S=250:2,", 0)
			putMessage(t, md, "cur", "b,S=250:2,", 0)
			p := filepath.Join(md, FileName)
			writeFile(t, p, "1000S\n500 2\n"+partial, time.Time{})
			r, err := Reserve(openRoot(t, base), "u", lim("1000S"), 300, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			putMessage(t, md, "new", "c,S=300", 0)
			if err := r.Done(); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p); got != "1000S\n500 2\n300 1\n" {
				t.Errorf("maildirsize %q", got)
			}
		})
	}
}

// TestRecountAfterChange: a message that arrives between a recalculation's count and its
// rename (from a program that takes no lock) makes the count be repeated, and the file
// then counts it. Not parallel: it sets the hook.
func TestRecountAfterChange(t *testing.T) {
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	attempts := 0
	counted = func(attempt int) {
		attempts++
		if attempt == 0 {
			tick()
			putMessage(t, md, "new", "b,S=20", 0)
		}
	}
	defer func() { counted = nil }()
	r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("%d counts, want 2", attempts)
	}
	if r.Usage != (Usage{30, 2}) {
		t.Errorf("usage %+v, want the message that came meanwhile counted", r.Usage)
	}
	if got := readFile(t, filepath.Join(md, FileName)); got != "100S\n30 2\n5 1\n" {
		t.Errorf("maildirsize %q", got)
	}
}

// TestRecalcGivesUp: when the Maildir changes during every count, the recalculation
// gives up after three and removes maildirsize, so that the next reader counts again;
// the last count decides this delivery. Not parallel: it sets the hook.
func TestRecalcGivesUp(t *testing.T) {
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	attempts := 0
	counted = func(attempt int) {
		attempts++
		tick()
		putMessage(t, md, "new", fmt.Sprintf("b%d,S=20", attempt), 0)
	}
	defer func() { counted = nil }()
	r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if attempts != 3 {
		t.Errorf("%d counts, want 3", attempts)
	}
	if r.Usage != (Usage{50, 3}) {
		t.Errorf("usage %+v, want the last count", r.Usage)
	}
	if _, err := os.Lstat(filepath.Join(md, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("maildirsize left after three changing counts: %v", err)
	}
}

// TestCountFollowsNoLink: a count never follows a symbolic link: not a folder that is a
// link out of the base, not a folder's cur/ that is one, not a message that is one (it
// counts with the link's own size, never its target's).
func TestCountFollowsNoLink(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	big := filepath.Join(outside, "big")
	writeFile(t, big, strings.Repeat("x", 100000), time.Time{})
	evil := maildirAt(t, outside, "evil")
	putMessage(t, evil, "cur", "e,S=1000:2,", 0)
	putMessage(t, evil, "new", "f", 3000)
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	for _, l := range []struct{ target, name string }{
		{evil, filepath.Join(md, ".evil")},
		{filepath.Join(evil, "new"), filepath.Join(md, ".f", "cur")},
		{big, filepath.Join(md, "cur", "link:2,")},
	} {
		os.MkdirAll(filepath.Dir(l.name), 0o700)
		if err := os.Symlink(l.target, l.name); err != nil {
			t.Fatal(err)
		}
	}
	want := Usage{10 + int64(len(big)), 2}
	if got := recount(t, md); got != want {
		t.Errorf("count %+v, want %+v", got, want)
	}
	r, err := Reserve(openRoot(t, base), "u", lim("1000000S"), 5, time.Now())
	if err != nil || r.Usage != want {
		t.Errorf("Reserve: %+v, %v; want usage %+v", r, err, want)
	}
	r.Done()
}

// TestDotDotNames: names in cur/ and new/ that start with ".." are no messages, as
// Dovecot skips them when it counts; other names starting with '.' are counted, as
// Dovecot counts them.
func TestDotDotNames(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	putMessage(t, md, "cur", "..b,S=100:2,", 0)
	putMessage(t, md, "new", "..c", 1000)
	putMessage(t, md, "new", ".d,S=20", 0)
	if got, want := recount(t, md), (Usage{30, 2}); got != want {
		t.Errorf("count %+v, want %+v", got, want)
	}
}

// tick lets the kernel's clock for file times move on: without multigrain timestamps
// (Linux before 6.13) a directory changed within the same tick as it was looked at
// keeps its time.
func tick() { time.Sleep(20 * time.Millisecond) }

// TestChangedWhileCounting: the directory times catch a message added after the count.
func TestChangedWhileCounting(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, ".f/cur", "a,S=1", 0)
	d, err := os.Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, stamps, err := count(d, "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(stamps) != 3 { // new/ cur/ .f/cur (.f has no new/)
		t.Errorf("stamps %+v", stamps)
	}
	if changed, err := changedSince(d, stamps); changed || err != nil {
		t.Fatalf("changed %v, %v before any change", changed, err)
	}
	putMessage(t, md, ".f/cur", "b,S=1", 0)
	if changed, err := changedSince(d, stamps); !changed || err != nil {
		t.Errorf("changed %v, %v after a message was added", changed, err)
	}
}

func writeFile(t *testing.T, p, s string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMode: maildirsize gets the Maildir's read and write bits and always the owner's,
// as Dovecot gives the files it creates in a mailbox, whatever the umask.
func TestMode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dir, file os.FileMode }{{0o700, 0o600}, {0o750, 0o640}, {0o771, 0o660}, {0o500, 0o600}} {
		base := t.TempDir()
		md := maildirAt(t, base, "u")
		if err := os.Chmod(md, c.dir); err != nil {
			t.Fatal(err)
		}
		r, err := Reserve(openRoot(t, base), "u", lim("100S"), 5, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.Done()
		if fi, err := os.Stat(filepath.Join(md, FileName)); err != nil || fi.Mode().Perm() != c.file {
			t.Errorf("Maildir %v: maildirsize %v, %v; want %v", c.dir, fi.Mode(), err, c.file)
		}
	}
}

// TestFolder: a delivery into a Maildir++ folder counts against the Maildir above it,
// whether the folder has its maildirfolder marker, has none yet (a folder being created:
// Courier, Dovecot and maildir write the marker after cur/ new/ tmp/) or does not exist
// yet; a directory named like a folder is a Maildir of its own only when the directory
// above it is no Maildir (has no cur/).
func TestFolder(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	md := maildirAt(t, base, "u")
	putMessage(t, md, "cur", "a,S=10:2,", 0)
	putMessage(t, md, ".lists/cur", "b,S=20:2,", 0)
	writeFile(t, filepath.Join(md, ".lists", folderMarker), "", time.Time{})
	maildirAt(t, base, "u/.plain")
	putMessage(t, md, ".plain/new", "c,S=40", 0)
	top := maildirAt(t, base, ".top")
	putMessage(t, top, "new", "d,S=80", 0)
	root := openRoot(t, base)
	for _, c := range []struct {
		dir   string
		usage Usage
		file  string
	}{
		{"u/.lists/", Usage{70, 3}, "u/maildirsize"},
		{"u/.new-folder", Usage{70, 3}, "u/maildirsize"},
		{"u/.plain", Usage{70, 3}, "u/maildirsize"},
		{".top", Usage{80, 1}, ".top/maildirsize"},
	} {
		os.Remove(filepath.Join(md, FileName))
		if p := Path(root, c.dir); p != c.file {
			t.Errorf("Path(%q) = %q, want %q", c.dir, p, c.file)
		}
		r, err := Reserve(root, c.dir, lim("100S"), 5, time.Now())
		if err != nil || r.Usage != c.usage {
			t.Errorf("Reserve(%q): %+v, %v; want usage %+v", c.dir, r, err, c.usage)
			continue
		}
		r.Cancel()
		if _, err := os.Stat(filepath.Join(base, c.file)); err != nil {
			t.Errorf("Reserve(%q) wrote no %s: %v", c.dir, c.file, err)
		}
		if _, u, _, err := Inspect(root, c.dir, lim("100S"), 1); err != nil || u != c.usage {
			t.Errorf("Inspect(%q): %+v, %v; want %+v", c.dir, u, err, c.usage)
		}
	}
	for _, f := range []string{".lists", ".plain"} {
		if _, err := os.Stat(filepath.Join(md, f, FileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a maildirsize in the folder %s: %v", f, err)
		}
	}
}

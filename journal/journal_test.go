package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func stateDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustOpen(t *testing.T, dir, id string, opt Options) *Journal {
	t.Helper()
	j, err := Open(dir, id, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var t0 = time.Unix(1_700_000_000, 0)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecordDoneForget(t *testing.T) {
	dir := stateDir(t)
	j := mustOpen(t, dir, "4AbC1", Options{Now: fixedClock(t0)})
	if j.Done("team@example.com", "mailbox:alice/") {
		t.Fatal("Done before Record")
	}
	if _, err := os.Lstat(filepath.Join(dir, "4AbC1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created the journal: %v", err)
	}
	for _, d := range []string{"mailbox:alice/", "forward:bob@example.org", "mailbox:alice/"} {
		if err := j.Record("team@example.com", d); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Record("other@example.com", "mailbox:alice/"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "4AbC1")
	want := "vdeliver-journal 1 1700000000\n" +
		"team@example.com\tmailbox:alice/\n" +
		"team@example.com\tforward:bob@example.org\n" +
		"other@example.com\tmailbox:alice/\n"
	if got := readFile(t, p); got != want {
		t.Fatalf("journal file:\n%q\nwant\n%q", got, want)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Fatalf("mode %v, want -rw-------", fi.Mode())
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
		t.Fatalf("owner %d, want euid %d", uid, os.Geteuid())
	}

	// A retry (a new process) sees what the first run recorded, per recipient.
	j2 := mustOpen(t, dir, "4AbC1", Options{Now: fixedClock(t0.Add(time.Hour))})
	for _, c := range []struct {
		rcpt, dest string
		want       bool
	}{
		{"team@example.com", "mailbox:alice/", true},
		{"team@example.com", "forward:bob@example.org", true},
		{"team@example.com", "mailbox:bob/", false},
		{"other@example.com", "mailbox:alice/", true},
		{"other@example.com", "forward:bob@example.org", false},
	} {
		if got := j2.Done(c.rcpt, c.dest); got != c.want {
			t.Errorf("Done(%q, %q) = %v, want %v", c.rcpt, c.dest, got, c.want)
		}
	}
	// The creation time is kept across updates.
	if err := j2.Record("team@example.com", "mailbox:bob/"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got[:len("vdeliver-journal 1 1700000000\n")] != "vdeliver-journal 1 1700000000\n" {
		t.Fatalf("header changed: %q", got)
	}
	if err := j2.Forget("team@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, p), "vdeliver-journal 1 1700000000\nother@example.com\tmailbox:alice/\n"; got != want {
		t.Fatalf("after Forget(team):\n%q\nwant\n%q", got, want)
	}
	if err := j2.Forget("other@example.com"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("state directory not empty after the last Forget: %v", ents)
	}
	if err := j2.Forget("nobody@example.com"); err != nil {
		t.Fatalf("Forget without a file: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	dir := stateDir(t)
	for _, id := range []string{"", "../x", "a/b", ".hidden", "x.tmp", "a b", string(make([]byte, 65))} {
		if _, err := Open(dir, id, Options{}); !errors.Is(err, ErrQueueID) {
			t.Errorf("Open(%q) = %v, want ErrQueueID", id, err)
		}
	}
	for _, id := range []string{"4AbC1", "3f0a1b2c", "1a2B3c-000ABC-Xy", "x"} {
		if !ValidQueueID(id) {
			t.Errorf("ValidQueueID(%q) = false", id)
		}
	}
	j := mustOpen(t, dir, "Q1", Options{})
	for _, e := range [][2]string{{"", "d"}, {"r", ""}, {"r\n", "d"}, {"r", "d\tx"}, {"r", "d\x7f"}} {
		if err := j.Record(e[0], e[1]); !errors.Is(err, ErrEntry) {
			t.Errorf("Record(%q, %q) = %v, want ErrEntry", e[0], e[1], err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "Q1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused Record wrote the journal: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), "Q1", Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open in a missing directory = %v, want ErrNotExist", err)
	}
}

func TestCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"no header":        "team@example.com\tmailbox:a/\n",
		"bad time":         "vdeliver-journal 1 yesterday\n",
		"no tab":           "vdeliver-journal 1 5\nteam@example.com mailbox:a/\n",
		"empty dest":       "vdeliver-journal 1 5\nteam@example.com\t\n",
		"unterminated":     "vdeliver-journal 1 5\nteam@example.com\tmailbox:a/",
		"empty file":       "",
		"other version":    "vdeliver-journal 2 5\n",
		"control in entry": "vdeliver-journal 1 5\nteam@example.com\tmailbox:\ra/\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := stateDir(t)
			if err := os.WriteFile(filepath.Join(dir, "Q1"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

// The atomic update: a failure at any step leaves the previous journal byte for byte and
// no temporary file; each successful Record syncs the file and then the directory.
func TestRecordSyncsAndRollsBack(t *testing.T) {
	dir := stateDir(t)
	var calls []string
	var failFile, failDir error
	oldFile, oldDir := syncFile, syncDir
	t.Cleanup(func() { syncFile, syncDir = oldFile, oldDir })
	syncFile = func(f *os.File) error {
		calls = append(calls, "file "+filepath.Base(f.Name()))
		if failFile != nil {
			return failFile
		}
		return f.Sync()
	}
	syncDir = func(f *os.File) error {
		calls = append(calls, "dir")
		if failDir != nil {
			return failDir
		}
		return f.Sync()
	}
	j := mustOpen(t, dir, "Q1", Options{Now: fixedClock(t0)})
	if err := j.Record("r@x", "mailbox:a/"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[file .Q1.tmp dir]" {
		t.Fatalf("syncs = %v, want the temporary file, then the directory", calls)
	}
	before := readFile(t, filepath.Join(dir, "Q1"))

	failFile = syscall.EIO
	if err := j.Record("r@x", "mailbox:b/"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Record with a failing fsync = %v, want EIO", err)
	}
	if got := readFile(t, filepath.Join(dir, "Q1")); got != before {
		t.Fatalf("journal changed by a failed Record:\n%q\nwant\n%q", got, before)
	}
	assertOnly(t, dir, "Q1")
	if j.Done("r@x", "mailbox:b/") {
		t.Fatal("Done reports an entry whose Record failed")
	}

	failFile = nil
	// A temporary file left by a crash is replaced, not appended to or refused.
	if err := os.WriteFile(filepath.Join(dir, ".Q1.tmp"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := j.Record("r@x", "mailbox:b/"); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "Q1")

	failDir = syscall.EIO
	if err := j.Forget("r@x"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Forget with a failing directory fsync = %v, want EIO", err)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestExpiry(t *testing.T) {
	dir := stateDir(t)
	day := 24 * time.Hour
	now := t0.Add(10 * day)
	opt := Options{MaxAge: 5 * day, Now: fixedClock(now)}
	write := func(name, content string, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := fmt.Sprintf("vdeliver-journal 1 %d\nr@x\tmailbox:a/\n", t0.Unix())
	fresh := fmt.Sprintf("vdeliver-journal 1 %d\nr@x\tmailbox:a/\n", now.Add(-day).Unix())
	write("OLD1", old, t0)                    // expired: removed
	write(".OLD2.tmp", "x", t0)               // a crash's leftover: removed
	write("NEW1", fresh, now.Add(-day))       // kept
	write("notajournal.txt", "x", t0)         // not ours: kept
	write("REUSED", old, now.Add(-time.Hour)) // our id, recently touched but created too long ago
	j := mustOpen(t, dir, "REUSED", opt)
	if j.Done("r@x", "mailbox:a/") {
		t.Fatal("a journal older than MaxAge still counts: a reused queue id would skip a mailbox")
	}
	assertOnly(t, dir, "NEW1", "notajournal.txt")
	j2 := mustOpen(t, dir, "NEW1", opt)
	if !j2.Done("r@x", "mailbox:a/") {
		t.Fatal("a fresh journal was lost")
	}
	// MaxAge 0 keeps everything.
	write("OLD3", old, t0)
	mustOpen(t, dir, "NEW1", Options{Now: fixedClock(now)})
	assertOnly(t, dir, "NEW1", "OLD3", "notajournal.txt")
}

// Parallel runs for the same queue id (one process per recipient under Postfix) never
// lose each other's entries: each read-modify-write holds the directory lock.
func TestConcurrentRecords(t *testing.T) {
	dir := stateDir(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := Open(dir, "Q1", Options{})
			if err != nil {
				errs <- err
				return
			}
			defer j.Close()
			for k := range 3 {
				if err := j.Record(fmt.Sprintf("r%d@x", i), fmt.Sprintf("mailbox:%d/", k)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	j := mustOpen(t, dir, "Q1", Options{})
	for i := range n {
		for k := range 3 {
			if !j.Done(fmt.Sprintf("r%d@x", i), fmt.Sprintf("mailbox:%d/", k)) {
				t.Errorf("entry r%d@x mailbox:%d/ lost", i, k)
			}
		}
	}
}

func TestLockTimeout(t *testing.T) {
	dir := stateDir(t)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Open(dir, "Q1", Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Open with the directory locked elsewhere = %v, want ErrBusy", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 5*time.Second {
		t.Fatalf("waited %v for a 100ms lock timeout", el)
	}
}

// The run's deadline ends the wait before LockTimeout would: otherwise pipe(8)'s time limit
// kills the delivery, which bounces instead of deferring.
func TestLockDeadline(t *testing.T) {
	dir := stateDir(t)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	opt := Options{LockTimeout: time.Hour, Deadline: time.Now().Add(50 * time.Millisecond)}
	if _, err := Open(dir, "Q1", opt); !errors.Is(err, ErrBusy) {
		t.Fatalf("Open with the directory locked elsewhere = %v, want ErrBusy", err)
	}
}

// Ownership: whatever another user could have put there is refused, never believed.
func TestOwnershipRefusals(t *testing.T) {
	t.Run("group-writable dir", func(t *testing.T) {
		dir := stateDir(t)
		if err := os.Chmod(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrMode) {
			t.Fatalf("Open = %v, want ErrMode", err)
		}
	})
	t.Run("symlink journal", func(t *testing.T) {
		dir := stateDir(t)
		target := filepath.Join(t.TempDir(), "elsewhere")
		if err := os.WriteFile(target, []byte("vdeliver-journal 1 5\nr@x\tmailbox:a/\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "Q1")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("Open = %v, want ErrNotRegular", err)
		}
	})
	t.Run("hard-linked journal", func(t *testing.T) {
		dir := stateDir(t)
		p := filepath.Join(dir, "Q1")
		if err := os.WriteFile(p, []byte("vdeliver-journal 1 5\nr@x\tmailbox:a/\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(p, filepath.Join(dir, "lure")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrLinked) {
			t.Fatalf("Open = %v, want ErrLinked", err)
		}
	})
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot chown files to another uid to test the owner checks")
	}
	t.Run("journal of another uid", func(t *testing.T) {
		dir := stateDir(t)
		p := filepath.Join(dir, "Q1")
		if err := os.WriteFile(p, []byte("vdeliver-journal 1 5\nr@x\tmailbox:a/\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrOwner) {
			t.Fatalf("Open = %v, want ErrOwner", err)
		}
	})
	t.Run("dir of another uid", func(t *testing.T) {
		dir := stateDir(t)
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, "Q1", Options{}); !errors.Is(err, ErrOwner) {
			t.Fatalf("Open = %v, want ErrOwner", err)
		}
	})
}

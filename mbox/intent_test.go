package mbox

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// bigMsg is a message whose record is large enough that half of it is
// thousands of bytes: a fragment no reader could mistake for nothing.
var bigMsg = "Subject: big\n\n" + strings.Repeat("a line of the torn message\n", 400) + "last\n"

// sep is what Deliver puts before its record after content: "\n\n" when
// content does not end a line.
func sep(content string) string {
	if content != "" && !strings.HasSuffix(content, "\n") {
		return "\n\n"
	}
	return ""
}

// assertMbox is assertContent for long contents: it reports sizes and the
// first differing offset instead of both contents.
func assertMbox(t *testing.T, name, want string) {
	t.Helper()
	got := readFile(t, name)
	if got == want {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: %d bytes, want %d; first difference at %d: got %.40q, want %.40q", name, len(got), len(want), i, got[i:], want[i:])
}

// tornDelivery runs Deliver in a child process (this test binary) whose
// record write stops after half the record and SIGKILLs itself: a real kill
// in the middle of the append, with its locks and intent record left behind
// as the kernel leaves them. It returns the fragment that was left.
func tornDelivery(t *testing.T, dir, msg string) string {
	t.Helper()
	cmd := helper("deliver-torn", "MBOX_DIR="+dir, "MBOX_PATH=mbox", "MBOX_MSG="+msg)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("torn delivery was not killed: %v, output %q", err, out)
	}
	rec := want(msg)
	return rec[:len(rec)/2]
}

// helperTorn is the "deliver-torn" helper job.
func helperTorn() int {
	writeFile = func(f *os.File, b []byte) (int, error) {
		f.Write(b[:len(b)/2])
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return helperDeliver()
}

// putIntent writes an intent record as writeIntent would, for the file with
// status st, old size size and record rec.
func putIntent(t *testing.T, name string, st *syscall.Stat_t, size int64, rec string) {
	t.Helper()
	in := intent{dev: uint64(st.Dev), ino: st.Ino, size: size, length: int64(len(rec)), sum: intentSum([]byte(rec))}
	putFile(t, name, string(in.header())+rec, 0o600)
}

// TestTornWriteRecovered: a delivery killed in the middle of its write
// leaves a fragment and its intent record; the next delivery cuts the
// fragment off, so the mailbox holds the old content and the new message and
// nothing else.
func TestTornWriteRecovered(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	frag := tornDelivery(t, dir, bigMsg)
	assertMbox(t, join(dir, "mbox"), oldContent+frag)
	if _, err := os.Stat(join(dir, "mbox.vdeliver-append")); err != nil {
		t.Fatalf("the killed delivery left no intent record: %v", err)
	}
	// The stale dotlock of the dead process.
	if err := os.Remove(join(dir, "mbox.lock")); err != nil {
		t.Fatal(err)
	}
	if err := deliver(t, root, "mbox", "S: next\n\nnext\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertMbox(t, join(dir, "mbox"), oldContent+want("S: next\n\nnext\n"))
	assertMissing(t, join(dir, "mbox.vdeliver-append"))
	assertMissing(t, join(dir, "mbox.lock"))
}

// TestTornWriteNewMailbox: a fragment in a mailbox the killed delivery
// created is cut back to an empty file.
func TestTornWriteNewMailbox(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	frag := tornDelivery(t, dir, bigMsg)
	assertMbox(t, join(dir, "mbox"), frag)
	os.Remove(join(dir, "mbox.lock"))
	if err := deliver(t, root, "mbox", "S: next\n\nnext\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertMbox(t, join(dir, "mbox"), want("S: next\n\nnext\n"))
	assertMissing(t, join(dir, "mbox.vdeliver-append"))
}

// TestRecoveryCases: what recovery does with each state a killed delivery
// (or anything else) can leave. The intent record is built as writeIntent
// writes it; the mailbox bytes are set up around it.
func TestRecoveryCases(t *testing.T) {
	rec := want(bigMsg)
	half := rec[:len(rec)/2]
	foreign := "From other@x  Mon Jan  1 00:00:00 2024\nS: foreign\n\nforeign\n\n"
	next := want("S: next\n\nnext\n")
	tests := []struct {
		name    string
		mailbox string
		// intent sets up the record; nil means use the mailbox's own
		// status, old size len(oldContent) and record rec.
		intent     func(t *testing.T, dir string, st *syscall.Stat_t)
		want       string
		keepIntent bool
	}{
		{
			name:    "fragment truncated",
			mailbox: oldContent + half,
			want:    oldContent + next,
		},
		{
			name:    "one byte of fragment truncated",
			mailbox: oldContent + rec[:1],
			want:    oldContent + next,
		},
		{
			name:    "all but one byte truncated",
			mailbox: oldContent + rec[:len(rec)-1],
			want:    oldContent + next,
		},
		{
			// Killed after the fsync, before the record was removed:
			// the delivery may never have been reported, but a whole
			// message is kept (a duplicate at worst, never a loss).
			name:    "complete message kept",
			mailbox: oldContent + rec,
			want:    oldContent + rec + next,
		},
		{
			name:    "nothing written",
			mailbox: oldContent,
			want:    oldContent + next,
		},
		{
			// Another MDA appended after the fragment, and the file is
			// still shorter than our whole record: only a byte
			// comparison tells, and it must keep the foreign message.
			name:    "foreign data after the fragment kept",
			mailbox: oldContent + half + foreign,
			want:    oldContent + half + foreign + next,
		},
		{
			name:    "grown past the record kept",
			mailbox: oldContent + half + foreign + strings.Repeat("x\n", len(rec)) + "\n",
			want:    oldContent + half + foreign + strings.Repeat("x\n", len(rec)) + "\n" + next,
		},
		{
			name:    "bytes that are not the record kept",
			mailbox: oldContent + strings.Replace(half, "torn", "TORN", 1),
			want:    oldContent + strings.Replace(half, "torn", "TORN", 1) + sep(half) + next,
		},
		{
			name:    "shrunk below the old size kept",
			mailbox: oldContent[:10],
			want:    oldContent[:10] + sep(oldContent[:10]) + next,
		},
		{
			// The mailbox was replaced (a POP daemon rewrote it): the
			// record describes an inode that is gone.
			name:    "wrong inode",
			mailbox: oldContent + half,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				other := *st
				other.Ino++
				putIntent(t, join(dir, "mbox.vdeliver-append"), &other, int64(len(oldContent)), rec)
			},
			want: oldContent + half + sep(half) + next,
		},
		{
			name:    "wrong device",
			mailbox: oldContent + half,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				other := *st
				other.Dev++
				putIntent(t, join(dir, "mbox.vdeliver-append"), &other, int64(len(oldContent)), rec)
			},
			want: oldContent + half + sep(half) + next,
		},
		{
			// Killed while writing the record itself: the mailbox was
			// not touched yet.
			name:    "intent record cut short",
			mailbox: oldContent,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				in := intent{dev: uint64(st.Dev), ino: st.Ino, size: int64(len(oldContent)), length: int64(len(rec)), sum: intentSum([]byte(rec))}
				putFile(t, join(dir, "mbox.vdeliver-append"), string(in.header())+rec[:100], 0o600)
			},
			want: oldContent + next,
		},
		{
			// A record whose copy does not match its hash is not
			// believed, even when the mailbox matches the copy.
			name:    "intent record corrupt",
			mailbox: oldContent + half,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				in := intent{dev: uint64(st.Dev), ino: st.Ino, size: int64(len(oldContent)), length: int64(len(rec)), sum: intentSum([]byte(rec))}
				putFile(t, join(dir, "mbox.vdeliver-append"), string(in.header())+half+strings.Repeat("?", len(rec)-len(half)), 0o600)
			},
			want: oldContent + half + sep(half) + next,
		},
		{
			name:    "intent record empty",
			mailbox: oldContent,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				putFile(t, join(dir, "mbox.vdeliver-append"), "", 0o600)
			},
			want: oldContent + next,
		},
		{
			// A hard link named like the record: it could be a
			// link to a record of another mailbox.
			name:    "intent record with two links",
			mailbox: oldContent + half,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				putIntent(t, join(dir, "mbox.vdeliver-append"), st, int64(len(oldContent)), rec)
				if err := os.Link(join(dir, "mbox.vdeliver-append"), join(dir, "other")); err != nil {
					t.Fatal(err)
				}
			},
			want:       oldContent + half + sep(half) + next,
			keepIntent: true,
		},
		{
			// A symlink named like the record is never followed, and
			// as it is not ours it stays; the delivery goes on without
			// a record.
			name:    "intent name is a symlink",
			mailbox: oldContent + half,
			intent: func(t *testing.T, dir string, st *syscall.Stat_t) {
				putIntent(t, join(dir, "target"), st, int64(len(oldContent)), rec)
				if err := os.Symlink("target", join(dir, "mbox.vdeliver-append")); err != nil {
					t.Fatal(err)
				}
			},
			want:       oldContent + half + sep(half) + next,
			keepIntent: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), tc.mailbox, 0o600)
			st := statT(t, join(dir, "mbox"))
			if tc.intent != nil {
				tc.intent(t, dir, st)
			} else {
				putIntent(t, join(dir, "mbox.vdeliver-append"), st, int64(len(oldContent)), rec)
			}
			if err := deliver(t, root, "mbox", "S: next\n\nnext\n", opts()); err != nil {
				t.Fatal(err)
			}
			assertMbox(t, join(dir, "mbox"), tc.want)
			if tc.keepIntent {
				if _, err := os.Lstat(join(dir, "mbox.vdeliver-append")); err != nil {
					t.Errorf("intent name was removed: %v", err)
				}
			} else {
				assertMissing(t, join(dir, "mbox.vdeliver-append"))
			}
		})
	}
}

// TestRecoveryForeignOwner: a record owned by another uid is neither
// believed nor removed (in a shared directory it could be forged to cut off
// the end of someone's mailbox); the delivery goes on without a record.
func TestRecoveryForeignOwner(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root, dir := newRoot(t)
	rec := want(bigMsg)
	half := rec[:len(rec)/2]
	putFile(t, join(dir, "mbox"), oldContent+half, 0o600)
	name := join(dir, "mbox.vdeliver-append")
	putIntent(t, name, statT(t, join(dir, "mbox")), int64(len(oldContent)), rec)
	if err := os.Chown(name, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, name)
	if err := deliver(t, root, "mbox", "S: next\n\nnext\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertMbox(t, join(dir, "mbox"), oldContent+half+sep(half)+want("S: next\n\nnext\n"))
	assertContent(t, name, before)
}

// TestRecoveryNeedsLock: without any lock neither recovery nor a record:
// the bytes after the old size could be another delivery's write in
// progress.
func TestRecoveryNeedsLock(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	rec := want(bigMsg)
	half := rec[:len(rec)/2]
	putFile(t, join(dir, "mbox"), oldContent+half, 0o600)
	name := join(dir, "mbox.vdeliver-append")
	putIntent(t, name, statT(t, join(dir, "mbox")), int64(len(oldContent)), rec)
	before := readFile(t, name)
	opt := opts()
	opt.Locks = nil
	if err := deliver(t, root, "mbox", "S: next\n\nnext\n", opt); err != nil {
		t.Fatal(err)
	}
	assertMbox(t, join(dir, "mbox"), oldContent+half+sep(half)+want("S: next\n\nnext\n"))
	assertContent(t, name, before)
}

// TestIntentWritten: during the append the record is on disk with the exact
// header and a copy of the record; after the fsync it is gone. The mailbox
// bytes are virtual(8)'s, unchanged by the record.
func TestIntentWritten(t *testing.T) {
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	st := statT(t, join(dir, "mbox"))
	var seen string
	realWrite := writeFile
	writeFile = func(f *os.File, b []byte) (int, error) {
		seen = readFile(t, join(dir, "mbox.vdeliver-append"))
		return realWrite(f, b)
	}
	t.Cleanup(func() { writeFile = realWrite })
	if err := deliver(t, root, "mbox", "S: x\n\nbody\n", opts()); err != nil {
		t.Fatal(err)
	}
	rec := want("S: x\n\nbody\n")
	in := intent{dev: uint64(st.Dev), ino: st.Ino, size: int64(len(oldContent)), length: int64(len(rec)), sum: intentSum([]byte(rec))}
	if w := string(in.header()) + rec; seen != w {
		t.Errorf("intent record during the write:\n got %q\nwant %q", seen, w)
	}
	if !strings.HasPrefix(seen, "vdeliver-append 2\ndev ") {
		t.Errorf("intent record header %q", seen[:min(len(seen), 40)])
	}
	assertMbox(t, join(dir, "mbox"), oldContent+rec)
	assertMissing(t, join(dir, "mbox.vdeliver-append"))
}

// TestIntentFailsOpen: when the record cannot be written (EIO, ENOSPC,
// EDQUOT...), the delivery goes on as virtual(8)'s and leaves no record.
func TestIntentFailsOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*os.File, []byte) (int, error)
		sync  func(*os.File) error
	}{
		{name: "write EIO", write: func(*os.File, []byte) (int, error) { return 0, syscall.EIO }},
		{name: "write ENOSPC halfway", write: halfThen(syscall.ENOSPC)},
		{name: "fsync EIO", sync: func(*os.File) error { return syscall.EIO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			rw, rs := writeIntentFile, syncIntentFile
			t.Cleanup(func() { writeIntentFile, syncIntentFile = rw, rs })
			if tc.write != nil {
				writeIntentFile = tc.write
			}
			if tc.sync != nil {
				syncIntentFile = tc.sync
			}
			if err := deliver(t, root, "mbox", "S: x\n\nbody\n", opts()); err != nil {
				t.Fatal(err)
			}
			assertMbox(t, join(dir, "mbox"), oldContent+want("S: x\n\nbody\n"))
			assertMissing(t, join(dir, "mbox.vdeliver-append"))
		})
	}
}

// TestIntentAfterRollback: a failed write is rolled back and its record
// removed; a record is kept only when the roll-back itself could not be
// done, which TestRecoveryCases covers from the other side.
func TestIntentAfterRollback(t *testing.T) {
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	rw := writeFile
	t.Cleanup(func() { writeFile = rw })
	writeFile = halfThen(syscall.EIO)
	err := deliver(t, root, "mbox", bigMsg, opts())
	checkErr(t, err, "write", join(dir, "mbox"), "error writing message: Input/output error", syscall.EIO)
	assertMbox(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.vdeliver-append"))
}

// TestUnwritableDirectory: with dotlock disabled, a mailbox in a directory
// the recipient cannot write to is still delivered, without a record (and so
// with virtual(8)'s hole for a kill mid-write). As root the delivery runs in
// a child as uid 5000 beside a root-owned directory.
func TestUnwritableDirectory(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parents are 0700, closed to uid 5000.
	top, err := os.MkdirTemp("", "mbox-unwritable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(join(top, "spool"), 0o755); os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	mdir := join(top, "spool")
	mkdirAll(t, mdir, 0o755)
	putFile(t, join(mdir, "mbox"), oldContent, 0o600)
	var drop string
	if os.Geteuid() == 0 {
		if err := os.Chown(join(mdir, "mbox"), 5000, 5000); err != nil {
			t.Fatal(err)
		}
		drop = "MBOX_SETUID=5000"
	} else if err := os.Chmod(mdir, 0o555); err != nil {
		t.Fatal(err)
	}
	// Prove the directory really refuses the recipient.
	if out, err := helper("create", "MBOX_FILE="+join(mdir, "probe"), drop).CombinedOutput(); err == nil || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("the directory is writable for the delivery: %v %q", err, out)
	}
	out, err := helper("deliver", "MBOX_DIR="+mdir, "MBOX_PATH=mbox", "MBOX_LOCKS=fcntl", "MBOX_MSG=S: x\n\nbody\n", drop).CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("delivery: %v %q", err, out)
	}
	assertContent(t, join(mdir, "mbox"), oldContent+want("S: x\n\nbody\n"))
	assertMissing(t, join(mdir, "mbox.vdeliver-append"))
}

// dropPrivileges is how the helpers become MBOX_SETUID (uid and gid), on
// every thread, before touching anything.
func dropPrivileges() error {
	v := os.Getenv("MBOX_SETUID")
	if v == "" {
		return nil
	}
	id, err := strconv.Atoi(v)
	if err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(id); err != nil {
		return err
	}
	return syscall.Setuid(id)
}

// helperCreate is the "create" helper job: create MBOX_FILE exclusively.
func helperCreate() int {
	if err := dropPrivileges(); err != nil {
		println(err.Error())
		return 2
	}
	f, err := os.OpenFile(os.Getenv("MBOX_FILE"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		return 1
	}
	f.Close()
	return 0
}

// TestGoroutinesFcntlOnly: fcntl locks do not keep goroutines of one process
// apart; the process-wide mutex must, or one delivery's recovery would take
// another's write in progress for a fragment and cut it off.
func TestGoroutinesFcntlOnly(t *testing.T) {
	root, dir := newRoot(t)
	opt := opts()
	opt.Locks = []string{"fcntl"}
	const n, each = 8, 10
	msg := func(g, i int) string {
		return "S: g" + string(rune('a'+g)) + string(rune('a'+i)) + "\n\n" + strings.Repeat("body line\n", 20000)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*each)
	for g := range n {
		wg.Go(func() {
			for i := range each {
				errs <- deliver(t, root, "mbox", msg(g, i), opt)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data := readFile(t, join(dir, "mbox"))
	recs := splitRecords([]byte(data))
	if len(recs) != n*each {
		t.Fatalf("%d records, want %d", len(recs), n*each)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r)] = true
	}
	for g := range n {
		for i := range each {
			if !seen[want(msg(g, i))] {
				t.Errorf("message %d/%d is not whole in the mailbox", g, i)
				for _, r := range recs {
					if strings.Contains(string(r), msg(g, i)[:6]) {
						t.Logf("its record: %d bytes, want %d: %.200q ... %q", len(r), len(want(msg(g, i))), r, r[max(0, len(r)-40):])
					}
				}
			}
		}
	}
	assertMissing(t, join(dir, "mbox.vdeliver-append"))
}

// FuzzParseIntent: any bytes in the intent file either are refused or
// are exactly one record's encoding, so that recovery never acts on a
// record that writeIntent did not write byte for byte.
func FuzzParseIntent(f *testing.F) {
	rec := want("S: x\n\nbody\n")
	in := intent{dev: 1, ino: 2, size: 3, length: int64(len(rec)), sum: intentSum([]byte(rec))}
	f.Add(append(in.header(), rec...))
	f.Add(in.header())
	f.Add([]byte(intentMagic + "dev 1 ino 2 size 3 length 4 crc32c 00\nabcd"))
	f.Add([]byte(intentMagic + "dev -1 ino 2 size -3 length 4 crc32c " + strings.Repeat("0", 8) + "\nabcd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, r, ok := parseIntent(b)
		if !ok {
			return
		}
		if enc := append(got.header(), r...); string(enc) != string(b) {
			t.Errorf("parsed %+v from %q, which encodes as %q", got, b, enc)
		}
		if got.size < 0 || got.length != int64(len(r)) || intentSum(r) != got.sum {
			t.Errorf("accepted an inconsistent record: %+v, %d bytes", got, len(r))
		}
	})
}

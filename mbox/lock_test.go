package mbox

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDotlockFresh: a fresh <mbox>.lock held by someone else makes the
// delivery give up after the attempts (4.2.0 for the caller), and the lock,
// which is not ours, is left exactly as it was (docs/behaviour.md §14.27).
func TestDotlockFresh(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	putFile(t, join(dir, "mbox.lock"), "4242\n", 0o644)
	before := statT(t, join(dir, "mbox.lock"))
	err := deliver(t, root, "mbox", "x\n", opts())
	checkErr(t, err, "lock", join(dir, "mbox"), "unable to create lock file "+join(dir, "mbox.lock")+": File exists",
		ErrLockBusy, syscall.EAGAIN)
	after := statT(t, join(dir, "mbox.lock"))
	if after.Ino != before.Ino || after.Ctim != before.Ctim {
		t.Errorf("the other process's lock was replaced or touched")
	}
	assertContent(t, join(dir, "mbox.lock"), "4242\n")
	assertContent(t, join(dir, "mbox"), oldContent)
}

// TestDotlockStale: a lock older than StaleAge is removed and the delivery
// goes ahead, even with a single attempt (docs/behaviour.md §14.27).
func TestDotlockStale(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{0, 1, 3} {
		root, dir := newRoot(t)
		putFile(t, join(dir, "mbox.lock"), "", 0)
		opt := opts()
		opt.Attempts = attempts
		// Any lock made before this call is older than this.
		opt.StaleAge = time.Nanosecond
		if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
			t.Fatalf("attempts %d: %v", attempts, err)
		}
		assertContent(t, join(dir, "mbox"), want("x\n"))
		assertMissing(t, join(dir, "mbox.lock"))
	}
}

// TestDotlockMode: our lock file is created with mode 0, as Postfix's.
func TestDotlockMode(t *testing.T) {
	root, dir := newRoot(t)
	var mode os.FileMode = 1
	hookWrite(t, func(f *os.File, b []byte) (int, error) {
		fi, err := os.Lstat(join(dir, "mbox.lock"))
		if err != nil {
			t.Error(err)
		} else {
			mode = fi.Mode()
		}
		return f.Write(b)
	})
	if err := deliver(t, root, "mbox", "x\n", opts()); err != nil {
		t.Fatal(err)
	}
	if mode != 0 {
		t.Errorf("lock file mode %v, want ----------", mode)
	}
	assertMissing(t, join(dir, "mbox.lock"))
}

// TestDotlockRemovedAfterFailure: the dotlock goes after every failure that
// happens once it is held (docs/behaviour.md §14.29); success is covered by the
// format tests.
func TestDotlockRemovedAfterFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string, opt *Options)
	}{
		{"owner", func(t *testing.T, dir string, opt *Options) {
			opt.StrictOwner, opt.Owner = true, os.Getuid()+1
		}},
		{"limit", func(t *testing.T, dir string, opt *Options) { opt.Limit = 1 }},
		{"hard link", func(t *testing.T, dir string, opt *Options) {
			if err := os.Link(join(dir, "mbox"), join(dir, "mbox2")); err != nil {
				t.Fatal(err)
			}
		}},
		{"flock busy", func(t *testing.T, dir string, opt *Options) {
			// flock locks belong to the open file description, so a second
			// open in this process conflicts as another process would.
			f, err := os.Open(join(dir, "mbox"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatal(err)
			}
			opt.Locks = []string{"dotlock", "flock"}
		}},
		{"deadline", func(t *testing.T, dir string, opt *Options) {
			f, err := os.Open(join(dir, "mbox"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatal(err)
			}
			opt.Locks = []string{"dotlock", "flock"}
			opt.Attempts, opt.Delay = 1000, time.Hour
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			opt := opts()
			tc.setup(t, dir, &opt)
			if err := deliver(t, root, "mbox", "x\n", opt); err == nil {
				t.Fatal("delivery succeeded")
			}
			assertContent(t, join(dir, "mbox"), oldContent)
			assertMissing(t, join(dir, "mbox.lock"))
		})
	}
}

// TestLockDeadline: a lock wait never sleeps past the context's deadline
// and stops when the context is cancelled (pipe(8) would otherwise kill us
// and bounce). Without the check these cases sleep for an hour.
func TestLockDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		locks []string
		ctx   func() (context.Context, context.CancelFunc)
		cause error
	}{
		{"dotlock deadline", []string{"dotlock"}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}, context.DeadlineExceeded},
		{"flock deadline", []string{"flock"}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}, context.DeadlineExceeded},
		{"fcntl cancelled", []string{"fcntl"}, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, dir := newRoot(t)
			putFile(t, join(dir, "mbox"), oldContent, 0o600)
			text := "unable to lock for exclusive access: Resource temporarily unavailable"
			switch tc.locks[0] {
			case "dotlock":
				putFile(t, join(dir, "mbox.lock"), "", 0)
				text = "unable to create lock file " + join(dir, "mbox.lock") + ": File exists"
			case "flock":
				f, err := os.Open(join(dir, "mbox"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
					t.Fatal(err)
				}
			case "fcntl":
				// fcntl locks of this process never conflict with each
				// other: hold it in a child.
				stop := holdFcntl(t, join(dir, "mbox"))
				defer stop()
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			opt := opts()
			opt.Locks, opt.Attempts, opt.Delay = tc.locks, 1000, time.Hour
			err := Deliver(ctx, root, "mbox", testSender, []byte(testHeaders), []byte("x\n"), opt)
			checkErr(t, err, "lock", join(dir, "mbox"), text, ErrLockBusy, syscall.EAGAIN, tc.cause)
			assertContent(t, join(dir, "mbox"), oldContent)
		})
	}
}

// TestFlockTool: util-linux flock(1) holds the mailbox
// (docs/behaviour.md §14.28): we give up with ErrLockBusy, and succeed once it lets go.
func TestFlockTool(t *testing.T) {
	t.Parallel()
	flock := requireTool(t, "flock")
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	release := holdWith(t, exec.Command(flock, "--exclusive", join(dir, "mbox"), "sh", "-c", "echo ready; exec cat >/dev/null"))
	opt := opts()
	opt.Locks = []string{"flock", "dotlock"}
	err := deliver(t, root, "mbox", "x\n", opt)
	checkErr(t, err, "lock", join(dir, "mbox"), "unable to lock for exclusive access: Resource temporarily unavailable",
		ErrLockBusy, syscall.EAGAIN)
	assertContent(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.lock"))
	release()
	if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestDotlockfileTool: Debian's dotlockfile (liblockfile) holds the dotlock;
// we wait, give up, leave its lock alone, and succeed after it unlocks.
func TestDotlockfileTool(t *testing.T) {
	t.Parallel()
	dotlockfile := requireTool(t, "dotlockfile")
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	lock := join(dir, "mbox.lock")
	if out, err := exec.Command(dotlockfile, "-l", "-r", "0", lock).CombinedOutput(); err != nil {
		t.Fatalf("dotlockfile -l: %v %s", err, out)
	}
	before := readFile(t, lock)
	err := deliver(t, root, "mbox", "x\n", opts())
	checkErr(t, err, "lock", join(dir, "mbox"), "unable to create lock file "+lock+": File exists", ErrLockBusy, syscall.EAGAIN)
	assertContent(t, lock, before)
	if out, err := exec.Command(dotlockfile, "-u", lock).CombinedOutput(); err != nil {
		t.Fatalf("dotlockfile -u: %v %s", err, out)
	}
	if err := deliver(t, root, "mbox", "x\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestFcntlChild: another process holds an fcntl lock (as Dovecot or mutt
// would) — busy, then success after it exits (docs/behaviour.md §14.28).
func TestFcntlChild(t *testing.T) {
	t.Parallel()
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	stop := holdFcntl(t, join(dir, "mbox"))
	err := deliver(t, root, "mbox", "x\n", opts())
	checkErr(t, err, "lock", join(dir, "mbox"), "unable to lock for exclusive access: Resource temporarily unavailable",
		ErrLockBusy, syscall.EAGAIN)
	assertContent(t, join(dir, "mbox"), oldContent)
	assertMissing(t, join(dir, "mbox.lock"))
	stop()
	if err := deliver(t, root, "mbox", "x\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestPythonLockf: the same with Python's fcntl.lockf, a locker that is not
// our code at all.
func TestPythonLockf(t *testing.T) {
	t.Parallel()
	python := requireTool(t, "python3")
	root, dir := newRoot(t)
	putFile(t, join(dir, "mbox"), oldContent, 0o600)
	release := holdWith(t, exec.Command(python, "-c",
		"import fcntl,sys\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('ready',flush=True)\nsys.stdin.read()",
		join(dir, "mbox")))
	err := deliver(t, root, "mbox", "x\n", opts())
	checkErr(t, err, "lock", join(dir, "mbox"), "unable to lock for exclusive access: Resource temporarily unavailable",
		ErrLockBusy, syscall.EAGAIN)
	release()
	if err := deliver(t, root, "mbox", "x\n", opts()); err != nil {
		t.Fatal(err)
	}
	assertContent(t, join(dir, "mbox"), oldContent+want("x\n"))
}

// TestPeersSeeOurLocks: while we write, flock(1), dotlockfile and another
// process's fcntl all find the mailbox locked.
func TestPeersSeeOurLocks(t *testing.T) {
	flock := requireTool(t, "flock")
	dotlockfile := requireTool(t, "dotlockfile")
	root, dir := newRoot(t)
	mbox := join(dir, "mbox")
	hookWrite(t, func(f *os.File, b []byte) (int, error) {
		if err := exec.Command(flock, "--nonblock", "--exclusive", mbox, "true").Run(); err == nil {
			t.Error("flock(1) got the lock while we were writing")
		}
		if err := exec.Command(dotlockfile, "-l", "-r", "0", mbox+".lock").Run(); err == nil {
			t.Error("dotlockfile got the lock while we were writing")
			exec.Command(dotlockfile, "-u", mbox+".lock").Run()
		}
		if out, err := helper("fcntl-try", "MBOX_FILE="+mbox).CombinedOutput(); err == nil || string(out) != "busy\n" {
			t.Errorf("fcntl in another process: %v %q, want busy", err, out)
		}
		return f.Write(b)
	})
	opt := opts()
	opt.Locks = []string{"dotlock", "flock", "fcntl"}
	if err := deliver(t, root, "mbox", "x\n", opt); err != nil {
		t.Fatal(err)
	}
	assertContent(t, mbox, want("x\n"))
	assertMissing(t, mbox+".lock")
}

// hookWrite replaces the write seam for one (non-parallel) test.
func hookWrite(t *testing.T, fn func(*os.File, []byte) (int, error)) {
	t.Helper()
	saved := writeFile
	writeFile = fn
	t.Cleanup(func() { writeFile = saved })
}

// holdWith starts cmd, which must print "ready" once it holds its lock and
// keep it until its stdin closes; release closes stdin and waits.
func holdWith(t *testing.T, cmd *exec.Cmd) (release func()) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("%v: got %q, %v; want ready", cmd.Args, line, err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%v: %v", cmd.Args, err)
		}
	}
	t.Cleanup(release)
	return release
}

// holdFcntl makes a child process (this test binary) hold an fcntl write
// lock on name until stop is called.
func holdFcntl(t *testing.T, name string) (stop func()) {
	t.Helper()
	return holdWith(t, helper("fcntl-hold", "MBOX_FILE="+name))
}

// helper returns a command that re-runs this test binary as a helper
// process doing one job (TestMain runs helperMain instead of the tests).
func helper(job string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"MBOX_HELPER=" + job}, env...)...)
	return cmd
}

func helperMain(job string) int {
	switch job {
	case "fcntl-hold", "fcntl-try":
		f, err := os.OpenFile(os.Getenv("MBOX_FILE"), os.O_RDWR, 0)
		if err != nil {
			println(err.Error())
			return 2
		}
		cmd := unix.F_SETLKW
		if job == "fcntl-try" {
			cmd = unix.F_SETLK
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), cmd, &lk); err != nil {
			if err == unix.EAGAIN || err == unix.EACCES {
				os.Stdout.WriteString("busy\n")
				return 3
			}
			println(err.Error())
			return 2
		}
		os.Stdout.WriteString("ready\n")
		if job == "fcntl-hold" {
			io.Copy(io.Discard, os.Stdin)
		}
		return 0
	case "deliver":
		return helperDeliver()
	case "deliver-torn":
		return helperTorn()
	case "create":
		return helperCreate()
	}
	println("unknown helper job " + job)
	return 2
}

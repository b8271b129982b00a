package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// Script commands for the mbox_*.txtar scripts (docs/behaviour.md §4): they set up what a
// script cannot (device nodes, FIFOs with a reader, foreign owners, a full file system, a
// file-size limit) and check what cmpmbox does not (the From_ date itself, sizes, that a
// real peer holds its lock). Everything is real: real mounts, real peers, real limits.
func init() {
	for name, fn := range map[string]func(*testscript.TestScript, bool, []string){
		"lchown":       cmdMboxLchown,
		"mknodc":       cmdMboxMknodC,
		"mkfifo":       cmdMboxMkfifo,
		"fiforead":     cmdMboxFIFORead,
		"fifoempty":    cmdMboxFIFOEmpty,
		"waitlocked":   cmdMboxWaitLocked,
		"smallfs":      cmdMboxSmallFS,
		"bigmsg":       cmdMboxBigMsg,
		"fromnow":      cmdMboxFromNow,
		"size":         cmdMboxSize,
		"pause":        cmdMboxPause,
		"elapsed":      cmdMboxElapsed,
		"deliverfsize": cmdMboxDeliverFsize,
	} {
		if _, dup := scriptCmds[name]; dup {
			panic("script command " + name + " registered twice")
		}
		scriptCmds[name] = fn
	}
}

// mboxScriptState is what one script's commands share (FIFO readers, the elapsed clock).
type mboxScriptState struct {
	fifos map[string]*os.File
	start time.Time
}

var (
	mboxStatesMu sync.Mutex
	mboxStates   = map[*testscript.TestScript]*mboxScriptState{}
)

func mboxStateOf(ts *testscript.TestScript) *mboxScriptState {
	mboxStatesMu.Lock()
	defer mboxStatesMu.Unlock()
	s := mboxStates[ts]
	if s == nil {
		s = &mboxScriptState{fifos: map[string]*os.File{}}
		mboxStates[ts] = s
		ts.Defer(func() {
			mboxStatesMu.Lock()
			defer mboxStatesMu.Unlock()
			for _, f := range s.fifos {
				f.Close()
			}
			delete(mboxStates, ts)
		})
	}
	return s
}

// lchown uid path...: gives the paths (not what a symlink points to) to uid, gid = uid.
func cmdMboxLchown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: lchown uid path...")
	}
	uid, err := strconv.Atoi(args[0])
	ts.Check(err)
	for _, p := range args[1:] {
		ts.Check(os.Lchown(ts.MkAbs(p), uid, uid))
	}
}

// mknodc path major minor: a character device node, mode 0666 (as /dev/null).
func cmdMboxMknodC(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: mknodc path major minor")
	}
	major, err := strconv.ParseUint(args[1], 10, 32)
	ts.Check(err)
	minor, err := strconv.ParseUint(args[2], 10, 32)
	ts.Check(err)
	p := ts.MkAbs(args[0])
	ts.Check(unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(uint32(major), uint32(minor)))))
	ts.Check(os.Chmod(p, 0o666)) // the umask must not decide who may open it
}

// mkfifo path: a FIFO, mode 0666, so only "no reader" can make opening it fail.
func cmdMboxMkfifo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mkfifo path")
	}
	p := ts.MkAbs(args[0])
	ts.Check(unix.Mkfifo(p, 0o666))
	ts.Check(os.Chmod(p, 0o666))
}

// fiforead path: this test process opens the FIFO for reading and keeps it open until the
// script ends, so that a writer's non-blocking open succeeds.
func cmdMboxFIFORead(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fiforead path")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	ts.Check(err)
	mboxStateOf(ts).fifos[args[0]] = f
}

// fifoempty path: nothing was written into the FIFO opened by fiforead.
func cmdMboxFIFOEmpty(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fifoempty path")
	}
	f := mboxStateOf(ts).fifos[args[0]]
	if f == nil {
		ts.Fatalf("fifoempty %s: no fiforead before", args[0])
	}
	buf := make([]byte, 64)
	n, err := syscall.Read(int(f.Fd()), buf)
	if n > 0 {
		ts.Fatalf("%s: read %q from the FIFO", args[0], buf[:n])
	}
	if err != nil && err != syscall.EAGAIN {
		ts.Fatalf("%s: %v", args[0], err)
	}
}

// waitlocked flock|fcntl path: waits (at most 10 s) until another process holds that
// kind of lock on path, so a script that started a real locker in the background knows it
// is in place before it runs vdeliver.
func cmdMboxWaitLocked(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 || (args[0] != "flock" && args[0] != "fcntl") {
		ts.Fatalf("usage: waitlocked flock|fcntl path")
	}
	p := ts.MkAbs(args[1])
	held := func() bool {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return false // the locker may not have created it yet
		}
		defer f.Close()
		if args[0] == "flock" {
			err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			return err == unix.EWOULDBLOCK
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		ts.Check(unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk))
		return lk.Type != unix.F_UNLCK
	}
	for deadline := time.Now().Add(10 * time.Second); !held(); {
		if time.Now().After(deadline) {
			ts.Fatalf("no other process took a %s lock on %s within 10s", args[0], args[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// smallfs dir size: mounts a tmpfs of that size (e.g. 64k) on dir, root directory owned by
// the delivery uid, and unmounts it when the script ends. Root only.
func cmdMboxSmallFS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: smallfs dir size")
	}
	if os.Geteuid() != 0 {
		ts.Fatalf("smallfs needs root: guard the script with [!root] skip")
	}
	uid, gid := deliveryUID()
	dir := ts.MkAbs(args[0])
	data := fmt.Sprintf("size=%s,mode=0755,uid=%d,gid=%d", args[1], uid, gid)
	ts.Check(unix.Mount("vdeliver-test", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data))
	ts.Defer(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
}

// bigmsg file nbytes: writes a message of exactly nbytes (a Subject header, a blank line,
// lines of x), for the disk-full and size-limit cases.
func cmdMboxBigMsg(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bigmsg file nbytes")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	var b bytes.Buffer
	b.WriteString("Subject: big\n\n")
	line := strings.Repeat("x", 75) + "\n"
	for b.Len()+len(line) <= n {
		b.WriteString(line)
	}
	if rest := n - b.Len(); rest > 0 {
		b.WriteString(strings.Repeat("y", rest-1) + "\n")
	}
	if b.Len() != n {
		ts.Fatalf("bigmsg: %d bytes is too small for a message", n)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b.Bytes(), 0o644))
}

var mboxFromLine = regexp.MustCompile(`(?m)^From [^\n]*  ([A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4})$`)

// fromnow file: the date on the file's last From_ line is asctime(3) of "now" in the
// script's $TZ: exactly time.ANSIC as Go formats it (day padded with a space), and within
// two minutes of the clock. This pins the date cmpmbox masks. With !, the date must be a
// well-formed asctime date that is not now in $TZ.
func cmdMboxFromNow(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: fromnow file")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	m := mboxFromLine.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		ts.Fatalf("%s: no From_ line with an asctime date", args[0])
	}
	date := string(m[len(m)-1][1])
	loc, err := time.LoadLocation(ts.Getenv("TZ"))
	ts.Check(err)
	t, err := time.ParseInLocation(time.ANSIC, date, loc)
	ts.Check(err)
	if t.Format(time.ANSIC) != date {
		ts.Fatalf("%s: From_ date %q is not asctime layout (want %q)", args[0], date, t.Format(time.ANSIC))
	}
	d := time.Since(t)
	now := d > -2*time.Minute && d < 2*time.Minute
	if now == neg {
		ts.Fatalf("%s: From_ date %q is %v away from now in TZ=%s (%s); negated: %v",
			args[0], date, d.Round(time.Second), ts.Getenv("TZ"), time.Now().In(loc).Format(time.ANSIC), neg)
	}
}

// size file n: the file is exactly n bytes long.
func cmdMboxSize(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: size file n")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if strconv.FormatInt(fi.Size(), 10) != args[1] {
		ts.Fatalf("%s is %d bytes, want %s", args[0], fi.Size(), args[1])
	}
}

// pause duration: sleeps (a dotlock must age past stale_lock_time; ctime cannot be set).
func cmdMboxPause(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pause duration")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// elapsed start | elapsed min max: starts a clock, then checks the time since it started
// is within [min, max] (lock retries honour their attempts and delay, and end).
func cmdMboxElapsed(ts *testscript.TestScript, neg bool, args []string) {
	s := mboxStateOf(ts)
	switch {
	case !neg && len(args) == 1 && args[0] == "start":
		s.start = time.Now()
	case !neg && len(args) == 2:
		lo, err := time.ParseDuration(args[0])
		ts.Check(err)
		hi, err := time.ParseDuration(args[1])
		ts.Check(err)
		if s.start.IsZero() {
			ts.Fatalf("elapsed: no elapsed start before")
		}
		if d := time.Since(s.start); d < lo || d > hi {
			ts.Fatalf("%v elapsed, want between %v and %v", d.Round(time.Millisecond), lo, hi)
		}
	default:
		ts.Fatalf("usage: elapsed start | elapsed min max")
	}
}

// deliverfsize bytes EXIT args...: as deliver, but vdeliver runs under prlimit(1) with
// RLIMIT_FSIZE = bytes, so the kernel refuses (EFBIG) the write that would pass it: a
// real failure in the middle of a message.
func cmdMboxDeliverFsize(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: deliverfsize bytes exit args...")
	}
	limit, err := strconv.ParseUint(args[0], 10, 64)
	ts.Check(err)
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	lim := fmt.Sprintf("--fsize=%d:%d", limit, limit)
	err = ts.Exec("prlimit", append([]string{lim, "--", "vdeliver"}, args[2:]...)...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("running prlimit vdeliver: %v", err)
	}
	if got != want {
		ts.Fatalf("vdeliver under RLIMIT_FSIZE=%d exited %d, want %d", limit, got, want)
	}
}

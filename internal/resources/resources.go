// Package resources is what a delivery does about the Go runtime's fatal errors. The
// runtime cannot recover from a refused allocation, a missing eventfd (too few file
// descriptors) or a thread it cannot create: it prints a trace on standard error and exits with status 2, which
// pipe(8) bounces, showing the trace to the sender. So, before anything else:
//
//   - too few file descriptors is found at start and defers (4.3.0) before any is needed,
//     after raising the soft limit as far as allowed (RLIMIT_NOFILE);
//   - the sender's message and every file whose size comes from disk are read only up to
//     a bound (MaxMessage, maincf, lookup, mbox intent records, the journal);
//   - the garbage collector works to a memory limit, whatever GOGC or GOMEMLIMIT the
//     caller of a setuid-root run set;
//   - what can still happen (an address-space limit or the memory of the machine
//     exhausted, RLIMIT_NPROC of the recipient's uid reached when the runtime starts a
//     thread) ends the process with SIGABRT rather than exit 2: the traceback level
//     "crash". pipe(8) defers a command killed by a signal ("4.3.0 Command died with
//     signal 6"). No core file is written (RLIMIT_CORE 0: it would hold the message),
//     and standard error, unless it is a terminal, is /dev/null: the trace must not
//     reach the sender.
//
// The runtime's own start-up, before any of vdeliver's code runs, can still fail with
// exit 2 (an RLIMIT_AS of a gigabyte or so; measured at 0.6 and, once, 1.2 GB): nothing in
// the program can run earlier.
package resources

import (
	"fmt"
	"math"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// minFiles is the soft RLIMIT_NOFILE a delivery needs: standard streams, the syslog
// socket, main.cf, the tables (cdb: stays open), the base, the mailbox and its lock and
// intent files, the journal, the runtime's poller (epoll and eventfd) and the pipes of a
// postmap(1) or forwarding child, with room to spare.
const minFiles = 64

// MaxMessage is the largest message vdeliver holds (in memory, as a whole: the mbox
// record is built and written at once). The sender's message must not decide how much
// memory is asked for: a refused allocation ends a Go program with exit status 2, which
// pipe(8) bounces with no reason given. A larger message bounces 5.3.4 "message too big
// for system", a decision and not a crash; Postfix's message_size_limit (10 MB by
// default) stops such mail long before.
const MaxMessage = 512 << 20

// MemoryLimit is the garbage collector's target: three copies of the largest message
// (message, mbox record, intent record) and the tables.
const MemoryLimit = 3*MaxMessage + 256<<20

// Guard prepares a delivery run as above, and returns why it cannot deliver (too few
// file descriptors), or nil. Subcommands are administrators' tools, which keep Go's
// defaults.
func Guard(setuid bool) error {
	debug.SetTraceback("crash")
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	if _, err := unix.IoctlGetTermios(2, unix.TCGETS); err != nil {
		if null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
			unix.Dup3(null, 2, 0)
			unix.Close(null)
		}
	}
	if setuid {
		debug.SetGCPercent(100)
	}
	if setuid || debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(MemoryLimit)
	}
	return enoughFiles()
}

// enoughFiles raises the soft RLIMIT_NOFILE to minFiles when it is lower (Go's runtime
// has already raised it to the hard limit) and, when the process may (a setuid-root
// start), the hard limit too; otherwise it says why the delivery cannot run.
func enoughFiles() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil // nothing known: the delivery's own errors will tell
	}
	if lim.Cur >= minFiles {
		return nil
	}
	want := unix.Rlimit{Cur: minFiles, Max: max(lim.Max, minFiles)}
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &want) == nil {
		return nil
	}
	if lim.Max > lim.Cur {
		lim.Cur = lim.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	return fmt.Errorf("RLIMIT_NOFILE is %d, a delivery needs %d open files", lim.Cur, minFiles)
}

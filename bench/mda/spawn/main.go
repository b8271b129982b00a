// Command spawn runs one command and reports how it ran, for bench/mda:
//
//	spawn -- command [arg...]
//
// It writes "wall_ns cpu_ns maxrss_kib exit_code" on file descriptor 3 once the command is
// reaped; the command inherits standard input, output, error, the environment, the working
// directory and spawn's own identity.
//
// Why a separate process: Go starts a child with vfork semantics (CLONE_VM), so when the
// child execs, the kernel folds the parent's peak RSS into the child's ru_maxrss. Measured
// from the benchmark harness every agent would show the harness's ~11 MB. Started from this
// small program, the floor under every figure is spawn's own RSS (about 2 MB, shown by the
// readexit row), and the wall time excludes spawn's own start-up.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) < 2 || args[0] != "--" {
		fmt.Fprintln(os.Stderr, "usage: spawn -- command [arg...]")
		os.Exit(2)
	}
	report := os.NewFile(3, "report")
	start := time.Now()
	p, err := os.StartProcess(args[1], args[1:], &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn:", err)
		os.Exit(127)
	}
	st, err := p.Wait()
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn:", err)
		os.Exit(127)
	}
	var cpu time.Duration
	var rss int64
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		rss = ru.Maxrss
	}
	if _, err := fmt.Fprintf(report, "%d %d %d %d\n", wall.Nanoseconds(), cpu.Nanoseconds(), rss, st.ExitCode()); err != nil {
		os.Exit(127)
	}
}

// Command coldstart measures the start-up target the way a delivery pays it: in a
// fresh process, the CPU time of reading main.cf and opening the tables of a
// configuration (maincf.Load, the -o overrides, deliver.Load), cold, once.
//
//	coldstart -c testdata/example [-o name=value]... [-n runs]
//
// Run by itself with -n, it starts itself n times (one fresh process each) and prints the
// median, 10th and 90th percentile of the thread CPU time (CLOCK_THREAD_CPUTIME_ID) and
// of the minor page faults (RUSAGE_THREAD) between the start and the end of that work.
// An in-process benchmark (maincf's BenchmarkStartup) repeats the work warm and misses
// what a process that does it once pays: first-touch faults on code, tables and heap.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"vdeliver/deliver"
	"vdeliver/maincf"
)

// The measured work runs on the main goroutine; locked to the main thread, the thread's
// CPU clock and fault count see all of it.
func init() { runtime.LockOSThread() }

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	dir := flag.String("c", "testdata/example", "directory with main.cf")
	var overrides multi
	flag.Var(&overrides, "o", "override a main.cf parameter: name=value (repeatable)")
	n := flag.Int("n", 0, "start this many fresh processes and summarise them (0: measure this one)")
	flag.Parse()
	if *n > 0 {
		os.Exit(parent(*n))
	}
	cpu0, flt0 := threadUsage()
	cf, err := maincf.Load(*dir)
	if err == nil {
		for _, o := range overrides {
			if err = cf.Override(o); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
	s, st := deliver.Load(cf, nil)
	cpu1, flt1 := threadUsage()
	if st != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", st.Line(), st.Err)
		os.Exit(1)
	}
	s.Close()
	fmt.Println(cpu1-cpu0, flt1-flt0)
}

// parent runs the command again n times without -n and summarises what each printed.
func parent(n int) int {
	args := dropN(os.Args[1:])
	var cpus, faults []int64
	for range n {
		out, err := exec.Command(os.Args[0], args...).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", err)
			return 1
		}
		var c, f int64
		if _, err := fmt.Sscan(string(out), &c, &f); err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", err)
			return 1
		}
		cpus, faults = append(cpus, c), append(faults, f)
	}
	slices.Sort(cpus)
	slices.Sort(faults)
	pct := func(v []int64, p int) int64 { return v[(len(v)-1)*p/100] }
	fmt.Printf("start-up (main.cf + tables), %d fresh processes: CPU median %.3f ms (p10 %.3f, p90 %.3f), minor faults median %d (p10 %d, p90 %d)\n",
		n, float64(pct(cpus, 50))/1e6, float64(pct(cpus, 10))/1e6, float64(pct(cpus, 90))/1e6, pct(faults, 50), pct(faults, 10), pct(faults, 90))
	return 0
}

// dropN is the arguments without -n and its value.
func dropN(in []string) []string {
	var out []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		switch {
		case a == "-n" || a == "--n":
			i++
		case strings.HasPrefix(a, "-n=") || strings.HasPrefix(a, "--n="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// threadUsage is this thread's CPU time in nanoseconds and its minor faults so far.
func threadUsage() (int64, int64) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return ts.Nano(), ru.Minflt
}

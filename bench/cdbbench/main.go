// Command cdbbench is the Go half of bench/cdb.sh: it writes the 1,000,000-entry source
// table, measures a command's wall time and peak RSS with getrusage (where /usr/bin/time
// is missing), and times whole-process lookups by vdeliver and by Postfix's postmap,
// alternating, and prints them as a Markdown table.
//
//	cdbbench gen FILE N
//	cdbbench rusage CMD [ARG...]
//	cdbbench query -runs N -vdeliver BIN -postmap BIN -table FILE -n ENTRIES
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: cdbbench gen|rusage|query ...")
	}
	switch os.Args[1] {
	case "gen":
		gen(os.Args[2:])
	case "rusage":
		rusage(os.Args[2:])
	case "query":
		query(os.Args[2:])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cdbbench: "+format+"\n", args...)
	os.Exit(2)
}

// key and value of entry i, as an administrator's table might hold them: mixed case,
// so building folds every key.
func key(i int) string   { return fmt.Sprintf("User%d@Example%d.ORG", i, i%100) }
func value(i int) string { return fmt.Sprintf("example%d.org/user%d/", i%100, i) }

// gen FILE N writes an N-entry postmap source.
func gen(args []string) {
	if len(args) != 2 {
		fail("usage: cdbbench gen FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fail("%v", err)
	}
	f, err := os.Create(args[0])
	if err != nil {
		fail("%v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "%s\t%s\n", key(i), value(i))
	}
	if err := w.Flush(); err != nil {
		fail("%v", err)
	}
	if err := f.Close(); err != nil {
		fail("%v", err)
	}
}

// rusage CMD ARG... runs the command and prints "SECONDS MAXRSS_KB" on stdout (the
// command's own output goes to stderr).
func rusage(args []string) {
	if len(args) == 0 {
		fail("usage: cdbbench rusage CMD [ARG...]")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		fail("%s: %v", args[0], err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Printf("%.2f %d\n", wall.Seconds(), ru.Maxrss) // Linux: Maxrss in KiB
}

// query times RUNS lookups by each program, alternating which goes first, each pair
// asking the same random key (nine in ten present, one in ten absent), and checks that
// both answer the same.
func query(args []string) {
	fs := flag.NewFlagSet("query", flag.ExitOnError)
	runs := fs.Int("runs", 200, "lookups per program")
	vdeliver := fs.String("vdeliver", "vdeliver", "vdeliver binary")
	postmap := fs.String("postmap", "postmap", "Postfix's postmap")
	table := fs.String("table", "", "the table's source path (FILE for cdb:FILE)")
	n := fs.Int("n", 1000000, "entries in the table")
	fs.Parse(args)
	if *table == "" {
		fail("-table is required")
	}
	var vd, pm, vdCPU, pmCPU []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	// run returns the wall time and, through cpu, the user+system time of one process:
	// the wall time is what a caller waits, the CPU time is less disturbed by a busy
	// machine.
	var cpu time.Duration
	run := func(name string, argv ...string) (time.Duration, []byte, int) {
		cmd := exec.Command(name, argv...)
		var out bytes.Buffer
		cmd.Stdout = &out
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			fail("%s: %v", name, err)
		}
		return d, out.Bytes(), code
	}
	for i := range *runs {
		k := key(rng.IntN(*n))
		if rng.IntN(10) == 0 {
			k = fmt.Sprintf("nobody%d@example.org", i)
		}
		var d1, d2, u1, u2 time.Duration
		var o1, o2 []byte
		var c1, c2 int
		vdRun := func() { d1, o1, c1 = run(*vdeliver, "query", "cdb:"+*table, k); u1 = cpu }
		pmRun := func() { d2, o2, c2 = run(*postmap, "-q", k, "cdb:"+*table); u2 = cpu }
		if i%2 == 0 {
			vdRun()
			pmRun()
		} else {
			pmRun()
			vdRun()
		}
		if !bytes.Equal(o1, o2) || c1 != c2 {
			fail("key %q: vdeliver %q (exit %d), postmap %q (exit %d)", k, o1, c1, o2, c2)
		}
		vd, pm = append(vd, d1), append(pm, d2)
		vdCPU, pmCPU = append(vdCPU, u1), append(pmCPU, u2)
	}
	fmt.Printf("| whole-process lookup, %d runs each | wall median | wall p95 | wall mean | CPU median | CPU p95 |\n", *runs)
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, r := range []struct {
		name   string
		d, cpu []time.Duration
	}{{"`vdeliver query cdb:FILE key`", vd, vdCPU}, {"`postmap -q key cdb:FILE`", pm, pmCPU}} {
		med, p95, mean := stats(r.d)
		cmed, cp95, _ := stats(r.cpu)
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.name, ms(med), ms(p95), ms(mean), ms(cmed), ms(cp95))
	}
	mv, _, _ := stats(vd)
	mp, _, _ := stats(pm)
	fmt.Printf("\nvdeliver's median is %.1f× postmap's (lower is faster).\n", float64(mv)/float64(mp))
}

func stats(d []time.Duration) (median, p95, mean time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	i95 := (len(s)*95+99)/100 - 1
	return s[len(s)/2], s[i95], sum / time.Duration(len(s))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

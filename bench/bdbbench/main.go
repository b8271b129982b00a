// Command bdbbench measures whole-process deliveries through a hash: table of 10 and of
// 1,000,000 entries for bench/bdb.sh.
//
//	bdbbench gen FILE N            writes an N-entry source, userI@exampleJ.org -> exampleJ.org/userI/
//	bdbbench deliver -runs R -vdeliver BIN -small DIR -large DIR -rcpt ADDR
//	                               delivers R times through each configuration directory,
//	                               alternating, and prints the medians and their ratio
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: bdbbench gen|deliver ...")
	}
	switch os.Args[1] {
	case "gen":
		gen(os.Args[2:])
	case "deliver":
		deliver(os.Args[2:])
	default:
		fail("bdbbench: unknown command %q", os.Args[1])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func gen(args []string) {
	if len(args) != 2 {
		fail("usage: bdbbench gen FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fail("bdbbench gen: %v", err)
	}
	f, err := os.Create(args[0])
	if err != nil {
		fail("bdbbench gen: %v", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "user%d@example%d.org\texample%d.org/user%d/\n", i, i%100, i%100, i)
	}
	if err := w.Flush(); err != nil {
		fail("bdbbench gen: %v", err)
	}
	if err := f.Close(); err != nil {
		fail("bdbbench gen: %v", err)
	}
}

// run is one delivery: its wall time and the CPU time (user + system) it used.
func run(bin, dir, rcpt string, msg []byte) (wall, cpu time.Duration) {
	cmd := exec.Command(bin, "-c", dir, "-f", "sender@example.net", "--", rcpt)
	cmd.Stdin = bytes.NewReader(msg)
	start := time.Now()
	out, err := cmd.Output()
	wall = time.Since(start)
	if err != nil {
		fail("%s -c %s: %v: %s", bin, dir, err, out)
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func deliver(args []string) {
	fs := flag.NewFlagSet("deliver", flag.ExitOnError)
	runs := fs.Int("runs", 200, "deliveries per table")
	bin := fs.String("vdeliver", "", "vdeliver binary")
	small := fs.String("small", "", "configuration directory with the small table")
	large := fs.String("large", "", "configuration directory with the large table")
	rcpt := fs.String("rcpt", "", "recipient, in both tables")
	fs.Parse(args)
	msg := []byte("From: sender@example.net\nSubject: bench\n\n" + string(bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 16)))
	var sw, sc, lw, lc []time.Duration
	// Warm the page cache and the binary, then alternate so that load changes hit both.
	run(*bin, *small, *rcpt, msg)
	run(*bin, *large, *rcpt, msg)
	for range *runs {
		w, c := run(*bin, *small, *rcpt, msg)
		sw, sc = append(sw, w), append(sc, c)
		w, c = run(*bin, *large, *rcpt, msg)
		lw, lc = append(lw, w), append(lc, c)
	}
	fmt.Printf("| table | wall median | wall p95 | CPU median | CPU p95 |\n| --- | --- | --- | --- | --- |\n")
	fmt.Printf("| hash:, small | %s | %s | %s | %s |\n", ms(pct(sw, 50)), ms(pct(sw, 95)), ms(pct(sc, 50)), ms(pct(sc, 95)))
	fmt.Printf("| hash:, large | %s | %s | %s | %s |\n", ms(pct(lw, 50)), ms(pct(lw, 95)), ms(pct(lc, 50)), ms(pct(lc, 95)))
	fmt.Printf("\nlarge/small, medians: wall %.3f, CPU %.3f (%d deliveries each, alternating)\n",
		float64(pct(lw, 50))/float64(pct(sw, 50)), float64(pct(lc, 50))/float64(pct(sc, 50)), *runs)
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

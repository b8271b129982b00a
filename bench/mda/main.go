// Command mda compares vdeliver with the delivery agents administrators run today —
// Dovecot's dovecot-lda, Courier's maildrop and procmail — and with readexit, a Go program
// that only reads standard input and exits.
//
// Every delivery is one process fed one message on standard input, as pipe(8) runs a
// delivery command; as root each runs as uid/gid 5000 (vmail). The agents take turns run by
// run so that the noise of a shared machine falls on all alike. For each agent, mailbox
// format and message it records wall time (fork to reap), CPU time and peak RSS (wait4's
// rusage, taken by bench/mda/spawn, which covers what the agent exec'd or waited for), then traces the sync calls of
// one more delivery with strace, and finally runs 8 deliverers in parallel into one mailbox.
// It prints Markdown and, with -readme, writes it into bench/mda/README.md.
//
// Usage (bench/mda/run.sh installs the peers and builds the two Go programs):
//
//	go run ./bench/mda -vdeliver /tmp/x/vdeliver -readexit /tmp/x/readexit -spawn /tmp/x/spawn \
//		[-n 30] [-readme bench/mda/README.md]
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"vdeliver/bench/internal/mdreport"
)

func main() {
	var o options
	flag.StringVar(&o.vdeliver, "vdeliver", "", "the vdeliver binary to measure (required)")
	flag.StringVar(&o.readexit, "readexit", "", "the read-stdin-and-exit Go program, bench/mda/readexit (required)")
	flag.StringVar(&o.spawn, "spawn", "", "the measuring starter, bench/mda/spawn (required)")
	flag.StringVar(&o.config, "config", "testdata/example", "directory with the main.cf, vmailbox and virtual vdeliver uses")
	flag.StringVar(&o.corpus, "corpus", "testdata/example/messages", "directory of *.eml messages delivered besides the generated ones")
	flag.IntVar(&o.n, "n", 30, "timed deliveries per agent, format and message")
	flag.IntVar(&o.par, "par", 8, "parallel deliverers into one mailbox")
	flag.IntVar(&o.perWorker, "per", 25, "deliveries per parallel deliverer")
	flag.IntVar(&o.uid, "uid", 5000, "uid to run the agents as when started as root")
	flag.IntVar(&o.gid, "gid", 5000, "gid to run the agents as when started as root")
	flag.StringVar(&o.readme, "readme", "", "write the results into this Markdown file between its result markers")
	flag.Func("variant", "another vdeliver build to measure beside it, as label=path (repeatable)", func(v string) error {
		label, path, ok := strings.Cut(v, "=")
		if !ok || label == "" || path == "" || strings.ContainsAny(label, "/ ") {
			return errors.New("want label=path")
		}
		o.variants = append(o.variants, variant{name: "vdeliver-" + label, path: path})
		return nil
	})
	flag.Func("variant-env", "an environment variable for one variant's runs, as label=NAME=value (repeatable; the variant may be vdeliver's own binary)", func(v string) error {
		label, kv, ok := strings.Cut(v, "=")
		if !ok || !strings.Contains(kv, "=") {
			return errors.New("want label=NAME=value")
		}
		for i := range o.variants {
			if o.variants[i].name == "vdeliver-"+label {
				o.variants[i].env = append(o.variants[i].env, kv)
				return nil
			}
		}
		return fmt.Errorf("no -variant %s before it", label)
	})
	flag.StringVar(&o.coldstart, "coldstart", "", "bench/mda/coldstart: measure the start-up target (main.cf and tables, cold, in fresh processes)")
	flag.BoolVar(&o.lmtpOnly, "lmtp-only", false, "measure only the LMTP mode's rows (print them, leave -readme alone)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary base (mailboxes, configurations, outputs)")
	flag.Parse()
	if o.vdeliver == "" || o.readexit == "" || o.spawn == "" || o.n < 1 || o.par < 1 || o.perWorker < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/mda:", err)
		os.Exit(1)
	}
}

type options struct {
	vdeliver, readexit, spawn, config, corpus, readme string
	coldstart                                         string
	n, par, perWorker, uid, gid                       int
	keep, lmtpOnly                                    bool
	variants                                          []variant
}

// message is one file of the corpus.
type message struct {
	label string // shown in the tables
	path  string
	size  int64
}

// key names the samples of one agent, format and message.
type key struct{ mda, format, msg string }

func run(o options) error {
	tl, err := findTools(o.vdeliver, o.readexit, o.spawn, o.variants)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		o.uid, o.gid = os.Geteuid(), os.Getegid()
	}
	work, err := os.MkdirTemp("", "vdeliver-bench-mda.")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", work)
	} else {
		defer os.RemoveAll(work)
	}
	if err := os.Chmod(work, 0o755); err != nil { // the agents run as uid 5000 below it
		return err
	}
	msgs, err := corpus(o.corpus, filepath.Join(work, "msgs"))
	if err != nil {
		return err
	}
	set, err := setup(work, o.config, tl, o.uid, o.gid)
	if err != nil {
		return err
	}
	rn := runner{spawn: tl.spawn, uid: o.uid, gid: o.gid}
	m := &machine{start: loadavg(), date: time.Now().UTC()}
	var m4k *message
	for i := range msgs {
		if msgs[i].label == "4 kB" {
			m4k = &msgs[i]
		}
	}
	formats := []string{"maildir", "mbox"}

	// One untimed delivery each: creates the mailboxes and Dovecot's indexes, and brings
	// every binary into the page cache, so the first timed run is not a cold start.
	for _, f := range formats {
		for _, t := range set[f] {
			if _, err := rn.deliver(t, nil, msgs[0].path); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	if o.lmtpOnly {
		b4k, err := os.ReadFile(m4k.path)
		if err != nil {
			return err
		}
		lm, aside, err := measureLMTP(rn, set, work, b4k, 5)
		if err != nil {
			return err
		}
		fmt.Print(lmtpTable(lm, aside) + lmtpTargets(lm))
		return nil
	}

	samples := map[key][]sample{}
	for r := range o.n {
		fmt.Fprintf(os.Stderr, "\rrun %d/%d (load %s)   ", r+1, o.n, loadavg())
		for _, msg := range msgs {
			for _, f := range formats {
				ts := set[f]
				for i := range ts {
					t := ts[(i+r)%len(ts)] // a different agent goes first each run
					s, err := rn.deliver(t, nil, msg.path)
					if err != nil {
						return err
					}
					k := key{t.mda, f, msg.label}
					samples[k] = append(samples[k], s)
				}
			}
		}
	}
	fmt.Fprintln(os.Stderr)
	if err := verify(set, msgs, o.n); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "tracing sync calls")
	dur := map[key]durability{}
	for _, f := range formats {
		for _, t := range set[f] {
			d, err := traceSyncs(rn, t, tl.strace, m4k.path, work)
			if err != nil {
				return err
			}
			dur[key{t.mda, f, ""}] = d
		}
	}

	fmt.Fprintf(os.Stderr, "%d parallel deliverers\n", o.par)
	par := map[key]parallel{}
	for _, f := range formats {
		for _, t := range set[f] {
			before, _, err := t.delivered()
			if err != nil {
				return err
			}
			p := runParallel(rn, t, m4k.path, o.par, o.perWorker)
			after, _, err := t.delivered()
			if err != nil {
				return err
			}
			if t.format == "maildir" && t.mail != "" && after-before != p.ok {
				return fmt.Errorf("%s %s: %d parallel deliveries exited 0 but %d messages arrived", t.mda, f, p.ok, after-before)
			}
			par[key{t.mda, f, ""}] = p
		}
	}
	fmt.Fprintln(os.Stderr, "LMTP mode")
	b4k, err := os.ReadFile(m4k.path)
	if err != nil {
		return err
	}
	lm, aside, err := measureLMTP(rn, set, work, b4k, 5)
	if err != nil {
		return err
	}
	var cold string
	if o.coldstart != "" {
		fmt.Fprintln(os.Stderr, "start-up, cold")
		if cold, err = coldStart(rn, o.coldstart, set["maildir"][0]); err != nil {
			return err
		}
	}
	m.end = loadavg()

	md := report(o, m, set, msgs, samples, dur, par, cold, lm, aside)
	fmt.Print(md)
	if o.readme != "" {
		doc, err := os.ReadFile(o.readme)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(o.readme, []byte(mdreport.Splice(string(doc), md, "bench/mda")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// corpus lists dir's *.eml files and writes the generated messages into gen.
func corpus(dir, gen string) ([]message, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.eml in %s", dir)
	}
	slices.Sort(paths)
	var msgs []message
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(p)
		msgs = append(msgs, message{label: fmt.Sprintf("%s (%d B)", filepath.Base(p), fi.Size()), path: abs, size: fi.Size()})
	}
	if err := os.MkdirAll(gen, 0o755); err != nil {
		return nil, err
	}
	for _, g := range []struct {
		label string
		size  int
	}{{"1 kB", 1000}, {"4 kB", 4096}, {"10 kB", 10000}, {"100 kB", 100000}, {"1 MB", 1000000}} {
		p := filepath.Join(gen, strings.ReplaceAll(g.label, " ", "")+".eml")
		if err := os.WriteFile(p, generate(g.size), 0o644); err != nil {
			return nil, err
		}
		msgs = append(msgs, message{label: g.label, path: p, size: int64(g.size)})
	}
	return msgs, nil
}

// generate makes a plain-text message of exactly size bytes (size ≥ 300): a few headers and
// 64-byte numbered lines, none of which starts with "From ", so every agent stores it as is.
func generate(size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender <sender@example.org>\nTo: alice@example.com\nSubject: %d-byte benchmark message\n"+
		"Message-ID: <bench-%d@example.org>\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n\n", size, size)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%06d abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 01234\n", i)
	}
	out := []byte(b.String())[:size]
	out[size-1] = '\n'
	return out
}

// runner starts the agents: as uid/gid when the harness is root, through spawn when timing.
type runner struct {
	spawn    string
	uid, gid int
}

func (r runner) attr() *syscall.SysProcAttr {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid), Groups: []uint32{}}}
}

// deliver runs argv (t's own command line when nil) with the message on standard input,
// through spawn, and returns what wait4 reported for the agent. Anything but exit 0 is an
// error: a benchmark of a failing agent measures nothing.
func (r runner) deliver(t *target, argv []string, msgPath string) (sample, error) {
	if argv == nil {
		argv = t.argv
	}
	rep, w, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer rep.Close()
	cmd := r.command(t, append([]string{r.spawn, "--"}, argv...))
	in, err := os.Open(msgPath)
	if err != nil {
		w.Close()
		return sample{}, err
	}
	defer in.Close()
	cmd.Stdin = in
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return sample{}, fmt.Errorf("%s %s: %w", t.mda, t.format, err)
	}
	b, rerr := io.ReadAll(rep)
	werr := cmd.Wait()
	var wall, cpu, rss int64
	var code int
	if _, err := fmt.Sscan(string(b), &wall, &cpu, &rss, &code); err != nil || werr != nil || rerr != nil || code != 0 {
		return sample{}, fmt.Errorf("%s %s: %s < %s: exit %d (%v); its output ends:\n%s", t.mda, t.format,
			strings.Join(argv, " "), msgPath, code, errors.Join(werr, rerr, err), tail(t.out.Name(), 800))
	}
	return sample{wall: time.Duration(wall), cpu: time.Duration(cpu), rssKB: rss}, nil
}

// coldStart runs bench/mda/coldstart with vdeliver's configuration and -o options (taken
// from t, vdeliver's Maildir target) as the agents' user: 100 fresh processes, each timing
// its own reading of main.cf and opening of the tables. It returns coldstart's summary.
func coldStart(r runner, bin string, t *target) (string, error) {
	args := []string{"-n", "100"}
	for i := 1; i+1 < len(t.argv); i++ {
		if a := t.argv[i]; a == "-c" || a == "-o" {
			args = append(args, a, t.argv[i+1])
			i++
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir, cmd.SysProcAttr = t.env, t.home, r.attr()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("coldstart %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// deliverDirect runs t without spawn, for the parallel runs where only the count matters
// and a second process per delivery would take CPU from the agents.
func (r runner) deliverDirect(t *target, msgPath string) error {
	in, err := os.Open(msgPath)
	if err != nil {
		return err
	}
	defer in.Close()
	cmd := r.command(t, t.argv)
	cmd.Stdin = in
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", t.mda, t.format, err)
	}
	return nil
}

// command is argv with t's environment and directory. Files, not pipes, on every standard
// descriptor: os/exec then copies nothing itself and the harness adds no work of its own.
func (r runner) command(t *target, argv []string) *exec.Cmd {
	return &exec.Cmd{Path: argv[0], Args: argv, Env: t.env, Dir: t.home, Stdout: t.out, Stderr: t.out, SysProcAttr: r.attr()}
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// verify checks that every mailbox holds what was delivered: the warm-up's copy of the
// first message and n timed copies of each (Maildir: that many files; mbox: at least that
// many bytes, as each agent adds its own framing and headers).
func verify(set map[string][]*target, msgs []message, n int) error {
	wantFiles := 1 + n*len(msgs)
	wantBytes := msgs[0].size
	for _, m := range msgs {
		wantBytes += int64(n) * m.size
	}
	for _, ts := range set {
		for _, t := range ts {
			if t.mail == "" {
				continue
			}
			files, bytes, err := t.delivered()
			if err != nil {
				return fmt.Errorf("%s %s: %w", t.mda, t.format, err)
			}
			if t.format == "maildir" && files != wantFiles {
				return fmt.Errorf("%s maildir: %d messages in %s, want %d", t.mda, files, t.mail, wantFiles)
			}
			if bytes < wantBytes {
				return fmt.Errorf("%s %s: %d bytes in %s, want at least %d", t.mda, t.format, bytes, t.mail, wantBytes)
			}
		}
	}
	return nil
}

// durability is what one traced delivery synced.
type durability struct {
	calls     int  // fsync + fdatasync, from strace -c
	file, dir bool // the message (Maildir file or mbox), a directory
	other     int  // syncs of anything else (indexes, uid lists)
}

var syncLine = regexp.MustCompile(`\b(fsync|fdatasync|syncfs|sync_file_range)\(\d+<([^>]*)>`)

// traceSyncs delivers msgPath twice under strace: once with -c for the count of fsync and
// fdatasync calls, once with -y to learn what each call synced.
func traceSyncs(rn runner, t *target, strace, msgPath, work string) (durability, error) {
	var d durability
	// strace runs as the agent's user, so its output goes where that user may write.
	cOut := filepath.Join(work, "home", "strace-c."+t.mda+"."+t.format)
	yOut := filepath.Join(work, "home", "strace-y."+t.mda+"."+t.format)
	argv := append([]string{strace, "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", cOut, "--"}, t.argv...)
	if _, err := rn.deliver(t, argv, msgPath); err != nil {
		return d, err
	}
	b, err := os.ReadFile(cOut)
	if err != nil {
		return d, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && f[len(f)-1] == "total" {
			d.calls, _ = strconv.Atoi(f[3])
		}
	}
	argv = append([]string{strace, "-f", "-y", "-e", "trace=fsync,fdatasync,syncfs,sync_file_range", "-o", yOut, "--"}, t.argv...)
	if _, err := rn.deliver(t, argv, msgPath); err != nil {
		return d, err
	}
	f, err := os.Open(yOut)
	if err != nil {
		return d, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := syncLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		p := m[2]
		switch fi, err := os.Stat(p); {
		case err == nil && fi.IsDir():
			d.dir = true
		case t.mail != "" && (p == t.mail || strings.HasPrefix(p, t.mail+"/tmp/") || strings.HasPrefix(p, t.mail+"/new/") || strings.HasPrefix(p, t.mail+"/cur/")):
			d.file = true
		default:
			d.other++
		}
	}
	return d, sc.Err()
}

// parallel is the outcome of par deliverers into one mailbox.
type parallel struct {
	ok, failed int
	elapsed    time.Duration
	firstErr   error
}

func (p parallel) rate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.ok) / p.elapsed.Seconds()
}

func runParallel(rn runner, t *target, msgPath string, par, per int) parallel {
	var mu sync.Mutex
	var p parallel
	var wg sync.WaitGroup
	start := time.Now()
	for range par {
		wg.Go(func() {
			for range per {
				err := rn.deliverDirect(t, msgPath)
				mu.Lock()
				if err != nil {
					p.failed++
					if p.firstErr == nil {
						p.firstErr = err
					}
				} else {
					p.ok++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	return p
}

// machine is what the results were measured on.
type machine struct {
	date       time.Time
	start, end string
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func commandOutput(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs (fsync is free: numbers flatter everyone)"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

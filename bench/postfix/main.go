// Command postfix measures delivery throughput through the system's real Postfix, queued
// mode: N messages of 4 kB are submitted over SMTP and put on hold by a header_checks HOLD
// rule, then released at once (postsuper -H ALL, postqueue -f), and the time from the
// release until Postfix has logged the last status=sent line is taken. One run per agent,
// mailbox format and round; the agents take turns in a different order each round, so that
// the noise of a shared machine falls on all alike. The medians over the rounds are
// compared as ratios.
//
// bench/postfix/run.sh sets Postfix up (the e2e seed configuration, the HOLD rule, the
// master.cf entries of every agent, two Dovecot LMTP instances) and runs this program as
// root; it prints Markdown and, with -readme, writes it into bench/postfix/README.md.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"vdeliver/bench/internal/mdreport"
)

// agent is one delivery agent at one concurrency.
type agent struct {
	name        string // vdeliver-lmtp, floor, dovecot-lmtp, vdeliver-pipe, virtual
	concurrency int    // lmtp_destination_concurrency_limit; 0: the transport's default
	// transport is virtual_transport for a format ("maildir" or "mbox").
	transport func(format string) string
}

func (a agent) label() string {
	if a.concurrency == 0 {
		return a.name
	}
	return fmt.Sprintf("%s c=%d", a.name, a.concurrency)
}

var allAgents = map[string]func(c int) agent{
	"virtual": func(int) agent {
		return agent{name: "virtual", transport: func(string) string { return "virtual" }}
	},
	"vdeliver-pipe": func(int) agent {
		return agent{name: "vdeliver-pipe", transport: func(string) string { return "vdeliver" }}
	},
	"vdeliver-lmtp": func(c int) agent {
		return agent{name: "vdeliver-lmtp", concurrency: c, transport: func(string) string { return "lmtp:unix:private/vdeliver-lmtp" }}
	},
	"floor": func(c int) agent {
		return agent{name: "floor", concurrency: c, transport: func(string) string { return "lmtp:unix:private/lmtpfloor" }}
	},
	"dovecot-lmtp": func(c int) agent {
		return agent{name: "dovecot-lmtp", concurrency: c, transport: func(f string) string { return "lmtp:unix:private/dovecot-lmtp-" + f }}
	},
}

// lmtpAgents are measured at every -concurrency; the others at their transport's default.
var lmtpAgents = map[string]bool{"vdeliver-lmtp": true, "floor": true, "dovecot-lmtp": true}

type options struct {
	n, size, rounds, conns int
	agents                 []string
	concurrencies          []int
	formats                []string
	maillog, base, readme  string
	perf                   string // directory for a perf record of every timed run
	timeout                time.Duration
}

func main() {
	var o options
	var agents, concs, formats string
	flag.IntVar(&o.n, "n", 1000, "messages per run")
	flag.IntVar(&o.size, "size", 4096, "message size in bytes")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every agent once per format")
	flag.IntVar(&o.conns, "conns", 4, "SMTP connections submitting in parallel")
	flag.StringVar(&agents, "agents", "virtual,vdeliver-pipe,vdeliver-lmtp,floor,dovecot-lmtp", "agents to measure")
	flag.StringVar(&concs, "concurrency", "20,4", "lmtp_destination_concurrency_limit values for the LMTP agents")
	flag.StringVar(&formats, "formats", "maildir,mbox", "mailbox formats")
	flag.StringVar(&o.maillog, "maillog", "/var/log/postfix-bench.log", "Postfix's maillog_file")
	flag.StringVar(&o.base, "base", "/var/mail/vhosts", "virtual_mailbox_base")
	flag.StringVar(&o.readme, "readme", "", "write the results into this Markdown file between its result markers")
	flag.StringVar(&o.perf, "perf", "", "record every timed run with `perf record -a -g` into this directory and print where the CPU went (a profiling run: perf costs CPU too)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a run after this long")
	flag.Parse()
	o.agents = strings.Split(agents, ",")
	o.formats = strings.Split(formats, ",")
	for _, c := range strings.Split(concs, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench/postfix: bad -concurrency", c)
			os.Exit(2)
		}
		o.concurrencies = append(o.concurrencies, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/postfix:", err)
		os.Exit(1)
	}
}

// key names the runs of one agent and format.
type key struct{ label, format string }

// result is one timed run.
type result struct {
	rate    float64 // messages per second, release to last status=sent
	cpuMS   float64 // CPU time of the whole machine per message, ms (/proc/stat)
	elapsed time.Duration
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (it drives the system's Postfix); use bench/postfix/run.sh")
	}
	var agents []agent
	for _, name := range o.agents {
		mk, ok := allAgents[name]
		if !ok {
			return fmt.Errorf("unknown agent %q", name)
		}
		if lmtpAgents[name] {
			for _, c := range o.concurrencies {
				agents = append(agents, mk(c))
			}
		} else {
			agents = append(agents, mk(0))
		}
	}
	m := machineNow()
	results := map[key][]result{}
	seq := 0
	for r := range o.rounds {
		for _, f := range o.formats {
			for i := range agents {
				a := agents[(i+r)%len(agents)] // a different agent goes first each round
				seq++
				res, err := runOne(o, a, f, fmt.Sprintf("%d.%d", time.Now().Unix(), seq))
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, f, a.label(), err)
				}
				fmt.Fprintf(os.Stderr, "round %d %-7s %-18s %7.1f msg/s  %5.2f ms CPU/msg  (load %s)\n",
					r+1, f, a.label(), res.rate, res.cpuMS, loadavg())
				results[key{a.label(), f}] = append(results[key{a.label(), f}], res)
			}
		}
	}
	m.end = loadavg()
	out := report(o, m, agents, results)
	fmt.Print(out)
	if o.readme != "" {
		doc, err := os.ReadFile(o.readme)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return os.WriteFile(o.readme, []byte(mdreport.Splice(string(doc), out, "bench/postfix")), 0o644)
	}
	return nil
}

// runOne configures Postfix for agent a, submits o.n messages on hold, releases them and
// times the deliveries.
func runOne(o options, a agent, format, tag string) (result, error) {
	if err := resetMailboxes(o.base); err != nil {
		return result{}, err
	}
	params := []string{"virtual_transport = " + a.transport(format)}
	if a.concurrency > 0 {
		params = append(params, "lmtp_destination_concurrency_limit = "+strconv.Itoa(a.concurrency))
	}
	for _, p := range params {
		if out, err := exec.Command("postconf", "-e", p).CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("postconf -e %s: %v: %s", p, err, out)
		}
	}
	if err := reload(o.maillog); err != nil {
		return result{}, err
	}

	rcpt := "alice@example.com"
	if format == "mbox" {
		rcpt = "bob@example.com"
	}
	if err := submit(o, rcpt, tag); err != nil {
		return result{}, err
	}
	if err := waitHeld(o.n, o.timeout); err != nil {
		return result{}, err
	}
	// The submission's dirty pages and queue files are written out before the clock starts.
	exec.Command("sync").Run()
	time.Sleep(time.Second)

	off, err := fileSize(o.maillog)
	if err != nil {
		return result{}, err
	}
	var perf *exec.Cmd
	if o.perf != "" {
		data := filepath.Join(o.perf, fmt.Sprintf("%s.%s.data", strings.ReplaceAll(a.label(), " ", ""), format))
		perf = exec.Command("perf", "record", "-q", "-a", "-g", "-F", "499", "-o", data)
		if err := perf.Start(); err != nil {
			return result{}, fmt.Errorf("perf record: %w", err)
		}
		defer func() {
			perf.Process.Signal(os.Interrupt)
			perf.Wait()
			out, _ := exec.Command("perf", "report", "-i", data, "--stdio", "--sort", "comm", "-g", "none", "--percent-limit", "2").Output()
			fmt.Fprintf(os.Stderr, "perf, %s %s (%s), share of the machine's samples by command:\n", a.label(), format, data)
			for _, line := range strings.Split(string(out), "\n") {
				if line != "" && !strings.HasPrefix(line, "#") {
					fmt.Fprintln(os.Stderr, "   ", strings.TrimSpace(line))
				}
			}
		}()
		time.Sleep(500 * time.Millisecond) // perf's own start-up
	}
	cpu0 := cpuTicks()
	start := time.Now()
	for _, argv := range [][]string{{"postsuper", "-H", "ALL"}, {"postqueue", "-f"}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	if err := waitSent(o.maillog, off, o.n, start.Add(o.timeout)); err != nil {
		return result{}, err
	}
	elapsed := time.Since(start)
	cpu := cpuTicks() - cpu0
	got, err := countDelivered(o.base, a, format)
	if err != nil {
		return result{}, err
	}
	if got != o.n {
		return result{}, fmt.Errorf("the log has %d deliveries but the mailbox holds %d messages", o.n, got)
	}
	return result{
		rate:    float64(o.n) / elapsed.Seconds(),
		cpuMS:   float64(cpu) * 1000 / float64(clockTicks) / float64(o.n),
		elapsed: elapsed,
	}, nil
}

// resetMailboxes empties the mailboxes the runs write: alice's Maildir, bob's mbox,
// Dovecot's mbox directory and the floor's Maildir.
func resetMailboxes(base string) error {
	for _, p := range []string{"example.com/alice", "example.com/bob", "example.com/bob.dovecot", "example.com/bob.lock"} {
		if err := os.RemoveAll(filepath.Join(base, p)); err != nil {
			return err
		}
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		d := filepath.Join(base, "floor", sub)
		ents, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// reload runs `postfix reload` and waits until the master logged it and the processes of
// the old generation are gone (they finish their work and exit).
func reload(maillog string) error {
	off, err := fileSize(maillog)
	if err != nil {
		return err
	}
	if out, err := exec.Command("postfix", "reload").CombinedOutput(); err != nil {
		return fmt.Errorf("postfix reload: %v: %s", err, out)
	}
	re := regexp.MustCompile(`postfix/master\[\d+\]: reload -- version`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := readFrom(maillog, off)
		if err != nil {
			return err
		}
		if re.Match(b) {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("postfix reload: no reload line in the log after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	return nil
}

// submit sends o.n messages of o.size bytes to rcpt over o.conns SMTP connections. Every
// message carries X-Bench-Hold, which the HOLD rule in header_checks puts on hold.
func submit(o options, rcpt, tag string) error {
	var wg sync.WaitGroup
	errs := make([]error, o.conns)
	for c := range o.conns {
		wg.Go(func() {
			errs[c] = func() error {
				cl, err := smtp.Dial("127.0.0.1:25")
				if err != nil {
					return err
				}
				defer cl.Close()
				if err := cl.Hello("bench.example.org"); err != nil {
					return err
				}
				for i := c; i < o.n; i += o.conns {
					if err := cl.Mail("sender@example.org"); err != nil {
						return err
					}
					if err := cl.Rcpt(rcpt); err != nil {
						return err
					}
					w, err := cl.Data()
					if err != nil {
						return err
					}
					if _, err := w.Write(message(o.size, rcpt, fmt.Sprintf("%s.%d", tag, i))); err != nil {
						return err
					}
					if err := w.Close(); err != nil {
						return err
					}
				}
				return cl.Quit()
			}()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("submitting: %w", err)
		}
	}
	return nil
}

// message is a plain-text message of exactly size bytes: headers, then 64-byte numbered
// lines, none of which starts with "From ", so that every agent stores it as it is.
func message(size int, rcpt, id string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@example.org>\r\nTo: %s\r\nSubject: benchmark %s\r\n"+
		"Message-ID: <bench.%s@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nX-Bench-Hold: yes\r\n\r\n", rcpt, id, id)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%06d abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123\r\n", i)
	}
	out := b.Bytes()[:size-2]
	return append(out, '\r', '\n')
}

// waitHeld waits until the hold queue holds n messages and the others are empty.
func waitHeld(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		held, err := countFiles("/var/spool/postfix/hold")
		if err != nil {
			return err
		}
		other := 0
		for _, q := range []string{"incoming", "active", "deferred", "maildrop"} {
			c, err := countFiles("/var/spool/postfix/" + q)
			if err != nil {
				return err
			}
			other += c
		}
		if held == n && other == 0 {
			return nil
		}
		if held > n {
			return fmt.Errorf("%d messages on hold, want %d: the queue was not empty", held, n)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d of %d messages on hold, %d elsewhere in the queue", limit, held, n, other)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countFiles counts the regular files below dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n, err
}

var statusRE = regexp.MustCompile(`(?m)^.* postfix/[a-z0-9/-]+\[\d+\]: [0-9A-Za-z]+: to=<[^>]*>, .*status=(\w+) .*$`)

// waitSent reads the mail log from off until it has n status=sent lines. Any other status
// fails the run: a deferred message would only be retried minutes later.
func waitSent(maillog string, off int64, n int, deadline time.Time) error {
	sent := 0
	var partial []byte
	for {
		b, err := readFrom(maillog, off)
		if err != nil {
			return err
		}
		off += int64(len(b))
		partial = append(partial, b...)
		if i := bytes.LastIndexByte(partial, '\n'); i >= 0 {
			for _, m := range statusRE.FindAllSubmatch(partial[:i+1], -1) {
				if string(m[1]) != "sent" {
					return fmt.Errorf("a delivery was not sent: %s", m[0])
				}
				sent++
			}
			partial = append(partial[:0], partial[i+1:]...)
		}
		if sent >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d deliveries logged before the time limit", sent, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countDelivered counts the messages in the mailbox the agent wrote.
func countDelivered(base string, a agent, format string) (int, error) {
	if a.name == "floor" { // one Maildir, whatever the recipient
		return countFiles(filepath.Join(base, "floor", "new"))
	}
	if format == "maildir" {
		n1, err := countFiles(filepath.Join(base, "example.com/alice/new"))
		if err != nil {
			return 0, err
		}
		n2, err := countFiles(filepath.Join(base, "example.com/alice/cur"))
		return n1 + n2, err
	}
	b, err := os.ReadFile(filepath.Join(base, "example.com/bob"))
	if err != nil {
		return 0, err
	}
	n := bytes.Count(b, []byte("\nFrom "))
	if bytes.HasPrefix(b, []byte("From ")) {
		n++
	}
	return n, nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() <= off {
		return nil, nil
	}
	b := make([]byte, fi.Size()-off)
	_, err = f.ReadAt(b, off)
	return b, err
}

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

// cpuTicks returns the busy CPU time of the whole machine (every field of /proc/stat's cpu
// line but idle and iowait).
func cpuTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	var sum int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return sum
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

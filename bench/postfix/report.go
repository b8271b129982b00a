package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"vdeliver/bench/internal/mdreport"
)

// machine is what the report says about where and when it ran.
type machine struct {
	date       time.Time
	start, end string // load averages
}

func machineNow() *machine { return &machine{date: time.Now().UTC(), start: loadavg()} }

// best is an agent's concurrency with the highest median rate for one format.
type best struct {
	label  string
	median float64
	ok     bool
}

func report(o options, m *machine, agents []agent, results map[key][]result) string {
	var b strings.Builder
	var uts syscall.Utsname
	syscall.Uname(&uts)
	fmt.Fprintf(&b, "Measured %s on %s: %d CPUs (%s), Linux %s, mailboxes on %s, load average %s at the start and %s at the end (1, 5, 15 min). ",
		m.date.Format("2006-01-02 15:04 UTC"), cstr(uts.Nodename[:]), runtime.NumCPU(), cpuModel(), cstr(uts.Release[:]),
		fsType(o.base), m.start, m.end)
	fmt.Fprintf(&b, "Postfix %s, Dovecot %s (Debian), %s.  \n", pkgVersion("postfix"), pkgVersion("dovecot-lmtpd"), runtime.Version())
	fmt.Fprintf(&b, "%d messages of %d bytes per run, submitted over SMTP and held, then released at once; msg/s is %d over the time from the release to Postfix's last status=sent log line. "+
		"%d rounds, the agents in a different order each round; median over the rounds. "+
		"CPU ms/msg is the busy time of the whole machine over the run per message (everything: Postfix, the agent, and whatever else ran). "+
		"\"× vdeliver-lmtp\" is vdeliver-lmtp's median rate at its best concurrency over the row's (above 1: vdeliver-lmtp is faster).\n\n",
		o.n, o.size, o.n, o.rounds)

	bests := map[string]map[string]best{} // format → agent name → best
	for _, f := range o.formats {
		bests[f] = map[string]best{}
		for _, a := range agents {
			rs := results[key{a.label(), f}]
			med := median(rates(rs))
			if cur := bests[f][a.name]; !cur.ok || med > cur.median {
				bests[f][a.name] = best{a.label(), med, true}
			}
		}
	}

	for _, f := range o.formats {
		rcpt := "alice@example.com, Maildir"
		if f == "mbox" {
			rcpt = "bob@example.com, mbox"
		}
		fmt.Fprintf(&b, "### %s (%s)\n\n", map[string]string{"maildir": "Maildir", "mbox": "mbox"}[f], rcpt)
		head := []string{"agent"}
		for r := range o.rounds {
			head = append(head, fmt.Sprintf("round %d", r+1))
		}
		head = append(head, "median msg/s", "CPU ms/msg", "× vdeliver-lmtp")
		ref, haveRef := bests[f]["vdeliver-lmtp"]
		var rows [][]string
		for _, a := range agents {
			rs := results[key{a.label(), f}]
			row := []string{a.label()}
			if bb := bests[f][a.name]; bb.label == a.label() && lmtpAgents[a.name] && len(o.concurrencies) > 1 {
				row[0] += " (best)"
			}
			for _, r := range rs {
				row = append(row, fmt.Sprintf("%.0f", r.rate))
			}
			med := median(rates(rs))
			row = append(row, fmt.Sprintf("**%.0f**", med), fmt.Sprintf("%.2f", median(cpus(rs))))
			if haveRef && med > 0 {
				row = append(row, fmt.Sprintf("%.2f×", ref.median/med))
			} else {
				row = append(row, "–")
			}
			rows = append(rows, row)
		}
		b.WriteString(mdreport.Table(head, rows))
		b.WriteString("\n")
	}

	b.WriteString("### Targets (each agent at its best concurrency)\n\n")
	for _, f := range o.formats {
		v, ok := bests[f]["vdeliver-lmtp"]
		if !ok {
			fmt.Fprintf(&b, "- %s: vdeliver-lmtp not measured.\n", f)
			continue
		}
		for _, t := range []struct {
			peer string
			min  float64
		}{{"floor", 0.9}, {"dovecot-lmtp", 1.5}, {"vdeliver-pipe", 5}, {"virtual", 0}} {
			p, ok := bests[f][t.peer]
			if !ok || p.median == 0 {
				continue
			}
			r := v.median / p.median
			verdict := ""
			if t.min > 0 {
				verdict = fmt.Sprintf(" (target ≥ %.1f×): %s", t.min, check(r >= t.min))
			}
			fmt.Fprintf(&b, "- %s: %s (%.0f msg/s) over %s (%.0f msg/s): **%.2f×**%s.\n", f, v.label, v.median, p.label, p.median, r, verdict)
		}
	}
	return b.String()
}

func rates(rs []result) []float64 {
	var out []float64
	for _, r := range rs {
		out = append(out, r.rate)
	}
	return out
}

func cpus(rs []result) []float64 {
	var out []float64
	for _, r := range rs {
		out = append(out, r.cpuMS)
	}
	return out
}

func check(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// fsType names the file system path is on as the mount table does (stat -f reports ext4
// as ext2/ext3).
func fsType(path string) string {
	out, err := exec.Command("findmnt", "-n", "-o", "FSTYPE", "-T", path).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func pkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "?"
	}
	return string(out)
}

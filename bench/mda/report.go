package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"vdeliver/bench/internal/mdreport"
)

// peers are the agents vdeliver is compared with; readexit is the floor, not a peer.
var peers = []string{"dovecot-lda", "maildrop", "procmail"}

// report renders the results as Markdown: the machine, a table per format for the 4 kB
// message (the reference size), median wall time per message size, the parallel rates and
// the targets, each marked met or missed.
func report(o options, m *machine, set map[string][]*target, msgs []message, samples map[key][]sample,
	dur map[key]durability, par map[key]parallel, cold string, lm map[string]lmtpResult, aside string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Measured %s on %s: %d CPUs, load average %s at the start and %s at the end (1, 5, 15 min), "+
		"Linux %s, mailboxes on %s, Go %s.  \n",
		m.date.Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), m.start, m.end,
		commandOutput("uname", "-r"), fsType(os.TempDir()), runtime.Version())
	fmt.Fprintf(&b, "Peers: dovecot-core %s, maildrop %s, procmail %s (Debian).  \n",
		pkgVersion("dovecot-core"), pkgVersion("maildrop"), pkgVersion("procmail"))
	who := fmt.Sprintf("uid %d", o.uid)
	fmt.Fprintf(&b, "%d timed deliveries per agent, format and message, one process each, agents alternated run by run, "+
		"all run as %s; times in ms; \"× vdeliver\" is the agent's median wall time over vdeliver's, \"CPU × vdeliver\" the same for CPU time "+
		"(above 1: vdeliver is faster). On a loaded machine the CPU ratio is the steadier of the two.\n\n",
		o.n, who)

	formats := []string{"maildir", "mbox"}
	title := map[string]string{"maildir": "Maildir", "mbox": "mbox"}
	for _, f := range formats {
		fmt.Fprintf(&b, "### %s, 4 kB message\n\n", title[f])
		vd := summarize(samples[key{"vdeliver", f, "4 kB"}])
		var rows [][]string
		for _, t := range set[f] {
			s := summarize(samples[key{t.mda, f, "4 kB"}])
			rows = append(rows, []string{t.mda, ms(s.median), ms(s.p95), ms(s.cpuMed), mb(s.rssMaxKB),
				ratio(s.median, vd.median), ratio(s.cpuMed, vd.cpuMed), syncText(t, dur[key{t.mda, f, ""}])})
		}
		b.WriteString(mdreport.Table([]string{"agent", "median", "p95", "CPU (median)", "peak RSS MB", "× vdeliver", "CPU × vdeliver", "syncs (strace, one delivery)"}, rows))
		b.WriteString("\n")
	}

	for _, f := range formats {
		fmt.Fprintf(&b, "### %s, median wall time per message (ms)\n\n", title[f])
		head := []string{"agent"}
		for _, msg := range msgs {
			head = append(head, msg.label)
		}
		var rows [][]string
		for _, t := range set[f] {
			row := []string{t.mda}
			for _, msg := range msgs {
				row = append(row, ms(summarize(samples[key{t.mda, f, msg.label}]).median))
			}
			rows = append(rows, row)
		}
		b.WriteString(mdreport.Table(head, rows))
		b.WriteString("\n")
	}

	fmt.Fprintf(&b, "### %d parallel deliverers into one mailbox, 4 kB messages (%d each)\n\n", o.par, o.perWorker)
	var rows [][]string
	for _, t := range set["maildir"] {
		row := []string{t.mda}
		var notes []string
		for _, f := range formats {
			p := par[key{t.mda, f, ""}]
			row = append(row, fmt.Sprintf("%.0f", p.rate()))
			if p.failed > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d of %d failed (%s)", f, p.failed, p.failed+p.ok, firstLineOf(p.firstErr)))
			}
		}
		row = append(row, strings.Join(notes, "; "))
		rows = append(rows, row)
	}
	b.WriteString(mdreport.Table([]string{"agent", "Maildir msg/s", "mbox msg/s", "failures"}, rows))
	b.WriteString("\n")

	b.WriteString(lmtpTable(lm, aside))

	b.WriteString("### Targets\n\n")
	for _, f := range formats {
		get := func(mda string) summary { return summarize(samples[key{mda, f, "4 kB"}]) }
		fastest, fastestName := time.Duration(0), ""
		for _, p := range peers {
			if s := get(p); s.ok && (fastestName == "" || s.median < fastest) {
				fastest, fastestName = s.median, p
			}
		}
		floor := get("readexit")
		dovecot := get("dovecot-lda")
		for _, t := range set[f] {
			if !strings.HasPrefix(t.mda, "vdeliver") {
				continue
			}
			vd := get(t.mda)
			fmt.Fprintf(&b, "- %s, %s: no slower than the fastest peer (%s, %s ms): %s ms, %s. "+
				"At most ¼ of dovecot-lda (%s ms): %s, %s. Within 1.3× of readexit (%s ms): %s, %s. "+
				"Peak RSS under 20 MB: %s MB, %s. Median CPU beyond readexit's: %s ms.\n",
				title[f], t.mda, fastestName, ms(fastest), ms(vd.median), check(vd.median <= fastest),
				ms(dovecot.median), ratio(vd.median, dovecot.median), check(4*vd.median <= dovecot.median),
				ms(floor.median), ratio(vd.median, floor.median), check(10*vd.median <= 13*floor.median),
				mb(vd.rssMaxKB), check(vd.rssMaxKB < 20*1024), ms(vd.cpuMed-floor.cpuMed))
		}
	}
	b.WriteString(lmtpTargets(lm))
	if cold != "" {
		fmt.Fprintf(&b, "- Start-up under 0.3 ms of CPU (bench/mda/coldstart: main.cf with vdeliver's -o options and the tables, "+
			"timed with the thread CPU clock in fresh processes): %s; median %s.\n", cold, check(coldMedianBelow(cold, 0.3)))
	}
	return b.String()
}

// coldMedianBelow reads the median CPU milliseconds from coldstart's summary line.
func coldMedianBelow(line string, limit float64) bool {
	_, rest, ok := strings.Cut(line, "CPU median ")
	var v float64
	if _, err := fmt.Sscan(rest, &v); !ok || err != nil {
		return false
	}
	return v < limit
}

func check(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// syncText says what one delivery synced and whether that makes the delivery durable:
// a Maildir needs the file and the new/ directory synced, an mbox the file.
func syncText(t *target, d durability) string {
	if t.mail == "" {
		return "– (delivers nothing)"
	}
	var what []string
	if d.file {
		what = append(what, "file")
	}
	if d.dir {
		what = append(what, "directory")
	}
	if d.other > 0 {
		what = append(what, fmt.Sprintf("%d other", d.other))
	}
	s := fmt.Sprintf("%d fsync/fdatasync", d.calls)
	if len(what) > 0 {
		s += ": " + strings.Join(what, ", ")
	}
	switch {
	case t.format == "maildir" && d.file && d.dir, t.format == "mbox" && d.file:
		return s + " — durable"
	case t.format == "maildir" && d.file:
		return s + " — **new/ entry not synced**"
	}
	return s + " — **not synced**"
}

func firstLineOf(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func pkgVersion(pkg string) string {
	return commandOutput("dpkg-query", "-W", "-f", "${Version}", pkg)
}

// lmtpTable is the LMTP mode's section of the report.
func lmtpTable(lm map[string]lmtpResult, aside string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### LMTP mode: one `vdeliver lmtp` process, the session over pipes\n\n"+
		"Process start-up left out: CPU per message is (a session of %d transactions of the 4 kB message − an empty session) / %d, "+
		"median of 5. \"fsync aside\": mailboxes on %s; \"on disk\": beside the other agents' mailboxes. "+
		"Peak RSS is the process's, for the whole session.\n\n", lmtpPerSession, lmtpPerSession, aside)
	var rows [][]string
	for _, f := range []string{"maildir", "mbox"} {
		r := lm[f]
		rows = append(rows, []string{map[string]string{"maildir": "Maildir", "mbox": "mbox"}[f],
			ms(r.cpuAside), ms(r.cpuDisk), mb(r.rss4k), mb(r.rss10M)})
	}
	b.WriteString(mdreport.Table([]string{"format", "CPU ms/msg, fsync aside", "CPU ms/msg, on disk", "peak RSS MB, 4 kB session", "peak RSS MB, one 10 MB message"}, rows))
	b.WriteString("\n")
	return b.String()
}

// lmtpTargets are the LMTP mode's target lines.
func lmtpTargets(lm map[string]lmtpResult) string {
	var b strings.Builder
	for _, f := range []string{"maildir", "mbox"} {
		r := lm[f]
		fmt.Fprintf(&b, "- LMTP, %s: at most 0.5 ms of CPU per 4 kB message, fsync aside: %s ms, %s. "+
			"Peak RSS under 20 MB with a 10 MB message in flight: %s MB, %s.\n",
			map[string]string{"maildir": "Maildir", "mbox": "mbox"}[f], ms(r.cpuAside), check(r.cpuAside <= 500*time.Microsecond), mb(r.rss10M), check(r.rss10M < 20*1024))
	}
	return b.String()
}

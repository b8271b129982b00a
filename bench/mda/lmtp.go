package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// lmtpResult is what the LMTP rows report for one mailbox format.
type lmtpResult struct {
	cpuAside time.Duration // CPU per 4 kB message, mailboxes on tmpfs (fsync does nothing there)
	cpuDisk  time.Duration // the same with the mailboxes beside the others
	rss4k    int64         // peak RSS (KiB) of a session of lmtpPerSession 4 kB messages
	rss10M   int64         // peak RSS (KiB) of a session with one 10 MB message
}

// lmtpPerSession is the number of 4 kB messages one timed LMTP session delivers.
const lmtpPerSession = 200

// measureLMTP runs vdeliver's LMTP mode (`vdeliver lmtp`, one process, the session on
// its standard input and output as spawn(8) gives it, here pipes) with vdeliver's own
// configuration. The CPU of a message leaves out process start-up: it is the CPU of a
// session of lmtpPerSession messages minus that of an empty session (LHLO, QUIT), over
// lmtpPerSession, median of runs runs. "fsync aside" puts the mailboxes on a tmpfs of the
// harness's own, where fsync returns at once; that needs root, and without it the figure
// is the on-disk one. aside says which.
func measureLMTP(rn runner, set map[string][]*target, work string, msg4k []byte, runs int) (res map[string]lmtpResult, aside string, err error) {
	res = map[string]lmtpResult{}
	tmpfs := filepath.Join(work, "lmtp-tmpfs")
	aside = "tmpfs"
	if err := os.MkdirAll(tmpfs, 0o755); err != nil {
		return nil, "", err
	}
	if os.Geteuid() != 0 || exec.Command("mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", tmpfs).Run() != nil {
		aside = fsType(work) + " (no tmpfs: not root or mount failed), fsync included"
	} else {
		defer exec.Command("umount", tmpfs).Run()
	}
	big := generate(10_000_000) // 10 MB, under message_size_limit's default (10,240,000)
	for _, f := range []string{"maildir", "mbox"} {
		t := set[f][0] // vdeliver's own build comes first
		if t.mda != "vdeliver" {
			return nil, "", fmt.Errorf("LMTP rows: first %s target is %s, not vdeliver", f, t.mda)
		}
		rcpt := maildirRcpt
		if f == "mbox" {
			rcpt = mboxRcpt
		}
		diskArgv, err := lmtpArgv(t.argv, "")
		if err != nil {
			return nil, "", err
		}
		asideBase := filepath.Join(tmpfs, f)
		if err := os.MkdirAll(filepath.Join(asideBase, "example.com"), 0o700); err != nil {
			return nil, "", err
		}
		if err := chownTree(asideBase, rn.uid, rn.gid); err != nil {
			return nil, "", err
		}
		asideArgv, err := lmtpArgv(t.argv, asideBase)
		if err != nil {
			return nil, "", err
		}
		var r lmtpResult
		cpuPer := func(argv []string) (time.Duration, int64, error) {
			var per []time.Duration
			var rss int64
			for range runs {
				empty, err := rn.lmtpSession(t, argv, rcpt, nil, 0)
				if err != nil {
					return 0, 0, err
				}
				full, err := rn.lmtpSession(t, argv, rcpt, msg4k, lmtpPerSession)
				if err != nil {
					return 0, 0, err
				}
				per = append(per, (full.cpu-empty.cpu)/lmtpPerSession)
				rss = max(rss, full.rssKB)
			}
			slices.Sort(per)
			return median(per), rss, nil
		}
		if r.cpuAside, r.rss4k, err = cpuPer(asideArgv); err != nil {
			return nil, "", err
		}
		if r.cpuDisk, _, err = cpuPer(diskArgv); err != nil {
			return nil, "", err
		}
		s, err := rn.lmtpSession(t, asideArgv, rcpt, big, 1)
		if err != nil {
			return nil, "", err
		}
		r.rss10M = s.rssKB
		res[f] = r
	}
	return res, aside, nil
}

// lmtpArgv turns vdeliver's pipe-mode command line into `vdeliver lmtp` with the same
// -c, -o and --log-file options, and the mailbox base replaced when base is not empty.
func lmtpArgv(pipe []string, base string) ([]string, error) {
	argv := []string{pipe[0], "lmtp"}
	for i := 1; i < len(pipe); i++ {
		switch a := pipe[i]; a {
		case "-c", "-o", "--log-file":
			if i+1 >= len(pipe) {
				return nil, fmt.Errorf("vdeliver's command line ends after %s", a)
			}
			v := pipe[i+1]
			if a == "-o" && base != "" && strings.HasPrefix(v, "virtual_mailbox_base=") {
				v = "virtual_mailbox_base=" + base
			}
			if a == "--log-file" && base != "" {
				v = filepath.Join(base, "log")
			}
			argv = append(argv, a, v)
			i++
		}
	}
	return argv, nil
}

// lmtpSession runs argv through spawn and, on its standard input and output, greets it
// with LHLO, delivers msg (LF line ends) n times to rcpt, one transaction each, and quits.
// Every reply must be the expected one; the sample is what wait4 reported for the agent.
func (r runner) lmtpSession(t *target, argv []string, rcpt string, msg []byte, n int) (sample, error) {
	rep, w, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer rep.Close()
	cmd := r.command(t, append([]string{r.spawn, "--"}, argv...))
	cmd.Stdout = nil
	in, err := cmd.StdinPipe()
	if err != nil {
		w.Close()
		return sample{}, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		w.Close()
		return sample{}, err
	}
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return sample{}, fmt.Errorf("vdeliver lmtp: %w", err)
	}
	data := lmtpData(msg)
	talk := func() error {
		br := bufio.NewReader(out)
		bw := bufio.NewWriterSize(in, 64<<10)
		expect := func(code string) error {
			if err := bw.Flush(); err != nil {
				return err
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return fmt.Errorf("waiting for %s: %w", code, err)
				}
				if !strings.HasPrefix(line, code) || len(line) < 4 {
					return fmt.Errorf("got %q, want %s", strings.TrimSpace(line), code)
				}
				if line[3] == ' ' {
					return nil
				}
			}
		}
		if err := expect("220"); err != nil {
			return err
		}
		fmt.Fprintf(bw, "LHLO bench.example.org\r\n")
		if err := expect("250"); err != nil {
			return err
		}
		for range n {
			fmt.Fprintf(bw, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", sender, rcpt)
			for _, c := range []string{"250", "250", "354"} {
				if err := expect(c); err != nil {
					return err
				}
			}
			bw.Write(data)
			if err := expect("250"); err != nil {
				return err
			}
		}
		fmt.Fprintf(bw, "QUIT\r\n")
		if err := expect("221"); err != nil {
			return err
		}
		return in.Close()
	}
	terr := talk()
	if terr != nil {
		in.Close()
		io.Copy(io.Discard, out)
	}
	b, rerr := io.ReadAll(rep)
	werr := cmd.Wait()
	var wall, cpu, rss int64
	var code int
	if _, err := fmt.Sscan(string(b), &wall, &cpu, &rss, &code); err != nil || terr != nil || werr != nil || rerr != nil || code != 0 {
		return sample{}, fmt.Errorf("%s: exit %d (%v); its output ends:\n%s", strings.Join(argv, " "), code,
			errors.Join(terr, werr, rerr, err), tail(t.out.Name(), 800))
	}
	return sample{wall: time.Duration(wall), cpu: time.Duration(cpu), rssKB: rss}, nil
}

// lmtpData is msg as the DATA of an LMTP transaction: CR LF line ends, dot-stuffed, and
// the final dot line.
func lmtpData(msg []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(msg) + len(msg)/32 + 8)
	for len(msg) > 0 {
		line, rest, _ := bytes.Cut(msg, []byte("\n"))
		if bytes.HasPrefix(line, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(line)
		b.WriteString("\r\n")
		msg = rest
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

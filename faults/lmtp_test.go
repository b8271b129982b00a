package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The LMTP mode (vdeliver lmtp) under the same faults: a client that goes away in the
// middle of DATA, and a process SIGKILLed in the middle of a delivery. What Postfix's
// lmtp client does next is retry the message (it got no reply, or a lost connection);
// the mailbox must hold nothing or the whole message, never a part.

var (
	lmtpBinOnce sync.Once
	lmtpPlain   string // binPlain and binFault where the delivery uid can run them
	lmtpFault   string
	lmtpBinErr  error
)

// lmtpBins copies the two builds into a directory every uid can read: the LMTP mode
// refuses to run as root, so as root (CI) it runs as the delivery uid.
func lmtpBins(t *testing.T) (plain, fault string) {
	lmtpBinOnce.Do(func() {
		// Beside the builds, in the directory runMain removes at the end; it is
		// opened for search to every uid, as the copies are.
		dir := filepath.Join(filepath.Dir(binPlain), "lmtp")
		err := os.Chmod(filepath.Dir(binPlain), 0o755)
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		for _, b := range []struct {
			src string
			dst *string
		}{{binPlain, &lmtpPlain}, {binFault, &lmtpFault}} {
			if err != nil {
				break
			}
			*b.dst = filepath.Join(dir, filepath.Base(b.src))
			var data []byte
			if data, err = os.ReadFile(b.src); err == nil {
				err = os.WriteFile(*b.dst, data, 0o755)
			}
		}
		lmtpBinErr = err
	})
	if lmtpBinErr != nil {
		t.Fatal(lmtpBinErr)
	}
	return lmtpPlain, lmtpFault
}

// lmtpSession is the session Postfix's lmtp client would send for msg (LF lines): the
// message dot-stuffed with CRLF line ends.
func lmtpSession(msg []byte) (head, data, tail []byte) {
	head = []byte("LHLO faults\r\nXFORWARD IDENT=FAULTS\r\nMAIL FROM:<" + sender + ">\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\n")
	var d bytes.Buffer
	for _, l := range bytes.SplitAfter(msg, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[0] == '.' {
			d.WriteByte('.')
		}
		d.Write(bytes.TrimSuffix(l, []byte("\n")))
		d.WriteString("\r\n")
	}
	return head, d.Bytes(), []byte(".\r\nQUIT\r\n")
}

// lmtpRun runs one vdeliver lmtp session, writing input to its standard input and then
// closing it (a client gone, when input stops in the middle).
func (b *box) lmtpRun(bin string, input []byte, env []string) result {
	b.t.Helper()
	args := []string{"lmtp", "-c", b.dir, "--idle-timeout", "20s"}
	// A dotlock left by a killed delivery goes stale within the follow-up limit, as
	// in the pipe mode's kill rows.
	for _, o := range lockOpts {
		args = append(args, "-o", o)
	}
	var cmd *exec.Cmd
	var w io.WriteCloser
	var out, errOut bytes.Buffer
	start := time.Now()
	for i := 0; ; i++ {
		cmd = exec.Command(bin, args...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TZ=UTC"}, env...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if os.Geteuid() == 0 {
			uid, gid := deliveryIDs()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		var err error
		if w, err = cmd.StdinPipe(); err != nil {
			b.t.Fatal(err)
		}
		// ETXTBSY: a child forked elsewhere in this process while a binary was being
		// copied holds it open for writing until its exec.
		err = cmd.Start()
		if errors.Is(err, syscall.ETXTBSY) && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			b.t.Fatal(err)
		}
		break
	}
	w.Write(input)
	w.Close()
	err := cmd.Wait()
	r := result{stdout: out.String(), stderr: errOut.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.exit, r.signal = -1, ws.Signal()
		} else {
			r.exit = ws.ExitStatus()
		}
	default:
		b.t.Errorf("running vdeliver lmtp: %v", err)
		r.exit = -2
	}
	return r
}

// lmtpDeliver delivers msg through a whole session and checks the reply.
func (b *box) lmtpDeliver(fault string, msg []byte) {
	b.t.Helper()
	plain, _ := lmtpBins(b.t)
	if m := idRE.FindSubmatch(msg); m != nil {
		b.expect(string(m[1]), msg)
	}
	head, data, tail := lmtpSession(msg)
	r := b.lmtpRun(plain, append(append(head, data...), tail...), nil)
	if r.exit != 0 || !strings.Contains(r.stdout, "\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 "+delivered(b.format)+"\r\n221 2.0.0 Bye\r\n") || r.stderr != "" {
		b.t.Errorf("%s/%s: LMTP delivery: %v", fault, b.format, r)
		tally.add(fault, b.format, func(r *row) { r.wrongStat++ })
	}
}

// TestLMTPDisconnect: the client goes away in the middle of DATA, at several points up
// to the last byte of the final ".\r\n", with a message held in memory and one spooled
// to a file. Nothing reaches the mailbox, the process ends with 0, and the next
// session delivers.
func TestLMTPDisconnect(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			plain, _ := lmtpBins(t)
			b := newBox(t, format, "")
			b.lmtpDeliver("lmtp-disconnect", message("seed", 3000))
			bounds := map[string][2]int{"seed": {1, 1}}
			for _, size := range []int{20000, 1 << 20} {
				msg := message(fmt.Sprintf("cut-%d", size), size)
				head, data, tail := lmtpSession(msg)
				for _, cut := range []int{0, len(data) / 2, len(data), len(data) + 1, len(data) + 2} {
					b.run1("lmtp-disconnect")
					in := append(append(append([]byte{}, head...), data...), tail...)[:len(head)+cut]
					r := b.lmtpRun(plain, in, nil)
					if r.exit != 0 || r.stderr != "" || strings.Contains(r.stdout, "2.0.0 delivered") || !strings.HasSuffix(r.stdout, "354 End data with <CR><LF>.<CR><LF>\r\n") {
						t.Errorf("cut at %d of %d: %v", cut, len(data), r)
						tally.add("lmtp-disconnect", format, func(r *row) { r.wrongStat++ })
					}
					bounds[idOf(msg)] = [2]int{0, 0}
					b.check("lmtp-disconnect", bounds)
				}
			}
			b.lmtpDeliver("lmtp-disconnect", message("next", 5000))
			bounds["next"] = [2]int{1, 1}
			b.check("lmtp-disconnect", bounds)
		})
	}
}

func idOf(msg []byte) string {
	if m := idRE.FindSubmatch(msg); m != nil {
		return string(m[1])
	}
	return ""
}

// TestLMTPKill: the LMTP process SIGKILLed at kill points of the delivery (the fault
// build), with a message in memory and one spooled to a file. The mailbox holds
// nothing or the whole message (a kill after the write but before the reply leaves
// it delivered, and Postfix's retry delivers it again, as with pipe(8)); no reply says
// delivered for a message that is not; the next session delivers.
func TestLMTPKill(t *testing.T) {
	points := map[string][]string{
		"maildir": {"maildir:start", "maildir:tmp-created", "maildir:half-write", "maildir:synced", "maildir:linked", "maildir:done"},
		"mbox":    {"mbox:start", "mbox:dotlocked", "mbox:half-write", "mbox:written", "mbox:synced", "mbox:closed"},
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			_, faultBin := lmtpBins(t)
			b := newBox(t, format, "")
			b.lmtpDeliver("lmtp-kill", message("seed", 3000))
			bounds := map[string][2]int{"seed": {1, 1}}
			for _, size := range []int{20000, 1 << 20} {
				for _, p := range points[format] {
					fault := "lmtp-kill"
					if strings.HasSuffix(p, "half-write") {
						fault = "lmtp-kill-torn"
					}
					b.run1(fault)
					msg := message(fmt.Sprintf("killed-%d-%s", size, strings.ReplaceAll(p, ":", "-")), size)
					b.expect(idOf(msg), msg)
					head, data, tail := lmtpSession(msg)
					r := b.lmtpRun(faultBin, append(append(head, data...), tail...), []string{"VDELIVER_KILL_AT=" + p})
					if r.exit != -1 || r.signal != syscall.SIGKILL {
						t.Fatalf("%s: kill point not reached: %v", p, r)
					}
					tally.killpoint(p)
					if strings.Contains(r.stdout, "2.0.0 delivered") {
						t.Errorf("%s: a reply said delivered before the process died: %q", p, r.stdout)
						tally.add(fault, format, func(r *row) { r.wrongStat++ })
					}
					bounds[idOf(msg)] = [2]int{0, 1}
					b.checkKilled(fault, bounds)
					// Postfix's retry, or the next message: the normal build.
					next := message(fmt.Sprintf("next-%d-%s", size, strings.ReplaceAll(p, ":", "-")), 5000)
					b.lmtpDeliver(fault, next)
					bounds[idOf(next)] = [2]int{1, 1}
					b.check(fault, bounds)
				}
			}
		})
	}
}

package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// benchLMTP delivers b.N messages of size bytes (LF lines of about 64 bytes) through
// one real `vdeliver lmtp` process, pipelining each transaction, into a Maildir on
// tmpfs (/dev/shm, where fsync costs nothing: the numbers leave it out), and reports
// the process's CPU per message and its peak RSS. Process start is left out by
// subtracting a session without messages. Set VDELIVER_BENCH_BIN to a vdeliver
// binary to measure it instead of this test binary.
func benchLMTP(b *testing.B, size int) {
	shm := "/dev/shm"
	if _, err := os.Stat(shm); err != nil {
		b.Skip("no /dev/shm")
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp(shm, "vdeliver-lmtp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	// VDELIVER_BENCH_BIN: measure a vdeliver built as make build builds it, rather
	// than this test binary (which links the test libraries too).
	if p := os.Getenv("VDELIVER_BENCH_BIN"); p != "" {
		exe = p
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "vdeliver")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		b.Fatal(err)
	}
	uid, gid := deliveryUID()
	base := filepath.Join(dir, "vmail")
	os.Mkdir(base, 0o755)
	os.Chown(base, uid, gid)
	cf := "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = " + base + "\nvirtual_mailbox_maps = texthash:" + dir + "/vmailbox\n" +
		"virtual_uid_maps = static:" + strconv.Itoa(uid) + "\nvirtual_gid_maps = static:" + strconv.Itoa(gid) + "\nmessage_size_limit = 20000000\nvirtual_mailbox_limit = 0\n"
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte(cf), 0o644)
	os.WriteFile(filepath.Join(dir, "vmailbox"), []byte("alice@example.com alice/\n"), 0o644)
	var msg strings.Builder
	msg.WriteString("Subject: bench\r\nFrom: a@example.org\r\n\r\n")
	for i := 0; msg.Len() < size; i++ {
		fmt.Fprintf(&msg, "line %d of the message, text to fill it to the size wanted....\r\n", i)
	}
	tx := "MAIL FROM:<a@example.org> SIZE=" + strconv.Itoa(msg.Len()) + "\r\nRCPT TO:<alice@example.com> ORCPT=rfc822;alice@example.com\r\nDATA\r\n" + msg.String() + ".\r\n"
	session := func(n int) (cpu float64, rssKB int64) {
		cmd := startBenchLMTP(b, bin, dir)
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			br := bufio.NewReader(out)
			var err error
			for want := 1 + 8 + 4*n + 1; want > 0 && err == nil; want-- { // greeting, LHLO, per message 4 replies, QUIT
				var l string
				if l, err = br.ReadString('\n'); err == nil && l[0] != '2' && l[0] != '3' {
					err = fmt.Errorf("reply %q", l)
				}
			}
			io.Copy(io.Discard, br)
			done <- err
		}()
		bw := bufio.NewWriterSize(in, 64<<10)
		bw.WriteString("LHLO bench\r\n")
		for range n {
			bw.WriteString(tx)
		}
		bw.WriteString("QUIT\r\n")
		bw.Flush()
		in.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return float64(syscall.TimevalToNsec(ru.Utime)+syscall.TimevalToNsec(ru.Stime)) / 1e3, ru.Maxrss
	}
	base0, _ := session(0)
	b.ResetTimer()
	cpu, rss := session(b.N)
	b.StopTimer()
	b.ReportMetric((cpu-base0)/float64(b.N), "cpu-us/msg")
	b.ReportMetric(float64(rss)/1024, "maxrss-MB")
}

func startBenchLMTP(b *testing.B, bin, dir string) *execCmd {
	cmd := newExecCmd(bin, "lmtp", "-c", dir, "--log-file", "/dev/null")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=/nonexistent"}
	if os.Geteuid() == 0 {
		uid, gid := deliveryUID()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	}
	return cmd
}

func BenchmarkLMTP4k(b *testing.B)   { benchLMTP(b, 4<<10) }
func BenchmarkLMTP10MB(b *testing.B) { benchLMTP(b, 10<<20) }

type execCmd = exec.Cmd

var newExecCmd = exec.Command

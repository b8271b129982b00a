package cli

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lmtpClient drives a real `vdeliver lmtp` process over its standard input and output,
// as spawn(8) connects Postfix's lmtp client to it.
type lmtpClient struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// vdeliverBinary is this test binary under the name vdeliver (testscript.Main runs
// main for that name) in a directory the delivery uid can reach.
func vdeliverBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	b, err := os.ReadFile(exe)
	must(t, err)
	bin := filepath.Join(dir, "vdeliver")
	must(t, os.WriteFile(bin, b, 0o755))
	return bin
}

// lmtpWorkDir is a directory for main.cf, tables and a base, all the delivery uid's.
func lmtpWorkDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.Mkdir(filepath.Join(dir, "vmail"), 0o755))
	uid, gid := deliveryUID()
	must(t, os.Chown(filepath.Join(dir, "vmail"), uid, gid))
	return dir
}

func startLMTP(t *testing.T, bin string, args ...string) *lmtpClient {
	t.Helper()
	var cmd *exec.Cmd
	var in io.WriteCloser
	var outp io.ReadCloser
	must(t, startRetrying(func() *exec.Cmd {
		cmd = exec.Command(bin, append([]string{"lmtp"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=/nonexistent"}
		if os.Geteuid() == 0 {
			uid, gid := deliveryUID()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		var err error
		in, err = cmd.StdinPipe()
		must(t, err)
		outp, err = cmd.StdoutPipe()
		must(t, err)
		cmd.Stderr = os.Stderr
		return cmd
	}, false))
	c := &lmtpClient{t: t, cmd: cmd, in: in, out: bufio.NewReader(outp)}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	if g := c.reply(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// reply reads one reply, all its lines, joined with "|" and without CRLF.
func (c *lmtpClient) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.out.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a reply: %v (so far %q)", err, lines)
		}
		if !strings.HasSuffix(l, "\r\n") {
			c.t.Fatalf("reply line without CRLF: %q", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "|")
		}
	}
}

// send writes lines (CRLF added) without reading.
func (c *lmtpClient) send(lines ...string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

// do sends one command and returns its reply.
func (c *lmtpClient) do(line string) string {
	c.t.Helper()
	c.send(line)
	return c.reply()
}

func (c *lmtpClient) expect(line, want string) {
	c.t.Helper()
	if got := c.do(line); got != want {
		c.t.Fatalf("%s: %q, want %q", line, got, want)
	}
}

// A change of a table or of main.cf between transactions loads a new configuration,
// whole, for the next transaction; a transaction already running keeps the one it
// started with; a main.cf that does not load defers every recipient (4.3.5) until it
// is fixed.
// A table named by a relative path (read in $queue_directory, as a delivery reads it)
// and a table inside union: are watched like the others: a user added to either is
// accepted by the next transaction.
func TestLMTPReloadRelativeAndUnion(t *testing.T) {
	bin := vdeliverBinary(t)
	dir := lmtpWorkDir(t)
	uid, gid := deliveryUID()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+"/vmail\n"+
		"queue_directory = "+dir+"\n"+
		"virtual_mailbox_maps = texthash:vmailbox, unionmap:{texthash:"+dir+"/more}\n"+
		"virtual_uid_maps = static:"+strconv.Itoa(uid)+"\nvirtual_gid_maps = static:"+strconv.Itoa(gid)+"\n")
	writeFile(t, filepath.Join(dir, "vmailbox"), "alice@example.com alice/\n")
	writeFile(t, filepath.Join(dir, "more"), "bob@example.com bob/\n")
	c := startLMTP(t, bin, "-c", dir)
	c.do("LHLO x")
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<carol@example.com>", `550 5.1.1 unknown user: "carol@example.com"`)
	c.expect("RCPT TO:<dave@example.com>", `550 5.1.1 unknown user: "dave@example.com"`)
	c.expect("RSET", "250 2.0.0 Ok")
	writeFile(t, filepath.Join(dir, "vmailbox"), "alice@example.com alice/\ncarol@example.com carol/\n")
	writeFile(t, filepath.Join(dir, "more"), "bob@example.com bob/\ndave@example.com dave/\n")
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 Ok")
	c.expect("RCPT TO:<dave@example.com>", "250 2.1.5 Ok")
	c.expect("RSET", "250 2.0.0 Ok")
}

// A change of vdeliver_quota_maps alone is a change of configuration too: its table is
// watched like the others.
func TestLMTPReloadQuotaTable(t *testing.T) {
	bin := vdeliverBinary(t)
	dir := lmtpWorkDir(t)
	uid, gid := deliveryUID()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+"/vmail\n"+
		"virtual_mailbox_maps = static:alice/\nvdeliver_quota_maps = texthash:"+dir+"/quota\n"+
		"virtual_uid_maps = static:"+strconv.Itoa(uid)+"\nvirtual_gid_maps = static:"+strconv.Itoa(gid)+"\n")
	writeFile(t, filepath.Join(dir, "quota"), "alice@example.com 1000000S\n")
	// Files changed in the last settleTime are reloaded anyway; wait until these are
	// settled, so that only the watch list can notice the change below.
	time.Sleep(settleTime + 100*time.Millisecond)
	c := startLMTP(t, bin, "-c", dir)
	c.do("LHLO x")
	deliver := func(want string) {
		t.Helper()
		c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
		c.expect("RCPT TO:<alice@example.com>", "250 2.1.5 Ok")
		c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
		c.send("Subject: q", "", "x", ".")
		if got := c.reply(); got != want {
			t.Fatalf("after DATA: %q, want %q", got, want)
		}
	}
	deliver("250 2.0.0 delivered to maildir")
	writeFile(t, filepath.Join(dir, "quota"), "alice@example.com 1S\n")
	deliver("552 5.2.2 mailbox full")
}

func TestLMTPReload(t *testing.T) {
	bin := vdeliverBinary(t)
	dir := lmtpWorkDir(t)
	uid, gid := deliveryUID()
	cf := "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = " + dir + "/vmail\n" +
		"virtual_mailbox_maps = texthash:" + dir + "/vmailbox\n" +
		"virtual_uid_maps = static:" + strconv.Itoa(uid) + "\nvirtual_gid_maps = static:" + strconv.Itoa(gid) + "\n"
	writeFile(t, filepath.Join(dir, "main.cf"), cf)
	writeFile(t, filepath.Join(dir, "vmailbox"), "alice@example.com alice/\n")
	c := startLMTP(t, bin, "-c", dir)
	c.do("LHLO x")
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<carol@example.com>", `550 5.1.1 unknown user: "carol@example.com"`)
	c.expect("RCPT TO:<alice@example.com>", "250 2.1.5 Ok")
	// The table changes in the middle of the transaction: it keeps its configuration.
	writeFile(t, filepath.Join(dir, "vmailbox"), "carol@example.com carol/\n")
	c.expect("RCPT TO:<alice@example.com>", "250 2.1.5 Ok")
	c.expect("RCPT TO:<carol@example.com>", `550 5.1.1 unknown user: "carol@example.com"`)
	c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
	c.send("Subject: 1", "", "x", ".")
	if got := c.reply() + "|" + c.reply(); got != "250 2.0.0 delivered to maildir|250 2.0.0 already delivered in this run" {
		t.Fatalf("after DATA: %q", got)
	}
	// The next transaction has the new table.
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<alice@example.com>", `550 5.1.1 unknown user: "alice@example.com"`)
	c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 Ok")
	c.expect("RSET", "250 2.0.0 Ok")
	// A main.cf that does not load: every recipient waits.
	writeFile(t, filepath.Join(dir, "main.cf"), cf+"virtual_mailbox_lock = nonsense\n")
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<carol@example.com>", "451 4.3.5 mail system configuration error")
	c.expect("RSET", "250 2.0.0 Ok")
	writeFile(t, filepath.Join(dir, "main.cf"), cf)
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RCPT TO:<carol@example.com>", "250 2.1.5 Ok")
	c.expect("DATA", "354 End data with <CR><LF>.<CR><LF>")
	c.send("Subject: 2", "", "x", ".")
	if got := c.reply(); got != "250 2.0.0 delivered to maildir" {
		t.Fatalf("after DATA: %q", got)
	}
	// A new message_size_limit: announced at the next LHLO after a transaction loaded it.
	writeFile(t, filepath.Join(dir, "main.cf"), cf+"message_size_limit = 5000\n")
	c.expect("MAIL FROM:<s@example.org>", "250 2.1.0 Ok")
	c.expect("RSET", "250 2.0.0 Ok")
	c.expect("LHLO x", "250-"+hostnameOr("")+"|250-PIPELINING|250-ENHANCEDSTATUSCODES|250-8BITMIME|250-SIZE 5000|250-DSN|250-SMTPUTF8|250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
	c.expect("MAIL FROM:<s@example.org> SIZE=5001", "552 5.3.4 Message size exceeds fixed limit")
	c.send("QUIT")
	if got := c.reply(); got != "221 2.0.0 Bye" {
		t.Fatalf("QUIT: %q", got)
	}
	for _, m := range []string{"alice", "carol"} {
		ents, err := os.ReadDir(filepath.Join(dir, "vmail", m, "new"))
		if err != nil || len(ents) != 1 {
			t.Errorf("%s/new: %d files, %v", m, len(ents), err)
		}
	}
}

// The idle timeout ends a session that stays silent, with 421 and exit 0.
func TestLMTPIdleTimeout(t *testing.T) {
	bin := vdeliverBinary(t)
	dir := lmtpWorkDir(t)
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = static:x/\n")
	c := startLMTP(t, bin, "-c", dir, "--idle-timeout", "300ms", "--hostname", "h")
	c.expect("LHLO x", "250-h|250-PIPELINING|250-ENHANCEDSTATUSCODES|250-8BITMIME|250-SIZE 10240000|250-DSN|250-SMTPUTF8|250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
	start := time.Now()
	if got := c.reply(); got != "421 4.4.2 h Error: timeout exceeded" {
		t.Fatalf("after idling: %q", got)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// --listen: a unix socket with the permissions asked for, several sessions in parallel,
// a stale socket replaced and a live one or another file refused; a TCP address that is
// not loopback refused without --allow-remote.
func TestLMTPListen(t *testing.T) {
	bin := vdeliverBinary(t)
	dir := lmtpWorkDir(t)
	uid, gid := deliveryUID()
	writeFile(t, filepath.Join(dir, "main.cf"), "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+"/vmail\n"+
		"virtual_mailbox_maps = static:alice/\nvirtual_uid_maps = static:"+strconv.Itoa(uid)+"\nvirtual_gid_maps = static:"+strconv.Itoa(gid)+"\n")
	sockDir := filepath.Join(dir, "run")
	must(t, os.Mkdir(sockDir, 0o755))
	must(t, os.Chown(sockDir, uid, gid))
	sock := filepath.Join(sockDir, "lmtp")
	// A stale socket (nothing listens) is replaced.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	must(t, err)
	must(t, syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}))
	syscall.Close(fd)
	srv := startListener(t, bin, "-c", dir, "--listen", "unix:"+sock, "--socket-mode", "0600", "--max-connections", "4")
	fi, err := os.Lstat(sock)
	must(t, err)
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	// Eight clients at once against four slots: each either delivers or is told 421.
	const clients = 8
	results := make(chan string, clients)
	for i := range clients {
		go func() {
			results <- dialAndSend(sock, "LHLO c\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: "+strconv.Itoa(i)+"\r\n\r\nx\r\n.\r\nQUIT\r\n")
		}()
	}
	delivered := 0
	for range clients {
		r := <-results
		switch {
		case strings.Contains(r, "250 2.0.0 delivered to maildir\r\n221 2.0.0 Bye\r\n"):
			delivered++
		case strings.HasSuffix(r, "421 4.3.2 "+hostnameOr("")+" Error: too many connections\r\n"):
		default:
			t.Errorf("client got %q", r)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "vmail", "alice", "new"))
	if delivered < 4 || len(ents) != delivered {
		t.Errorf("%d sessions delivered, %d files", delivered, len(ents))
	}
	// A second server on the live socket is refused.
	if out, code := runOnce(t, bin, "-c", dir, "--listen", "unix:"+sock); code != 1 || !strings.Contains(out, "another server is listening there") {
		t.Errorf("second server: exit %d, %q", code, out)
	}
	srv.Process.Kill()
	srv.Wait()
	if out, code := runOnce(t, bin, "-c", dir, "--listen", "unix:"+filepath.Join(dir, "main.cf")); code != 1 || !strings.Contains(out, "exists and is not a socket") {
		t.Errorf("listen on a file: exit %d, %q", code, out)
	}
	if out, code := runOnce(t, bin, "-c", dir, "--listen", "tcp:192.0.2.1:2424"); code != 1 || !strings.Contains(out, "is not a loopback address") {
		t.Errorf("non-loopback: exit %d, %q", code, out)
	}
	if out, code := runOnce(t, bin, "-c", dir, "--listen", "tcp:localhost:2424"); code != 1 || !strings.Contains(out, "an IP address, not a name") {
		t.Errorf("host name: exit %d, %q", code, out)
	}
}

func startListener(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	var cmd *exec.Cmd
	must(t, startRetrying(func() *exec.Cmd {
		cmd = exec.Command(bin, append([]string{"lmtp"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=/nonexistent"}
		cmd.Stderr = os.Stderr
		if os.Geteuid() == 0 {
			uid, gid := deliveryUID()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		return cmd
	}, false))
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sock := strings.TrimPrefix(args[len(args)-5], "unix:")
	for i := 0; i < 200; i++ {
		if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 && dialAndSend(sock, "QUIT\r\n") != "" {
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no server on %s", sock)
	return nil
}

// dialAndSend connects to the unix socket, sends everything, and returns all it reads.
func dialAndSend(path, input string) string {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return ""
	}
	go f.Write([]byte(input))
	b, _ := io.ReadAll(f)
	return string(b)
}

func runOnce(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var out strings.Builder
	err := startRetrying(func() *exec.Cmd {
		out.Reset()
		cmd := exec.Command(bin, append([]string{"lmtp"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "VDELIVER_SYSLOG_SOCKET=/nonexistent"}
		cmd.Stdout, cmd.Stderr = &out, &out
		if os.Geteuid() == 0 {
			uid, gid := deliveryUID()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		return cmd
	}, true)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	must(t, err)
	return out.String(), 0
}

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Logs: one line per recipient to syslog, facility mail, ident vdeliver with
// the pid, in the shape of Postfix's delivery agents. These tests run the real binary
// (the privilege drop is real as root) with VDELIVER_SYSLOG_SOCKET pointing at a unix
// datagram socket they listen on, and read the lines back byte for byte.

// syslogd is a test syslog daemon: a unix datagram socket in dir.
type syslogd struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newSyslogd(t *testing.T, dir string) *syslogd {
	t.Helper()
	p := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &syslogd{t: t, path: p, conn: conn}
}

// lines returns every datagram received until none arrives for 200ms (the sender has
// exited by then: the tests read after the process is gone).
func (s *syslogd) lines() []string {
	s.t.Helper()
	var out []string
	buf := make([]byte, 65536)
	for {
		s.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return out
			}
			s.t.Fatal(err)
		}
		out = append(out, string(buf[:n]))
	}
}

// logSetup is a configuration directory the delivery uid can reach: main.cf, vmailbox
// and a base owned by the delivery uid.
func logSetup(t *testing.T, mainExtra string) string {
	t.Helper()
	dir := t.TempDir()
	uid, gid := deliveryUID()
	if os.Geteuid() == 0 {
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	main := fmt.Sprintf(`virtual_mailbox_domains = example.com
virtual_mailbox_base = %s/vmail
virtual_mailbox_maps = texthash:%s/vmailbox
virtual_uid_maps = static:%d
virtual_gid_maps = static:%d
`, dir, dir, uid, gid) + mainExtra
	write(t, filepath.Join(dir, "main.cf"), main)
	write(t, filepath.Join(dir, "vmailbox"), "alice@example.com  example.com/alice/\nbob@example.com    example.com/bob\n")
	if err := os.MkdirAll(filepath.Join(dir, "vmail", "example.com"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, d := range []string{"vmail", "vmail/example.com"} {
			if err := os.Chown(filepath.Join(dir, d), uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runLogged runs the vdeliver binary with the message on stdin and the syslog socket in
// its environment; it returns the exit code, stdout and the pid.
func runLogged(t *testing.T, socket string, msg string, args ...string) (int, string, int) {
	t.Helper()
	bin, err := exec.LookPath("vdeliver")
	if err != nil || !strings.Contains(bin, "testscript-main") {
		t.Fatalf("the test binary as vdeliver is not first in PATH (testscript.Main sets it up): %q %v", bin, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=" + socket}
	cmd.Stdin = strings.NewReader(msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr in delivery mode: %q", stderr.String())
	}
	return code, stdout.String(), cmd.Process.Pid
}

const logMsg = "From: a@example.org\nSubject: log\n\nbody\n"

// syslogHeader is syslog(3)'s local format: <PRI>, a time.Stamp date, TAG[PID]: ; PRI 22
// is facility mail (2) and severity info (6).
func syslogHeader(pid int) string {
	return `^<22>[A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} vdeliver\[` + strconv.Itoa(pid) + `\]: `
}

// delayRE is Postfix's delay field: a plain decimal number, never exponent notation,
// which log parsers (pflogsumm: delay=([\d.]+)) would cut short.
const delayRE = `delay=[0-9]+(\.[0-9]+)?`

// anyDelay accepts any delay text, for the tests about the other fields.
const anyDelay = `delay=[^,]+`

func TestSyslogDelivered(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	code, out, pid := runLogged(t, sd.path, logMsg, "-c", dir, "-f", "a@example.org", "-a", "Alice@Example.COM", "-i", "4AbC1", "--", "alice@example.com")
	if code != 0 || out != "2.0.0 delivered to maildir\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := sd.lines()
	if len(lines) != 1 {
		t.Fatalf("got %d syslog lines, want 1: %q", len(lines), lines)
	}
	news, err := filepath.Glob(filepath.Join(dir, "vmail/example.com/alice/new/*"))
	if err != nil || len(news) != 1 {
		t.Fatalf("maildir new/: %v %v", news, err)
	}
	want := regexp.MustCompile(syslogHeader(pid) + regexp.QuoteMeta("4AbC1: to=<alice@example.com>, orig_to=<Alice@Example.COM>, relay=vdeliver, ") +
		delayRE + regexp.QuoteMeta(fmt.Sprintf(", size=%d, dsn=2.0.0, status=sent (delivered to maildir %s)", len(logMsg), news[0])) + `$`)
	if !want.MatchString(lines[0]) {
		t.Fatalf("syslog line\n%q\ndoes not match\n%s", lines[0], want)
	}
}

// A bounce is logged in the same shape, with the status text, and the process says
// nothing but its status line.
func TestSyslogBounced(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	code, out, pid := runLogged(t, sd.path, logMsg, "-c", dir, "-f", "a@example.org", "-i", "5BcD2", "--", "nobody@example.com")
	if code != 67 || out != "5.1.1 unknown user: \"nobody@example.com\"\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := sd.lines()
	want := regexp.MustCompile(syslogHeader(pid) + regexp.QuoteMeta("5BcD2: to=<nobody@example.com>, relay=vdeliver, ") +
		anyDelay + regexp.QuoteMeta(fmt.Sprintf(`, size=%d, dsn=5.1.1, status=bounced (unknown user: "nobody@example.com")`, len(logMsg))) + `$`)
	if len(lines) != 1 || !want.MatchString(lines[0]) {
		t.Fatalf("syslog lines %q, want one matching\n%s", lines, want)
	}
}

// A defer likewise: a uid below virtual_minimum_uid defers 4.3.5 for this recipient, and
// the log names the reason the sender does not see.
func TestSyslogDeferred(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	code, out, pid := runLogged(t, sd.path, logMsg, "-c", dir, "-o", "virtual_uid_maps=static:99", "-i", "6CdE3", "--", "alice@example.com")
	if code != 75 || out != "4.3.5 mail system configuration error\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := sd.lines()
	want := regexp.MustCompile(syslogHeader(pid) + regexp.QuoteMeta("6CdE3: to=<alice@example.com>, relay=vdeliver, ") +
		anyDelay + regexp.QuoteMeta(fmt.Sprintf(", size=%d, dsn=4.3.5, status=deferred (mail system configuration error: ", len(logMsg))) + `.*99.*\)$`)
	if len(lines) != 1 || !want.MatchString(lines[0]) {
		t.Fatalf("syslog lines %q, want one matching\n%s", lines, want)
	}
}

// delay= is a plain decimal, as Postfix writes it, even when the run takes microseconds
// (a bounce that touches no disk): "1.2e-05" would be read as 1.2 seconds by parsers that
// take delay=([\d.]+), as pflogsumm does.
func TestSyslogDelayFormat(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	for i := 0; i < 3; i++ {
		runLogged(t, sd.path, logMsg, "-c", dir, "-i", "7DeF4", "--", "nobody@example.com")
	}
	re := regexp.MustCompile(`, ` + delayRE + `, `)
	for _, l := range sd.lines() {
		if !re.MatchString(l) {
			t.Errorf("delay is not a plain decimal: %q", l)
		}
	}
}

// Warnings go to syslog too: here a table line postmap would skip.
func TestSyslogWarning(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	src := filepath.Join(dir, "vmailbox")
	write(t, src, "alice@example.com  example.com/alice/\nnovalue\n")
	code, _, pid := runLogged(t, sd.path, logMsg, "-c", dir, "-i", "8DeF4", "--", "alice@example.com")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := sd.lines()
	// Severity warning: <20> is facility mail (2) and severity warning (4).
	want := strings.Replace(syslogHeaderText(pid), "<22>", "<20>", 1) + fmt.Sprintf(`warning: %s:2: expected format: key whitespace value`, src)
	if len(lines) != 2 || !regexp.MustCompile(strings.Replace(syslogHeader(pid), "<22>", "<20>", 1)).MatchString(lines[0]) || stripStamp(lines[0]) != want {
		t.Fatalf("syslog lines %q, want a warning first:\n%q", lines, want)
	}
	if !strings.Contains(lines[1], "8DeF4: to=<alice@example.com>, relay=vdeliver, ") {
		t.Fatalf("second line %q is not the delivery", lines[1])
	}
}

// One line per recipient, deferred and bounced alike. A configuration that
// cannot be loaded defers every recipient, and each still gets its to=<> line, so a log
// parser following queue ids sees what happened to each.
func TestSyslogConfigErrorPerRecipient(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	code, out, pid := runLogged(t, sd.path, logMsg, "-c", dir, "-o", "virtual_mailbox_maps=texthash:"+dir+"/missing", "-i", "9EfG5", "--", "alice@example.com")
	if code != 75 || out != "4.3.5 mail system configuration error\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := sd.lines()
	want := regexp.MustCompile(syslogHeader(pid) + regexp.QuoteMeta("9EfG5: to=<alice@example.com>, relay=vdeliver, ") + anyDelay +
		regexp.QuoteMeta(fmt.Sprintf(", size=%d, dsn=4.3.5, status=deferred (mail system configuration error", len(logMsg))))
	for _, l := range lines {
		if want.MatchString(l) {
			return
		}
	}
	t.Fatalf("no per-recipient line among %q; want one matching\n%s", lines, want)
}

// Without a syslog socket nothing reaches stderr or stdout but the status line, and the
// line goes to --log-file.
func TestSyslogAbsentLogFile(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	logFile := filepath.Join(dir, "vdeliver.log")
	code, out, pid := runLogged(t, filepath.Join(dir, "no-such-socket"), logMsg, "-c", dir, "--log-file", logFile, "-i", "AFgH6", "--", "alice@example.com")
	if code != 0 || out != "2.0.0 delivered to maildir\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^[A-Z][a-z]{2} [ 1-3][0-9] [0-9:.]+ vdeliver\[` + strconv.Itoa(pid) + `\]: AFgH6: to=<alice@example.com>, relay=vdeliver, ` + anyDelay + `, size=[0-9]+, dsn=2\.0\.0, status=sent \(delivered to maildir [^)]+\)\n$`)
	if !want.Match(b) {
		t.Fatalf("log file %q does not match %s", b, want)
	}
}

func syslogHeaderText(pid int) string { return fmt.Sprintf("<22>STAMP vdeliver[%d]: ", pid) }

// stripStamp replaces the time.Stamp date after <PRI> by STAMP.
func stripStamp(l string) string {
	if i := strings.IndexByte(l, '>'); i >= 0 && len(l) >= i+1+len(time.Stamp) {
		return l[:i+1] + "STAMP" + l[i+1+len(time.Stamp):]
	}
	return l
}

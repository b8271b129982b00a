package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// With maillog_file set, the log goes to Postfix's postlog socket
// ($queue_directory/public/postlog, where postlogd listens) in msg_logger's format, and
// not to syslog, as Postfix's own programs do. Before, it went to syslog only, and a
// host without a syslog daemon (a container) lost it.
func TestPostlogWhenMaillogFile(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	q := filepath.Join(dir, "q")
	if err := os.MkdirAll(filepath.Join(q, "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("maillog_file = /dev/stdout\nqueue_directory = " + q + "\n")
	f.Close()
	postlogd := newSyslogd(t, filepath.Join(q, "public"))
	// newSyslogd listens on DIR/log; postlog's name is "postlog".
	if err := os.Rename(postlogd.path, filepath.Join(q, "public", "postlog")); err != nil {
		t.Fatal(err)
	}
	syslogd := newSyslogd(t, dir)
	code, out, pid := runLogged(t, syslogd.path, logMsg, "-c", dir, "--state-dir=", "-i", "1AbC2", "--", "alice@example.com", "nobody@example.com")
	if code != 75 && code != 67 {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := postlogd.lines()
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	head := `^[A-Z][a-z]{2} [0-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} ` + regexp.QuoteMeta(host) + ` vdeliver\[` + strconv.Itoa(pid) + `\]: `
	want := []*regexp.Regexp{
		regexp.MustCompile(head + regexp.QuoteMeta("1AbC2: warning: 2 destinations and no state directory")),
		regexp.MustCompile(head + regexp.QuoteMeta("1AbC2: to=<alice@example.com>, relay=vdeliver, ") + anyDelay + `, size=[0-9]+, dsn=2\.0\.0, status=sent `),
		regexp.MustCompile(head + regexp.QuoteMeta("1AbC2: to=<nobody@example.com>, relay=vdeliver, ") + anyDelay + `, size=[0-9]+, dsn=5\.1\.1, status=bounced `),
	}
	if len(lines) != len(want) {
		t.Fatalf("postlog got %q, want %d lines", lines, len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("postlog line %q does not match %s", lines[i], re)
		}
	}
	if got := syslogd.lines(); len(got) != 0 {
		t.Errorf("with maillog_file set, syslog got %q too", got)
	}
}

// --log-file is where the log goes when no socket can be reached, as its help says; with
// a syslog socket the file is not written.
func TestLogFileOnlyWithoutSocket(t *testing.T) {
	t.Parallel()
	dir := logSetup(t, "")
	sd := newSyslogd(t, dir)
	logFile := filepath.Join(dir, "vdeliver.log")
	code, _, _ := runLogged(t, sd.path, logMsg, "-c", dir, "--log-file", logFile, "-i", "2BcD3", "--", "alice@example.com")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := len(sd.lines()); n != 1 {
		t.Fatalf("syslog got %d lines, want 1", n)
	}
	if _, err := os.Stat(logFile); !os.IsNotExist(err) {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("--log-file written although syslog works: %v %q", err, b)
	}
}

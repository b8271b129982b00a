package confcheck

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"vdeliver/maincf"
)

func TestParseMaster(t *testing.T) {
	text := `# comment
smtp      inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
# a comment between an entry and its continuation does not end it

vdeliver  unix  -       n       n       -       -       pipe
  flags=X user=vmail:mail
    argv=/usr/local/bin/vdeliver { -a b } -- ${recipient}
`
	got, err := ParseMaster(text, "master.cf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		{Name: "smtp", Type: "inet", Private: "n", Unpriv: "-", Chroot: "y", Wakeup: "-", Maxproc: "-", Command: "smtpd",
			Args: []Word{{"-o", 3}, {"syslog_name=postfix/submission", 3}}, Line: 2},
		{Name: "vdeliver", Type: "unix", Private: "-", Unpriv: "n", Chroot: "n", Wakeup: "-", Maxproc: "-", Command: "pipe",
			Args: []Word{{"flags=X", 7}, {"user=vmail:mail", 7}, {"argv=/usr/local/bin/vdeliver", 8}, {"{ -a b }", 8}, {"--", 8}, {"${recipient}", 8}}, Line: 6},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ParseMaster (-want +got):\n%s", d)
	}
	p, ok := got[1].Pipe()
	if !ok || !p.runsVdeliver() || p.Attrs["user"] != (Word{"vmail:mail", 7}) || len(p.Argv) != 4 || p.Argv[0].Text != "/usr/local/bin/vdeliver" {
		t.Fatalf("Pipe() = %+v, %v", p, ok)
	}
	if _, ok := got[0].Pipe(); ok {
		t.Fatal("smtpd taken for a pipe service")
	}
}

func TestParseMasterErrors(t *testing.T) {
	for _, tc := range []struct {
		text, want string
		line       int
		msg        string
	}{
		{"  flags=X\n", "m.cf:1: continuation line with no entry before it", 1, "continuation line with no entry before it"},
		{"# c\nshort unix - n\n", `m.cf:2: entry "short" has 4 fields, master(5) needs at least 8`, 2, `entry "short" has 4 fields, master(5) needs at least 8`},
	} {
		_, err := ParseMaster(tc.text, "m.cf")
		var me *MasterError
		if !errors.As(err, &me) || err.Error() != tc.want || me.File != "m.cf" || me.Line != tc.line || me.Msg != tc.msg {
			t.Errorf("ParseMaster(%q) = %#v (%v), want %q at m.cf:%d", tc.text, me, err, tc.want, tc.line)
		}
	}
}

// The daemon options before the attributes are skipped: -o takes its value with it.
func TestPipeSkipsDaemonOptions(t *testing.T) {
	s, err := ParseMaster("v unix - n n - - pipe -v -o a=b flags=R argv=vdeliver x\n", "m")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s[0].Pipe()
	if len(p.Attrs) != 1 || p.Attrs["flags"].Text != "R" || p.Argv[0].Text != "vdeliver" || !p.runsVdeliver() {
		t.Fatalf("Pipe() = %+v", p)
	}
}

func TestReadEntries(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "t")
	// An orphan continuation is dropped; a continuation joins with its whitespace even
	// across a comment and a blank line; "novalue" has no value; "novalue2" gets one from
	// its continuation.
	text := "  orphan\n# c\nA@x  v1,\n# between\n\n   v2\n\"q k\"@x  q\nnovalue\nnovalue2\n  cont\nb@x v3\n"
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readEntries(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{{"A@x", "v1,   v2", 3}, {`"q k"@x`, "q", 7}, {"novalue2", "cont", 9}, {"b@x", "v3", 11}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(entry{})); d != "" {
		t.Fatalf("readEntries (-want +got):\n%s", d)
	}
}

// A table that root can read but master.cf's user cannot is reported: pipe(8) runs
// vdeliver as that user. Needs root, to have a user other than the file's owner.
func TestCheckUnreadableByPipeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: needs a second user (nobody) to test permissions for")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "vmail"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The mailbox owner can write the base: only the table is at fault here.
	if err := os.Chown(filepath.Join(dir, "vmail"), mustAtoi(t, nobody.Uid), mustAtoi(t, nobody.Gid)); err != nil {
		t.Fatal(err)
	}
	write("main.cf", `virtual_mailbox_domains = example.com
virtual_mailbox_base = `+dir+`/vmail
virtual_mailbox_maps = texthash:`+dir+`/vmailbox
virtual_uid_maps = static:`+nobody.Uid+`
virtual_gid_maps = static:`+nobody.Gid+`
virtual_transport = vdeliver
vdeliver_destination_recipient_limit = 1
`, 0o644)
	write("vmailbox", "alice@example.com example.com/alice/\n", 0o600)
	write("master.cf", "vdeliver unix - n n - - pipe flags=X null_sender= user=nobody argv=/usr/bin/vdeliver -- ${recipient}\n", 0o644)
	cf, err := maincf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A syslog daemon that answers: the log destination is not what this test is about.
	syslog := answeringSyslog(t, dir)
	got := Check(context.Background(), cf, Options{SyslogSocket: syslog})
	want := []Finding{{File: filepath.Join(dir, "main.cf"), Line: 3, Severity: Error, Code: "unreadable",
		Message: "texthash:" + dir + "/vmailbox: nobody cannot read " + dir + "/vmailbox (mode 0600, owner 0:0)",
		Fix:     "make " + dir + "/vmailbox readable by nobody (chmod o+r, or chgrp " + nobody.Gid + " and g+r)"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Check (-want +got):\n%s", d)
	}
	// Readable by group: the pipe user's own gid counts.
	if err := os.Chown(filepath.Join(dir, "vmailbox"), 0, mustAtoi(t, nobody.Gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "vmailbox"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := Check(context.Background(), cf, Options{SyslogSocket: syslog}); len(got) != 0 {
		t.Fatalf("group-readable table: findings %v", got)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Line 0 is shown without a line number.
func TestFindingString(t *testing.T) {
	f := Finding{File: "/m.cf", Severity: Warning, Code: "c", Message: "m", Fix: "f"}
	if got := f.String(); got != "/m.cf: warning: m [c]\n\tfix: f" {
		t.Fatalf("%q", got)
	}
	f.Line = 3
	if got := f.String(); !strings.HasPrefix(got, "/m.cf:3: warning: ") {
		t.Fatalf("%q", got)
	}
}

// The .cf of a proxy:sqlite: table that master.cf's user cannot read: without set-uid,
// vdeliver cannot reach proxymap(8) (its socket is Postfix's alone) and asks postmap(1)
// with that user's rights, so every delivery would defer. Installed set-uid root, it
// opens the table as root: no finding.
func TestCheckProxySQLUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: runs as root in CI")
		}
		t.Skip("not root: needs a second user (nobody) to test permissions for")
	}
	for _, tool := range []string{"postmap", "sqlite3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make deps installs it)", tool)
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "vmail"), 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "vmail.sqlite")
	if out, err := exec.Command("sqlite3", db, "CREATE TABLE mailbox (address TEXT, path TEXT);").CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	cf := filepath.Join(dir, "vmailbox.cf")
	if err := os.WriteFile(cf, []byte("dbpath = "+db+"\nquery = SELECT path FROM mailbox WHERE address = '%s'\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vdeliver")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(`virtual_mailbox_domains = example.com
virtual_mailbox_base = `+dir+`/vmail
virtual_mailbox_maps = proxy:sqlite:`+cf+`
virtual_uid_maps = static:`+nobody.Uid+`
virtual_gid_maps = static:`+nobody.Gid+`
virtual_transport = vdeliver
vdeliver_destination_recipient_limit = 1
queue_directory = `+dir+`/queue
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte("vdeliver unix - n n - - pipe flags=X null_sender= user=nobody argv="+bin+" -- ${recipient}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cf2, err := maincf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A syslog daemon that answers: the log destination is not what this test is about.
	syslog := answeringSyslog(t, dir)
	got := Check(context.Background(), cf2, Options{SyslogSocket: syslog})
	want := []Finding{{File: filepath.Join(dir, "main.cf"), Line: 3, Severity: Error, Code: "unreadable",
		Message: "proxy:sqlite:" + cf + ": nobody cannot read " + cf + " (mode 0640, owner 0:0)",
		Fix:     "install vdeliver set-uid root (make install-setuid), so that it asks proxymap(8) as root, or make " + cf + " readable by nobody (chgrp " + nobody.Gid + " and g+r)"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Check (-want +got):\n%s", d)
	}
	if err := os.Chmod(bin, os.ModeSetuid|0o750); err != nil {
		t.Fatal(err)
	}
	if got := Check(context.Background(), cf2, Options{SyslogSocket: syslog}); len(got) != 0 {
		t.Fatalf("set-uid vdeliver: findings %v", got)
	}
}

// maillog_file set, and postlogd's socket reachable for root (check) but not for the
// master.cf user= the delivery runs as: Postfix keeps public/ for group postdrop, which
// pipe(8) does not give its commands, so the delivery's log goes elsewhere.
func TestCheckPostlogUnreachableForPipeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: runs as root in CI")
		}
		t.Skip("not root: needs a second user (nobody) to test permissions for")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	public := filepath.Join(dir, "q", "public")
	if err := os.MkdirAll(public, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(public, 0o2710); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(public, "postlog"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	syslog := answeringSyslog(t, dir)
	bin := filepath.Join(dir, "vdeliver")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = static:x/\n"+
		"virtual_uid_maps = static:"+nobody.Uid+"\nvirtual_gid_maps = static:"+nobody.Gid+"\n"+
		"queue_directory = "+dir+"/q\nmaillog_file = /var/log/postfix.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte("vdeliver unix - n n - - pipe flags=X null_sender= user=nobody argv="+bin+" -- ${recipient}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cf, err := maincf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []Finding
	for _, f := range Check(context.Background(), cf, Options{SyslogSocket: syslog}) {
		if f.Code == "postlog-unreachable" {
			got = append(got, f)
		}
	}
	sock := filepath.Join(public, "postlog")
	want := []Finding{{File: filepath.Join(dir, "main.cf"), Line: 7, Severity: Warning, Code: "postlog-unreachable",
		Message: "maillog_file = /var/log/postfix.log, but vdeliver, run as nobody, cannot reach postlogd's socket " + sock +
			" (nobody cannot search " + public + " (mode 0710, owner 0:0)): vdeliver's log goes to syslog instead",
		Fix: "install vdeliver set-uid root (make install-setuid), which opens the log as root, or add --log-file to the vdeliver argv, or run a syslog daemon"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Check (-want +got):\n%s", d)
	}
	// Set-uid root, the delivery opens its log as root: nothing to report.
	if err := os.Chmod(bin, os.ModeSetuid|0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range Check(context.Background(), cf, Options{SyslogSocket: syslog}) {
		if f.Code == "postlog-unreachable" {
			t.Fatalf("set-uid vdeliver: %v", f)
		}
	}
}

// answeringSyslog listens on a datagram socket in dir, as a syslog daemon does, until the
// test ends, and returns its path.
func answeringSyslog(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path
}

// TestLoadFailure: the finding for a main.cf that cannot be loaded stands where the error
// says, from the error's fields.
func TestLoadFailure(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(file, []byte("a = 1\n# c\nno equals sign\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, syntaxErr := maincf.Load(dir)
	cf, err := maincf.Parse(strings.NewReader("a = 1\n"), file)
	if err != nil {
		t.Fatal(err)
	}
	overrideErr := cf.Override("novalue")
	_, missingErr := maincf.Load(filepath.Join(dir, "none"))
	for _, tc := range []struct {
		name string
		err  error
		want Finding
	}{
		{"syntax", syntaxErr, Finding{File: file, Line: 3, Severity: Error, Code: "maincf-syntax", Message: `missing '=' after attribute name: "no equals sign"`,
			Fix: "write the line as name = value; Postfix refuses to start with it"}},
		{"override", overrideErr, Finding{File: "-o", Severity: Error, Code: "override-syntax", Message: `-o "novalue": missing '=' after attribute name: syntax error`,
			Fix: "write the option as -o name=value"}},
		{"missing", missingErr, Finding{File: file, Severity: Error, Code: "unreadable", Message: missingErr.Error(),
			Fix: "create or correct main.cf; every delivery defers until then"}},
	} {
		if d := cmp.Diff(tc.want, LoadFailure(file, tc.err)); d != "" {
			t.Errorf("%s: LoadFailure(%v) (-want +got):\n%s", tc.name, tc.err, d)
		}
	}
}

// TestStaticValues: a static: table's value is what lookup makes of it, as a delivery
// sees it: the braces of static:{ 0 } go, those of a second pair stay.
func TestStaticValues(t *testing.T) {
	dir := t.TempDir()
	cf, err := maincf.Parse(strings.NewReader("virtual_mailbox_domains = example.com\nvirtual_mailbox_base = "+dir+
		"\nvirtual_mailbox_maps = static:{ x/ }\nvirtual_uid_maps = static:{ 0 }\nvirtual_gid_maps = static:{{5000}}\n"), filepath.Join(dir, "main.cf"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, f := range Check(context.Background(), cf, Options{SyslogSocket: answeringSyslog(t, dir)}) {
		codes[f.Code] = f.Message
	}
	if m := codes["uid-root"]; m == "" {
		t.Errorf("static:{ 0 }: no uid-root finding in %v", codes)
	}
	if m := codes["gid-invalid"]; !strings.Contains(m, `gid "{5000}"`) {
		t.Errorf("static:{{5000}}: gid-invalid %q, want the value {5000} a delivery parses", m)
	}
	if _, ok := codes["mailbox-invalid"]; ok {
		t.Errorf("static:{ x/ } taken for an invalid mailbox: %v", codes)
	}
}

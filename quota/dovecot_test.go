package quota

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dovecot is a private Dovecot configuration for one test: doveadm runs with -c on it,
// for the user alice whose Maildir is home/Maildir, as the mail user (nobody when the
// test runs as root), with the Maildir++ quota backend and the rule given. No Dovecot
// service runs and the system's /etc/dovecot is never read.
type dovecot struct {
	t    *testing.T
	dir  string
	conf string
	home string
	cred *syscall.Credential
	bin  string // the test binary, where the mail user can run it
}

const dovecotUser = "alice"

func newDovecot(t *testing.T, rule string) *dovecot {
	t.Helper()
	if _, err := exec.LookPath("doveadm"); err != nil {
		t.Fatal("doveadm not found: testdata/deps.sh installs dovecot-core")
	}
	dir := t.TempDir()
	// nobody must reach the Maildir and the configuration.
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &dovecot{t: t, dir: dir, conf: filepath.Join(dir, "dovecot.conf"), home: filepath.Join(dir, "home")}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
		d.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = no
protocols =
mail_location = maildir:~/Maildir
mail_plugins = quota
first_valid_uid = 1
userdb {
  driver = static
  args = uid=%[2]d gid=%[3]d home=%[1]s/home
}
plugin {
  quota = maildir:User quota
  quota_rule = %[4]s
  quota_grace = 0
}
`, dir, uid, gid, rule)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.bin = copyBinary(t, dir)
	maildirAt(t, d.home, "Maildir")
	for _, p := range []string{filepath.Join(dir, "run"), d.home} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		d.chown(p)
	}
	return d
}

// chown gives p and everything beneath it to the mail user.
func (d *dovecot) chown(p string) {
	d.t.Helper()
	if d.cred == nil {
		return
	}
	err := filepath.Walk(p, func(q string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(q, int(d.cred.Uid), int(d.cred.Gid))
	})
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *dovecot) maildir() string { return filepath.Join(d.home, "Maildir") }

// doveadm runs doveadm -c <private config> as the mail user, for alice as the current
// user (USER and HOME: no userdb lookup through an auth service).
func (d *dovecot) doveadm(stdin string, args ...string) string {
	d.t.Helper()
	out, errText, err := d.try(stdin, args...)
	if err != nil || errText != "" {
		d.t.Fatalf("doveadm %q: %v\n%s%s", args, err, out, errText)
	}
	return out
}

// try runs doveadm and returns its output, its standard error and how it ended.
func (d *dovecot) try(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command("doveadm", append([]string{"-c", d.conf}, args...)...)
	cmd.Env = []string{"USER=" + dovecotUser, "HOME=" + d.home, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if d.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred}
	}
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// quotaGet is doveadm quota get: the storage in kilobytes (rounded up, as Dovecot
// reports it) and the message count.
func (d *dovecot) quotaGet() (kb, messages int64) {
	d.t.Helper()
	out := d.doveadm("", "-f", "tab", "quota", "get")
	kb, messages = -1, -1
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		switch f[1] {
		case "STORAGE":
			if err == nil {
				kb = n
			}
		case "MESSAGE":
			if err == nil {
				messages = n
			}
		}
	}
	if kb < 0 || messages < 0 {
		d.t.Fatalf("doveadm quota get said:\n%s", out)
	}
	return kb, messages
}

// deliver is one vdeliver-style delivery of size bytes by a process of the mail user.
func (d *dovecot) deliver(def string, size int64) string {
	d.t.Helper()
	return runHelper(d.t, d.bin, d.cred, d.home, "Maildir", def, strconv.FormatInt(size, 10), "deliver")
}

// agree asserts that doveadm quota get, our Inspect, maildirsize's own sum and a real
// count of the Maildir all give want.
func (d *dovecot) agree(want Usage, limit Limit) {
	d.t.Helper()
	kb, n := d.quotaGet()
	if kb != (want.Bytes+1023)/1024 || n != want.Count {
		d.t.Errorf("doveadm quota get: %d kB in %d messages; want %d bytes in %d", kb, n, want.Bytes, want.Count)
	}
	l, u, _, err := Inspect(openRoot(d.t, d.home), "Maildir", nil, 1)
	if err != nil || l != limit || u != want {
		d.t.Errorf("Inspect: %v %+v %v; want %v %+v", l, u, err, limit, want)
	}
	fc, ok := parseFile([]byte(readFile(d.t, filepath.Join(d.maildir(), FileName))))
	if !ok || fc.usage != want || fc.limit != limit {
		d.t.Errorf("maildirsize says %+v (ok %v), want %+v", fc, ok, want)
	}
	if got := recount(d.t, d.maildir()); got != want {
		d.t.Errorf("the Maildir holds %+v, want %+v", got, want)
	}
}

const dovecotRule = "*:storage=100000B:messages=50"

var dovecotLimit = Limit{Bytes: 100000, Count: 50}

// TestDovecotReadsOurs: after deliveries through Reserve (maildirsize created by our
// recalculation, then our appended lines), Dovecot reports the same usage, and trusts
// the file as it is (it rewrites a file it disagrees with).
func TestDovecotReadsOurs(t *testing.T) {
	t.Parallel()
	d := newDovecot(t, dovecotRule)
	for _, size := range []int64{3000, 5000, 7000} {
		if out := d.deliver("100000S,50C", size); !strings.HasPrefix(out, "ok ") {
			t.Fatalf("delivery: %s", out)
		}
	}
	const want = "100000S,50C\n0 0\n3000 1\n5000 1\n7000 1\n"
	if got := readFile(t, filepath.Join(d.maildir(), FileName)); got != want {
		t.Errorf("maildirsize %q, want %q", got, want)
	}
	d.agree(Usage{15000, 3}, dovecotLimit)
	if got := readFile(t, filepath.Join(d.maildir(), FileName)); got != want {
		t.Errorf("Dovecot rewrote maildirsize: %q", got)
	}

	// Filled exactly to the limit by us: Dovecot refuses the next message as we do.
	if out := d.deliver("100000S,50C", 85000); out != "ok 15000 3" {
		t.Fatalf("delivery to the limit said %q", out)
	}
	if out := d.deliver("100000S,50C", 16); out != "over 100000 4" {
		t.Errorf("delivery past the limit said %q, want over 100000 4", out)
	}
	_, errText, err := d.try("Subject: d\n\nx\n", "save")
	if err == nil || !strings.Contains(errText, "Quota exceeded") {
		t.Errorf("doveadm save into the full Maildir: %v, %q; want Quota exceeded", err, errText)
	}
	d.agree(Usage{100000, 4}, dovecotLimit)
}

// TestDovecotRecalculates: after Dovecot recalculates (folders, Trash, a name without
// ,S=), Inspect reads its numbers, and our own recalculation of the same Maildir writes
// the very same bytes.
func TestDovecotRecalculates(t *testing.T) {
	t.Parallel()
	d := newDovecot(t, dovecotRule)
	d.doveadm("", "mailbox", "create", "Trash", "lists", "lists.sub")
	d.doveadm("Subject: t\n\ntrash\n", "save", "-m", "Trash")
	d.doveadm("Subject: l\n\nlists\n", "save", "-m", "lists.sub")
	if out := d.deliver("100000S,50C", 4000); !strings.HasPrefix(out, "ok ") {
		t.Fatalf("delivery: %s", out)
	}
	putMessage(t, d.maildir(), "cur", "1.nosize.host:2,S", 1234) // measured by stat
	d.chown(d.maildir())
	os.Remove(filepath.Join(d.maildir(), FileName))
	d.doveadm("", "quota", "recalc")
	dove := readFile(t, filepath.Join(d.maildir(), FileName))

	want := Usage{Bytes: 4000 + 1234, Count: 4}
	for _, m := range []string{".Trash/new", ".Trash/cur", ".lists.sub/new", ".lists.sub/cur"} {
		ents, _ := os.ReadDir(filepath.Join(d.maildir(), m))
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			want.Bytes += fi.Size()
		}
	}
	if mine := string(formatFile(dovecotLimit, recount(t, d.maildir()))); mine != dove {
		t.Errorf("Dovecot recalculated %q, we count %q", dove, mine)
	}
	d.agree(want, dovecotLimit)

	// Our own recalculation (the file removed) writes what Dovecot wrote.
	os.Remove(filepath.Join(d.maildir(), FileName))
	if out := runHelper(t, d.bin, d.cred, d.home, "Maildir", "100000S,50C", "100", "cancel"); !strings.HasPrefix(out, "ok ") {
		t.Fatalf("reservation: %s", out)
	}
	if got := readFile(t, filepath.Join(d.maildir(), FileName)); got != dove+"100 1\n-100 -1\n" {
		t.Errorf("our recalculation wrote %q, Dovecot %q", got, dove)
	}
}

// TestDovecotInterleaved: Dovecot saves and expunges between our deliveries, each side
// appending its own lines to the same maildirsize; the totals still agree everywhere.
func TestDovecotInterleaved(t *testing.T) {
	t.Parallel()
	d := newDovecot(t, dovecotRule)
	if out := d.deliver("100000S,50C", 3000); !strings.HasPrefix(out, "ok ") {
		t.Fatalf("delivery: %s", out)
	}
	dmsg := "Subject: dove\n\n" + strings.Repeat("d", 2000) + "\n"
	d.doveadm(dmsg, "save")
	if out := d.deliver("100000S,50C", 7000); !strings.HasPrefix(out, "ok ") {
		t.Fatalf("delivery: %s", out)
	}
	d.doveadm("", "expunge", "mailbox", "INBOX", "larger", "6000")
	if out, want := d.deliver("100000S,50C", 5000), fmt.Sprintf("ok %d 2", 3000+len(dmsg)); out != want {
		t.Fatalf("delivery said %q, want %q", out, want)
	}
	file := readFile(t, filepath.Join(d.maildir(), FileName))
	t.Logf("maildirsize:\n%s", file)
	for _, line := range []string{"3000 1\n", fmt.Sprintf("%d 1\n", len(dmsg)), "7000 1\n", "-7000 -1\n", "5000 1\n"} {
		if !strings.Contains(file, line) {
			t.Errorf("maildirsize lacks %q:\n%s", line, file)
		}
	}
	d.agree(Usage{Bytes: 3000 + int64(len(dmsg)) + 5000, Count: 3}, dovecotLimit)
}

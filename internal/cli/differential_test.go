package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// diffCase is one configuration for TestExplainMatchesDelivery: main.cf (with BASE and
// DIR replaced by the base and the configuration directory), the table vmailbox, what to
// build under the base before both runs, and the message.
type diffCase struct {
	name    string
	maincf  string
	vmbox   string
	setup   func(t *testing.T, base string, uid, gid int)
	msg     string
	rcpt    string
	want    string // the status both must give, as a check that the case is what it says
	rootNow bool   // only meaningful when the delivery switches identity (run as root)
}

const diffMainCF = `virtual_mailbox_domains = example.com
virtual_mailbox_base = BASE
virtual_mailbox_maps = texthash:DIR/vmailbox
virtual_minimum_uid = 100
virtual_uid_maps = static:UID
virtual_gid_maps = static:GID
deliver_lock_attempts = 1
`

const diffMsg = "Subject: test\n\nhello\n"

func chownAll(t *testing.T, p string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(p, func(q string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(q, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mkdirOwned(t *testing.T, p string, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	chownAll(t, p, uid, gid)
}

func writeOwned(t *testing.T, p, data string, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

var diffCases = []diffCase{
	{name: "base not writable by the delivering uid", rootNow: true,
		vmbox: "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {}, want: "4.2.0 maildir delivery failed: create maildir file: Permission denied"},
	{name: "base read-only for everyone",
		vmbox: "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			chownAll(t, base, uid, gid)
			os.Chmod(base, 0o555)
		}, want: "4.2.0 maildir delivery failed: create maildir file: Permission denied"},
	{name: "maildir delivered",
		vmbox: "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:  "2.0.0 delivered to maildir"},
	{name: "maildir tmp is a file",
		vmbox: "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a", uid, gid)
			writeOwned(t, base+"/example.com/a/tmp", "x", uid, gid)
			chownAll(t, base, uid, gid)
		}, want: "4.2.0 maildir delivery failed: create maildir file: Not a directory"},
	{name: "maildir message over the limit",
		maincf: "virtual_mailbox_limit = 30\nmessage_size_limit = 30\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup:  func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:   "5.2.2 maildir delivery failed: error writing message: File too large"},
	{name: "maildir over the quota of the table",
		maincf: "vdeliver_quota_maps = static:50S\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup:  func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:   "5.2.2 mailbox full"},
	{name: "maildir over the quota of the table under a deferring quota policy",
		maincf: "vdeliver_quota_maps = static:1C\nvdeliver_overquota_status = defer\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a/cur", uid, gid)
			writeOwned(t, base+"/example.com/a/cur/1.x,S=5:2,", "hello", uid, gid)
			chownAll(t, base, uid, gid)
		}, want: "4.2.2 mailbox full"},
	{name: "maildir over both the quota and virtual_mailbox_limit",
		maincf: "vdeliver_quota_maps = static:50S\nvirtual_mailbox_limit = 30\nmessage_size_limit = 30\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup:  func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:   "5.2.2 mailbox full"},
	{name: "maildirsize whose deltas say the message does not fit in an empty Maildir",
		maincf: "vdeliver_quota_maps = static:1000S\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a/cur", uid, gid)
			writeOwned(t, base+"/example.com/a/maildirsize", "1000S\n0 0\n999 1\n", uid, gid)
			chownAll(t, base, uid, gid)
		}, want: "2.0.0 delivered to maildir"},
	{name: "maildirsize the recipient cannot read and a quota from the table", rootNow: true,
		maincf: "vdeliver_quota_maps = static:100000S\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a/cur", uid, gid)
			chownAll(t, base, uid, gid)
			writeOwned(t, base+"/example.com/a/maildirsize", "100000S\n0 0\n", 0, 0)
		}, want: "4.2.0 maildir delivery failed: quota: Permission denied"},
	{name: "maildirsize its owner may only read and a quota from the table",
		maincf: "vdeliver_quota_maps = static:100000S\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a/cur", uid, gid)
			writeOwned(t, base+"/example.com/a/maildirsize", "100000S\n0 0\n", uid, gid)
			chownAll(t, base, uid, gid)
			if err := os.Chmod(base+"/example.com/a/maildirsize", 0o400); err != nil {
				t.Fatal(err)
			}
		}, want: "4.2.0 maildir delivery failed: quota: Permission denied"},
	{name: "no maildirsize in a Maildir whose top directory only root may write", rootNow: true,
		maincf: "vdeliver_quota_maps = static:100000S\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			for _, sub := range []string{"cur", "new", "tmp"} {
				mkdirOwned(t, base+"/example.com/a/"+sub, uid, gid)
			}
			chownAll(t, base+"/example.com", uid, gid)
			if err := os.Chown(base+"/example.com/a", 0, 0); err != nil {
				t.Fatal(err)
			}
		}, want: "4.2.0 maildir delivery failed: quota: Permission denied"},
	{name: "maildirsize the recipient cannot read and no quota table", rootNow: true,
		vmbox: "a@example.com example.com/a/\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com/a/cur", uid, gid)
			chownAll(t, base, uid, gid)
			writeOwned(t, base+"/example.com/a/maildirsize", "10S\n0 0\n", 0, 0)
		}, want: "2.0.0 delivered to maildir"},
	{name: "mbox delivered",
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			chownAll(t, base, uid, gid)
		},
		want: "2.0.0 delivered to mailbox"},
	{name: "mbox directory missing",
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:  "4.2.0 delivery failed to mailbox: unable to create lock file: No such file or directory"},
	{name: "mbox directory missing without dotlock",
		maincf: "virtual_mailbox_lock = fcntl\n",
		vmbox:  "a@example.com example.com/a\n",
		setup:  func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:   "4.2.0 delivery failed to mailbox: cannot create file exclusively: No such file or directory"},
	{name: "mbox over the limit",
		maincf: "virtual_mailbox_limit = 200\nmessage_size_limit = 200\n",
		vmbox:  "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/a", "From x  Thu Jan  1 00:00:00 1970\n"+strings.Repeat("y", 150)+"\n\n", uid, gid)
			chownAll(t, base, uid, gid)
		}, want: "5.2.2 delivery failed to mailbox: error writing message: File too large"},
	{name: "mbox is a FIFO",
		maincf: "virtual_mailbox_lock = fcntl\n",
		vmbox:  "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			if err := syscall.Mkfifo(base+"/example.com/a", 0o600); err != nil {
				t.Fatal(err)
			}
			chownAll(t, base, uid, gid)
		}, want: "4.2.0 delivery failed to mailbox: cannot open file: No such device or address"},
	{name: "mbox with two hard links",
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/a", "", uid, gid)
			if err := os.Link(base+"/example.com/a", base+"/example.com/b"); err != nil {
				t.Fatal(err)
			}
			chownAll(t, base, uid, gid)
		}, want: "4.2.0 delivery failed to mailbox: file has 2 hard links"},
	{name: "mbox is a user's symlink",
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/real", "", uid, gid)
			if err := os.Symlink("real", base+"/example.com/a"); err != nil {
				t.Fatal(err)
			}
			chownAll(t, base, uid, gid)
		}, want: "4.2.0 delivery failed to mailbox: file is a symbolic link"},
	{name: "mbox owned by another uid", rootNow: true,
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/a", "", uid, gid)
			chownAll(t, base, uid, gid)
			os.Chmod(base+"/example.com/a", 0o666)
			os.Chown(base+"/example.com/a", uid+1, gid)
		}, want: "4.2.0 delivery failed to mailbox: destination is not owned by recipient"},
	{name: "mbox flock held by another process",
		maincf: "virtual_mailbox_lock = flock\n",
		vmbox:  "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/a", "", uid, gid)
			chownAll(t, base, uid, gid)
			f, err := os.Open(base + "/example.com/a")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
				t.Fatal(err)
			}
		}, want: "4.2.0 delivery failed to mailbox: unable to lock for exclusive access: Resource temporarily unavailable"},
	{name: "mbox dotlock held",
		vmbox: "a@example.com example.com/a\n",
		setup: func(t *testing.T, base string, uid, gid int) {
			mkdirOwned(t, base+"/example.com", uid, gid)
			writeOwned(t, base+"/example.com/a", "", uid, gid)
			writeOwned(t, base+"/example.com/a.lock", "", uid, gid)
			chownAll(t, base, uid, gid)
		}, want: "4.2.0 delivery failed to mailbox: unable to create lock file: File exists"},
	{name: "uid below virtual_minimum_uid",
		maincf: "virtual_minimum_uid = 4000000000\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup:  func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:   "4.3.5 mail system configuration error"},
	{name: "unknown user",
		vmbox: "a@example.com example.com/a/\n", rcpt: "nobody@example.com",
		setup: func(t *testing.T, base string, uid, gid int) {}, want: `5.1.1 unknown user: "nobody@example.com"`},
	{name: "unknown user under soft_bounce",
		maincf: "soft_bounce = yes\n",
		vmbox:  "a@example.com example.com/a/\n", rcpt: "nobody@example.com",
		setup: func(t *testing.T, base string, uid, gid int) {}, want: `4.1.1 unknown user: "nobody@example.com"`},
	{name: "unknown domain",
		vmbox: "a@example.com example.com/a/\n", rcpt: "a@example.org",
		setup: func(t *testing.T, base string, uid, gid int) {}, want: `5.1.2 domain "example.org" is not a virtual mailbox domain`},
	{name: "relative base",
		maincf: "virtual_mailbox_base = vmail\n",
		vmbox:  "a@example.com example.com/a/\n",
		setup:  func(t *testing.T, base string, uid, gid int) {}, want: "4.3.5 mail system configuration error"},
	{name: "dot-dot in the mailbox path",
		vmbox: "a@example.com example.com/../a/\n",
		setup: func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:  "4.3.5 mail system configuration error"},
	{name: "empty message",
		vmbox: "a@example.com example.com/a/\n", msg: "-",
		setup: func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:  "5.6.0 message is empty"},
	{name: "Delivered-To loop",
		vmbox: "a@example.com example.com/a/\n", msg: "Delivered-To: a@example.com\n\nhi\n",
		setup: func(t *testing.T, base string, uid, gid int) { chownAll(t, base, uid, gid) },
		want:  "5.4.6 mail forwarding loop for a@example.com"},
}

// TestExplainMatchesDelivery is the differential test of explain against delivery: for
// each configuration, the status explain predicts (given the same message) is the status
// line a real delivery then prints, and the exit codes agree.
func TestExplainMatchesDelivery(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := deliveryUID()
	for _, c := range diffCases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.rootNow && os.Geteuid() != 0 {
				// The case is about the identity switch; without root there is none and
				// the base is our own.
				return
			}
			dir := t.TempDir()
			for d := dir; d != "/"; d = filepath.Dir(d) {
				if d == os.TempDir() {
					break
				}
				os.Chmod(d, 0o755)
			}
			base := filepath.Join(dir, "base")
			if err := os.Mkdir(base, 0o755); err != nil {
				t.Fatal(err)
			}
			cf := strings.NewReplacer("BASE", base, "DIR", dir, "UID", strconv.Itoa(uid), "GID", strconv.Itoa(gid)).Replace(diffMainCF + c.maincf)
			mustDo(t, os.WriteFile(filepath.Join(dir, "main.cf"), []byte(cf), 0o644))
			mustDo(t, os.WriteFile(filepath.Join(dir, "vmailbox"), []byte(c.vmbox), 0o644))
			msg := c.msg
			switch msg {
			case "":
				msg = diffMsg
			case "-":
				msg = ""
			}
			mustDo(t, os.WriteFile(filepath.Join(dir, "msg"), []byte(msg), 0o644))
			c.setup(t, base, uid, gid)
			rcpt := c.rcpt
			if rcpt == "" {
				rcpt = "a@example.com"
			}
			vd := func(stdin string, args ...string) (string, int) {
				cmd := exec.Command(exe, args...)
				cmd.Args[0] = "vdeliver"
				cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC"}
				cmd.Stdin = strings.NewReader(stdin)
				var out bytes.Buffer
				cmd.Stdout = &out
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return out.String(), code
			}
			out, _ := vd("", "explain", "-c", dir, "--json", "-f", "s@example.net", "--message", filepath.Join(dir, "msg"), rcpt)
			var e struct {
				Status string `json:"status"`
				Exit   int    `json:"exit"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("explain --json: %v\n%s", err, out)
			}
			line, code := vd(msg, "-c", dir, "-f", "s@example.net", "--", rcpt)
			line = strings.TrimSuffix(line, "\n")
			if e.Status != line || e.Exit != code {
				t.Errorf("explain predicts %q (exit %d), delivery gives %q (exit %d)", e.Status, e.Exit, line, code)
			}
			if line != c.want {
				t.Errorf("delivery gives %q, the case wants %q (explain's detail: %s)", line, c.want, e.Detail)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

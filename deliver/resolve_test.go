package deliver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"vdeliver/maincf"
)

// settings builds Settings from main.cf text; files are written into a temp dir first and
// "$DIR" in the text names it.
func settings(t *testing.T, cf string, files map[string]string) *Settings {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := maincf.Parse(strings.NewReader(strings.ReplaceAll(cf, "$DIR", dir)), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	s, st := Load(c, nil)
	if st != nil {
		t.Fatalf("Load: %v (%v)", st, st.Err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestResolve(t *testing.T) {
	const base = "virtual_mailbox_base = /vmail\nvirtual_mailbox_domains = example.com, example.net\n" +
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nmyorigin = host.example\nmydestination = localhost\n"
	for _, tc := range []struct {
		name      string
		cf        string
		files     map[string]string
		rcpt      string
		code      string // "" = resolved
		mailbox   string
		maildir   bool
		uid, gid  uint32
		mailboxes []string // keys asked of virtual_mailbox_maps, in order
	}{
		{
			name:    "extension, then bare, then @domain",
			cf:      base + "recipient_delimiter = +\nvirtual_mailbox_maps = inline:{ @example.com=catch/ }\n",
			rcpt:    "Joe+Lists@Example.COM",
			mailbox: "catch/", maildir: true, uid: 5000, gid: 5000,
			mailboxes: []string{"joe+lists@example.com", "joe@example.com", "@example.com"},
		},
		{
			name:    "localpart keys when the domain is $myorigin",
			cf:      base + "myorigin = example.com\nrecipient_delimiter = +\nvirtual_mailbox_maps = inline:{ @example.com=catch/ }\n",
			rcpt:    "Joe+Lists@Example.COM",
			mailbox: "catch/", maildir: true, uid: 5000, gid: 5000,
			mailboxes: []string{"joe+lists@example.com", "joe@example.com", "joe+lists", "joe", "@example.com"},
		},
		{
			name:    "quoted form first and then the raw form",
			cf:      base + "virtual_mailbox_maps = regexp:$DIR/re\n",
			files:   map[string]string{"re": "/^john doe@example\\.com$/ jd\n"},
			rcpt:    "john doe@example.com",
			mailbox: "jd", uid: 5000, gid: 5000,
			mailboxes: []string{`"john doe"@example.com`, "john doe@example.com"},
		},
		{
			name:    "key order beats table order",
			cf:      base + "virtual_mailbox_maps = inline:{ @example.com=catch/ }, inline:{ joe@example.com=joe/ }\n",
			rcpt:    "joe@example.com",
			mailbox: "joe/", maildir: true, uid: 5000, gid: 5000,
		},
		{name: "unknown user", cf: base + "virtual_mailbox_maps = inline:{ a@example.com=a/ }\n", rcpt: "b@example.com", code: CodeUnknownUser},
		{name: "unknown domain", cf: base + "virtual_mailbox_maps = static:x/\n", rcpt: "b@example.org", code: CodeUnknownDomain},
		{name: "no domain at all", cf: base + "virtual_mailbox_maps = static:x/\n", rcpt: "b", code: CodeUnknownDomain},
		{name: "newline in address", cf: base + "virtual_mailbox_maps = static:x/\n", rcpt: "a\n@example.com", code: CodeBadRcptSyntax},
		{name: "../x/", cf: base + "virtual_mailbox_maps = static:../x/\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "x/../y", cf: base + "virtual_mailbox_maps = static:x/../y\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "trailing x/..", cf: base + "virtual_mailbox_maps = static:x/..\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "absolute stays under the base", cf: base + "virtual_mailbox_maps = static:/abs/path\n", rcpt: "a@example.com", mailbox: "/abs/path", uid: 5000, gid: 5000},
		{name: "mbox", cf: base + "virtual_mailbox_maps = static:a/mbox\n", rcpt: "a@example.com", mailbox: "a/mbox", uid: 5000, gid: 5000},
		{name: "uid 0", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:0\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid 99 < 100", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:99\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid abc", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:abc\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid 5000abc", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:5000abc\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid 2^32", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:4294967296\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid -1 as 2^32-1", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = static:4294967295\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "uid miss", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = inline:{ x=5000 }\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "gid 0", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_gid_maps = static:0\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "gid miss", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_gid_maps = inline:{ x=5000 }\n", rcpt: "a@example.com", code: CodeConfig},
		{name: "table error defers and is never a miss", cf: base + "virtual_mailbox_maps = texthash:$DIR/dup\n", files: map[string]string{"dup": "a@example.com a/\na@example.com b/\n"}, rcpt: "a@example.com", code: CodeConfig},
		{name: "per-user uid from a table", cf: base + "virtual_mailbox_maps = static:a/\nvirtual_uid_maps = texthash:$DIR/uids\n", files: map[string]string{"uids": "a@example.com 5001\n@example.com 5002\n"}, rcpt: "A@example.com", mailbox: "a/", maildir: true, uid: 5001, gid: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(t, tc.cf, tc.files)
			target, st := s.Resolve(context.Background(), tc.rcpt)
			if tc.code != "" {
				if st == nil || st.Code != tc.code {
					t.Fatalf("Resolve(%q) = %+v, %v; want status %s", tc.rcpt, target, st, tc.code)
				}
				return
			}
			if st != nil {
				t.Fatalf("Resolve(%q): %v (%v)", tc.rcpt, st, st.Err)
			}
			if target.Mailbox != tc.mailbox || target.Maildir != tc.maildir || target.UID != tc.uid || target.GID != tc.gid {
				t.Errorf("Resolve(%q) = mailbox %q maildir %v uid %d gid %d; want %q %v %d %d",
					tc.rcpt, target.Mailbox, target.Maildir, target.UID, target.GID, tc.mailbox, tc.maildir, tc.uid, tc.gid)
			}
			if target.Path != strings.TrimLeft(tc.mailbox, "/") {
				t.Errorf("Path = %q", target.Path)
			}
			if tc.mailboxes != nil {
				var keys []string
				for _, p := range target.Probes {
					if p.Map == "virtual_mailbox_maps" {
						keys = append(keys, p.Key)
					}
				}
				if diff := cmp.Diff(tc.mailboxes, keys); diff != "" {
					t.Errorf("keys asked (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, cf := range map[string]string{
		"unknown lock":   "virtual_mailbox_lock = flock, bogus\n",
		"minimum uid 0":  "virtual_minimum_uid = 0\n",
		"negative limit": "virtual_mailbox_limit = -1\n",
		// A type postmap does not know is opened without a query now (it defers at its
		// first lookup); a missing .cf is still found at open.
		"missing sql cf":   "virtual_mailbox_maps = sqlite:/nonexistent/x.cf\n",
		"missing table":    "virtual_mailbox_maps = texthash:/nonexistent/vmailbox\n",
		"bad number":       "deliver_lock_attempts = many\n",
		"bad macro":        "virtual_mailbox_base = ${\n",
		"missing dom file": "virtual_mailbox_domains = /nonexistent/domains\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := maincf.Parse(strings.NewReader(cf), "main.cf")
			if err != nil {
				t.Fatal(err)
			}
			_, st := Load(c, nil)
			if st == nil || st.Code != CodeConfig || st.Exit != ExTempFail {
				t.Fatalf("Load = %v, want 4.3.5 / 75", st)
			}
		})
	}
}

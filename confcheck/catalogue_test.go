package confcheck

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"vdeliver/maincf"
)

// catalogueConfigs are broken configurations that between them make most findings; the
// files are written into a fresh directory, with DIR replaced by it.
var catalogueConfigs = []struct {
	name      string
	files     map[string]string
	overrides []string
}{
	{"typo and base", map[string]string{
		"main.cf": "virtual_mailbox_domain = example.net\nvirtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR/base\n" +
			"virtual_mailbox_maps = texthash:DIR/vmailbox\nvirtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n",
		"vmailbox": "a@example.com example.com/a/\nb@example.com example.com/b\nc@example.com example.com/../c/\nd@example.com x/d\x01/\n",
	}, nil},
	{"ids and base", map[string]string{
		"main.cf": "virtual_mailbox_base = relative\nvirtual_mailbox_maps = texthash:DIR/vmailbox\nvirtual_minimum_uid = 10\n" +
			"virtual_uid_maps = static:0\nvirtual_gid_maps = static:0\nmaillog_file = /var/log/postfix.log\nqueue_directory = DIR/q\n",
		"vmailbox": "a@example.com example.com/a/\nA@example.com example.com/a/\nUpper@Example.com x/\n",
	}, nil},
	{"bad ids", map[string]string{
		"main.cf": "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR\nvirtual_mailbox_maps = texthash:DIR/vmailbox\n" +
			"virtual_uid_maps = texthash:DIR/uids\nvirtual_gid_maps = static:4294967295\nvirtual_alias_maps = texthash:DIR/virtual\n" +
			"virtual_alias_domains = example.com\nmydestination = example.com\nvirtual_mailbox_lock = dotlock\n",
		"vmailbox": "a@example.com example.com/a/\nb@example.com example.com/b/\n",
		"uids":     "a@example.com vmail\nb@example.com 50\n",
		"virtual":  "@example.com a@example.com\n",
	}, []string{"virtual_minimum_uid=abc"}},
	{"tables", map[string]string{
		"main.cf": "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR\nvirtual_mailbox_maps = tcp:localhost:1, mysql:DIR/my.cf, hash:DIR/missing, texthash:DIR/dup\n" +
			"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n",
		"my.cf": "hosts = 127.0.0.1\n",
		"dup":   "a@example.com x/\na@example.com y/\n",
	}, nil},
	{"master.cf", map[string]string{
		"main.cf": "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR\nvirtual_mailbox_maps = static:x/\n" +
			"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nvirtual_transport = other\n" +
			"vdeliver_destination_recipient_limit =\nvdeliver_time_limit = 5s\ndeliver_lock_attempts = 20\n",
		"master.cf": "vdeliver unix - - y - - pipe flags=FDOR> user=nosuchuser4711 null_sender=x argv=/usr/local/bin/vdeliver ${recipient}\n" +
			"v2 unix - n n - - pipe user=root argv=/usr/local/bin/vdeliver -f ${sender} -d ${user}\n",
	}, nil},
	{"quota", map[string]string{
		"main.cf": "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR\nvirtual_mailbox_maps = texthash:DIR/vmailbox\n" +
			"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nvdeliver_quota_maps = texthash:DIR/quota, static:1X\n" +
			"vdeliver_overquota_status = later\n",
		"vmailbox": "a@example.com a/\nb@example.com b\n",
		"quota":    "a@example.com 1000S,1000S\nb@example.com -5S\n",
	}, nil},
	{"master.cf syntax", map[string]string{
		"main.cf":   "virtual_mailbox_domains = example.com\nvirtual_mailbox_base = DIR\nvirtual_mailbox_maps = static:x/\nvirtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n",
		"master.cf": "  continuation\n",
	}, nil},
}

// TestFindingTexts: every finding of the catalogue reads as sentences an administrator
// can act on: no empty text, no place or error told twice, no formatting debris, and every
// code is documented in the package documentation.
func TestFindingTexts(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	debris := regexp.MustCompile(`\?\?|<nil>|%!|\s,|: :|:\s*$|\s\s|\(\)|""\s|\buser: unknown user\b`)
	loc := regexp.MustCompile(`(\S+:[0-9]+:)`)
	errnos := []string{"file too large", "permission denied", "no such file or directory", "not a directory"}
	codes := map[string]bool{}
	for _, tc := range catalogueConfigs {
		dir := t.TempDir()
		for name, text := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(text, "DIR", dir)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Mkdir(filepath.Join(dir, "base"), 0o755)
		cf, err := maincf.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range tc.overrides {
			if err := cf.Override(o); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range Check(context.Background(), cf, Options{SyslogSocket: filepath.Join(dir, "no-syslog"), DeliveryOptions: []string{"f", "a", "i", "c", "o"}}) {
			codes[f.Code] = true
			where := tc.name + ": " + f.String()
			if f.Message == "" || f.Fix == "" || f.Code == "" || (f.Severity != Error && f.Severity != Warning) {
				t.Errorf("%s: incomplete finding %+v", tc.name, f)
			}
			for _, text := range []string{f.Message, f.Fix} {
				if m := debris.FindString(text); m != "" {
					t.Errorf("%s\n\tgarbled: %q", where, m)
				}
				for _, m := range loc.FindAllString(text, -1) {
					if strings.Count(text, m) > 1 || strings.Contains(f.String(), m+" "+string(f.Severity)+": ") && strings.Contains(text, m) {
						t.Errorf("%s\n\tthe place %s is told twice", where, m)
					}
				}
				lower := strings.ToLower(text)
				for _, e := range errnos {
					if strings.Count(lower, e) > 1 {
						t.Errorf("%s\n\t%q is told twice", where, e)
					}
				}
			}
			if f.Code == "table-module-missing" && !strings.HasPrefix(f.Fix, "install ") {
				t.Errorf("%s\n\ta missing module's fix must say what to install", where)
			}
			if !regexp.MustCompile(`(?m)^//\s+.*\b` + regexp.QuoteMeta(f.Code) + `\b`).Match(doc) {
				t.Errorf("code %s is not in the findings list of doc.go", f.Code)
			}
		}
	}
	// The catalogue must keep reaching the findings it is about.
	for _, want := range []string{"unknown-parameter", "base-not-writable", "mailbox-dotdot", "mailbox-invalid", "uid-invalid", "gid-invalid",
		"uid-root", "base-relative", "domains-unset", "table-unsupported", "table-duplicate", "texthash-uppercase", "master-user-unknown",
		"master-flags", "master-argv", "recipient-limit", "master-syntax", "parameter-error", "alias-wildcard", "domain-in-mydestination",
		"domain-in-alias-domains", "no-log-destination", "master-argv-foreign", "postlog-unreachable", "unreadable", "mbox-dir-missing"} {
		if !codes[want] {
			t.Errorf("no configuration of the catalogue makes %s (got %v)", want, slices.Sorted(mapsKeys(codes)))
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

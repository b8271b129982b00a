package maincf

import (
	"errors"
	"sort"
	"strings"
	"testing"
)

func TestStaticDefaultsSorted(t *testing.T) {
	t.Parallel()
	if !sort.SliceIsSorted(staticDefaults, func(i, j int) bool { return staticDefaults[i].name < staticDefaults[j].name }) {
		t.Fatal("staticDefaults is not sorted by name: sort.Search would miss entries")
	}
	for i := 1; i < len(staticDefaults); i++ {
		if staticDefaults[i].name == staticDefaults[i-1].name {
			t.Errorf("duplicate default %q", staticDefaults[i].name)
		}
	}
	c, _ := Parse(strings.NewReader(""), "main.cf")
	for _, d := range staticDefaults {
		if v, ok := c.Raw(d.name); !ok || v != d.value {
			t.Errorf("Raw(%q) = %q, %v; want %q", d.name, v, ok, d.value)
		}
	}
}

// TestDefaults pins the defaults vdeliver reads, as Postfix 3.7's "postconf -d" prints them.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse(strings.NewReader(""), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	c.host = func() string { return "mx.example.com" }
	raw := map[string]string{
		"virtual_mailbox_base":                "",
		"virtual_mailbox_maps":                "",
		"virtual_uid_maps":                    "",
		"virtual_gid_maps":                    "",
		"virtual_alias_maps":                  "$virtual_maps",
		"virtual_maps":                        "",
		"virtual_mailbox_domains":             "$virtual_mailbox_maps",
		"virtual_alias_domains":               "$virtual_alias_maps",
		"virtual_minimum_uid":                 "100",
		"virtual_mailbox_limit":               "51200000",
		"message_size_limit":                  "10240000",
		"virtual_mailbox_lock":                "fcntl, dotlock",
		"strict_mailbox_ownership":            "yes",
		"deliver_lock_attempts":               "20",
		"deliver_lock_delay":                  "1s",
		"stale_lock_time":                     "500s",
		"recipient_delimiter":                 "",
		"enable_original_recipient":           "yes",
		"owner_request_special":               "yes",
		"double_bounce_sender":                "double-bounce",
		"myhostname":                          "mx.example.com",
		"mydomain":                            "example.com",
		"myorigin":                            "$myhostname",
		"mydestination":                       "$myhostname, localhost.$mydomain, localhost",
		"inet_interfaces":                     "all",
		"proxy_interfaces":                    "",
		"soft_bounce":                         "no",
		"virtual_alias_recursion_limit":       "1000",
		"virtual_alias_expansion_limit":       "1000",
		"virtual_alias_address_length_limit":  "1000",
		"propagate_unmatched_extensions":      "canonical, virtual",
		"maximal_queue_lifetime":              "5d",
		"command_time_limit":                  "1000s",
		"default_destination_recipient_limit": "50",
		"mail_owner":                          "postfix",
		"smtputf8_enable":                     "${{$compatibility_level} <level {1} ? {no} : {yes}}",
		"compatibility_level":                 "0",
		"alternate_config_directories":        "",
		"multi_instance_directories":          "",
		"config_directory":                    "/etc/postfix",
		"mail_spool_directory":                "/var/mail",
	}
	for name, want := range raw {
		if got, ok := c.Raw(name); !ok || got != want {
			t.Errorf("Raw(%q) = %q, %v; want %q", name, got, ok, want)
		}
		if c.IsSet(name) {
			t.Errorf("IsSet(%q) = true for a default", name)
		}
	}
	expanded := map[string]string{
		"virtual_alias_maps": "",
		"myorigin":           "mx.example.com",
		"mydestination":      "mx.example.com, localhost.example.com, localhost",
		"smtputf8_enable":    "no",
	}
	for name, want := range expanded {
		if got, err := c.Get(name); err != nil || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if len(c.Names()) != 0 {
		t.Errorf("Names() = %v for an empty main.cf", c.Names())
	}
}

// TestDomainListDefaults is docs/behaviour.md §14.53: an unset virtual_mailbox_domains is
// the value of virtual_mailbox_maps, and the alias chain works the same way.
func TestDomainListDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text              string
		mailboxDomains, aliases string
	}{
		{"all unset", "", "", ""},
		{"maps set", "virtual_mailbox_maps = hash:/etc/postfix/vmailbox\nvirtual_alias_maps = hash:/etc/postfix/virtual\n",
			"hash:/etc/postfix/vmailbox", "hash:/etc/postfix/virtual"},
		{"maps set after use", "x = 1\nvirtual_mailbox_maps = $t:/etc/postfix/vmailbox\nt = texthash\n",
			"texthash:/etc/postfix/vmailbox", ""},
		{"legacy virtual_maps", "virtual_maps = hash:/etc/postfix/old\n", "", "hash:/etc/postfix/old"},
		{"domains set explicitly", "virtual_mailbox_maps = hash:/m\nvirtual_mailbox_domains = example.com, example.net\nvirtual_alias_domains =\n",
			"example.com, example.net", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(strings.NewReader(tc.text), "main.cf")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get("virtual_mailbox_domains"); err != nil || got != tc.mailboxDomains {
				t.Errorf("virtual_mailbox_domains = %q, %v; want %q", got, err, tc.mailboxDomains)
			}
			if got, err := c.Get("virtual_alias_domains"); err != nil || got != tc.aliases {
				t.Errorf("virtual_alias_domains = %q, %v; want %q", got, err, tc.aliases)
			}
		})
	}
}

// hostCases are the myhostname/mydomain derivations of Postfix's mail_params.c, each
// checked against postconf 3.7 on a host named "vm" (see TestHostDefaultsMatchPostconf).
var hostCases = []struct {
	name, host, text         string
	myhostname, mydomain     string
	mydestination            string
	hostnameErr, noPostconf2 bool
}{
	{name: "bare host", host: "vm", myhostname: "vm.localdomain", mydomain: "localdomain",
		mydestination: "vm.localdomain, localhost.localdomain, localhost"},
	{name: "bare host with mydomain", host: "vm", text: "mydomain = example.org\n",
		myhostname: "vm.example.org", mydomain: "example.org",
		mydestination: "vm.example.org, localhost.example.org, localhost"},
	{name: "bare host with mydomain macro", host: "vm", text: "mydomain = $d\nd = example.net\n",
		myhostname: "vm.example.net", mydomain: "example.net",
		mydestination: "vm.example.net, localhost.example.net, localhost"},
	{name: "fully qualified host", host: "mx.example.com", myhostname: "mx.example.com", mydomain: "example.com",
		mydestination: "mx.example.com, localhost.example.com, localhost"},
	{name: "myhostname with one dot", host: "vm", text: "myhostname = mail.example\n",
		myhostname: "mail.example", mydomain: "example",
		mydestination: "mail.example, localhost.example, localhost"},
	{name: "myhostname with more dots", host: "vm", text: "myhostname = a.b.c.d\n",
		myhostname: "a.b.c.d", mydomain: "b.c.d",
		mydestination: "a.b.c.d, localhost.b.c.d, localhost"},
	{name: "myhostname without dot", host: "vm", text: "myhostname = host\n",
		myhostname: "host", mydomain: "localdomain",
		mydestination: "host, localhost.localdomain, localhost"},
	{name: "myhostname from a macro", host: "vm", text: "myhostname = mail.$d\nd = example.com\n",
		myhostname: "mail.example.com", mydomain: "example.com",
		mydestination: "mail.example.com, localhost.example.com, localhost"},
	{name: "both set", host: "vm", text: "myhostname = mx.a.org\nmydomain = b.org\n",
		myhostname: "mx.a.org", mydomain: "b.org",
		mydestination: "mx.a.org, localhost.b.org, localhost"},
	// Loops Postfix resolves by start-up order; here they end without hanging.
	{name: "myhostname from mydomain", host: "vm", text: "myhostname = $mydomain\n",
		myhostname: "localdomain", mydomain: "localdomain",
		mydestination: "localdomain, localhost.localdomain, localhost", noPostconf2: true},
	{name: "myhostname loop", host: "vm", text: "myhostname = $myorigin\n",
		hostnameErr: true, mydomain: "localdomain", noPostconf2: true},
}

func TestHostDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range hostCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(strings.NewReader(tc.text), "main.cf")
			if err != nil {
				t.Fatal(err)
			}
			c.host = func() string { return tc.host }
			got, err := c.Get("myhostname")
			if tc.hostnameErr {
				if !errors.Is(err, ErrSyntax) {
					t.Errorf("myhostname = %q, %v; want an ErrSyntax", got, err)
				}
			} else if err != nil || got != tc.myhostname {
				t.Errorf("myhostname = %q, %v; want %q", got, err, tc.myhostname)
			}
			if got, err := c.Get("mydomain"); err != nil || got != tc.mydomain {
				t.Errorf("mydomain = %q, %v; want %q", got, err, tc.mydomain)
			}
			if tc.hostnameErr {
				return
			}
			if got, err := c.Get("mydestination"); err != nil || got != tc.mydestination {
				t.Errorf("mydestination = %q, %v; want %q", got, err, tc.mydestination)
			}
			if got, err := c.Get("myorigin"); err != nil || got != tc.myhostname {
				t.Errorf("myorigin = %q, %v; want %q", got, err, tc.myhostname)
			}
		})
	}
}

func TestConfigDirectoryDefault(t *testing.T) {
	t.Parallel()
	c, err := Parse(strings.NewReader("config_directory = /elsewhere\n"), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get("config_directory"); got != "/elsewhere" {
		t.Errorf("explicit config_directory = %q", got)
	}
	if c.Dir() != "" {
		t.Errorf("Dir() after Parse = %q, want \"\"", c.Dir())
	}
}

// parsePostconf reads "name = value" lines as postconf prints them.
func parsePostconf(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		name, value, ok := strings.Cut(line, " =")
		if !ok {
			t.Fatalf("postconf printed %q", line)
		}
		m[name] = strings.TrimPrefix(value, " ")
	}
	return m
}

// perTransport are defaults postconf only knows when master.cf has a "virtual" service.
var perTransport = map[string]bool{
	"virtual_destination_concurrency_limit": true,
	"virtual_destination_recipient_limit":   true,
}

func defaultNames() []string {
	names := []string{"myhostname", "mydomain", "config_directory"}
	for _, d := range staticDefaults {
		// vdeliver's own parameters are unknown to postconf.
		if !perTransport[d.name] && !strings.HasPrefix(d.name, "vdeliver_") {
			names = append(names, d.name)
		}
	}
	return names
}

// TestDefaultsMatchPostconf compares every default, raw, with "postconf -d".
func TestDefaultsMatchPostconf(t *testing.T) {
	t.Parallel()
	requirePostconf(t)
	names := defaultNames()
	out, ok := postconf(t, "", append([]string{"-d"}, names...)...)
	if !ok {
		t.Fatalf("postconf -d failed: %q", out)
	}
	want := parsePostconf(t, out)
	c, err := Parse(strings.NewReader(""), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		w, known := want[name]
		if !known {
			t.Errorf("postconf -d does not know %q", name)
			continue
		}
		if got, _ := c.Raw(name); got != w {
			t.Errorf("default %s = %q; postconf -d says %q", name, got, w)
		}
	}
}

// TestExpandedDefaultsMatchPostconf compares expanded values with "postconf -x" for
// main.cf files that move the derived defaults.
func TestExpandedDefaultsMatchPostconf(t *testing.T) {
	t.Parallel()
	requirePostconf(t)
	texts := []string{
		"compatibility_level = 3.6\n",
		"virtual_mailbox_maps = hash:/etc/postfix/vmailbox\nvirtual_maps = hash:/etc/postfix/virtual\n",
	}
	for _, tc := range hostCases {
		if !tc.noPostconf2 {
			texts = append(texts, tc.text)
		}
	}
	names := defaultNames()
	for _, text := range texts {
		t.Run(strings.ReplaceAll(text, "\n", ";"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, ok := postconfIn(t, dir, text, append([]string{"-x"}, names...)...)
			if !ok {
				t.Fatalf("postconf -x failed: %q", out)
			}
			want := parsePostconf(t, out)
			c, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				got, err := c.Get(name)
				if err != nil || got != want[name] {
					t.Errorf("%s = %q, %v; postconf -x says %q", name, got, err, want[name])
				}
			}
		})
	}
}

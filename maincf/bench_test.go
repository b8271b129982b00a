package maincf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchMainCF is a Debian main.cf with a virtual mailbox set-up: about 60
// lines with comments, continuations and macros.
const benchMainCF = `# See /usr/share/postfix/main.cf.dist for a commented, more complete version

# Debian specific:  Specifying a file name will cause the first
# line of that file to be used as the name.  The Debian default
# is /etc/mailname.
#myorigin = /etc/mailname

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

# appending .domain is the MUA's job.
append_dot_mydomain = no

# Uncomment the next line to generate "delayed mail" warnings
#delay_warning_time = 4h

readme_directory = no

# See http://www.postfix.org/COMPATIBILITY_README.html -- default to 3.6 on
# fresh installs.
compatibility_level = 3.6

# TLS parameters
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_security_level=may

smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache

smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated
    defer_unauth_destination
myhostname = mx.example.com
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = loopback-only
inet_protocols = all

# Virtual mailbox domains, non-UNIX accounts (VIRTUAL_README).
virtual_mailbox_domains = example.com, example.net,
	${{$compatibility_level} <level {3} ? {} : {example.org}}
virtual_mailbox_base = /var/mail/vhosts
virtual_mailbox_maps = hash:$config_directory/vmailbox
virtual_minimum_uid = 100
virtual_uid_maps = static:5000
virtual_gid_maps = static:5000
virtual_alias_maps = hash:$config_directory/virtual
virtual_mailbox_limit = ${message_size_limit}0
virtual_transport = vdeliver
vdeliver_destination_recipient_limit = 1
strict_mailbox_ownership = yes
deliver_lock_delay = 1s
`

// benchParams are what deliver.Load reads first.
var benchParams = []string{
	"virtual_mailbox_base", "virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps",
	"virtual_mailbox_domains", "mydestination", "myorigin", "recipient_delimiter",
	"virtual_mailbox_limit", "smtputf8_enable",
}

func TestBenchMainCF(t *testing.T) {
	t.Parallel()
	if n := strings.Count(benchMainCF, "\n"); n < 55 || n > 65 {
		t.Fatalf("benchmark main.cf has %d lines, want about 60", n)
	}
	c, err := Parse(strings.NewReader(benchMainCF), "/etc/postfix/main.cf")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("warnings: %v", c.Warnings())
	}
	want := map[string]string{
		"virtual_mailbox_base":     "/var/mail/vhosts",
		"virtual_mailbox_maps":     "hash:/etc/postfix/vmailbox",
		"virtual_mailbox_domains":  "example.com, example.net,\texample.org",
		"mydestination":            "mx.example.com, localhost.example.com, localhost",
		"myorigin":                 "example.com",
		"virtual_mailbox_limit":    "102400000",
		"smtputf8_enable":          "yes",
		"smtpd_relay_restrictions": "permit_mynetworks permit_sasl_authenticated    defer_unauth_destination",
	}
	for name, w := range want {
		if got, err := c.Get(name); err != nil || got != w {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, err, w)
		}
	}
}

// BenchmarkStartup is the configuration part of one vdeliver start: parse main.cf and
// expand what a delivery needs. The target is well under 0.3 ms.
func BenchmarkStartup(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(strings.NewReader(benchMainCF), "/etc/postfix/main.cf")
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range benchParams {
			if _, err := c.Get(name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLoad adds opening and reading the file to BenchmarkStartup.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(benchMainCF), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range benchParams {
			if _, err := c.Get(name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vdeliver/deliver"
	"vdeliver/lookup"
)

// needRootTools skips a test that needs root and Postfix's programs, unless CI=true, where
// their absence is a broken CI.
func needRootTools(t testing.TB, tools ...string) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("not root: a private Postfix instance is started with `postfix start`, which needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is missing (make deps installs it)", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/postfix/postfix-sqlite.so"); err != nil {
		skip("postfix-sqlite is missing (make deps installs it)")
	}
}

// postfixInstance is a private Postfix: its own configuration directory, queue and data
// directories under a temporary directory, a master.cf with nothing but proxymap(8)
// (verbose, so its log shows each request) and the log daemon, no network service.
type postfixInstance struct {
	dir   string // the temporary directory holding everything below
	conf  string // config_directory
	queue string // queue_directory
	log   string // maillog_file
}

// startPostfix starts a private instance whose main.cf is the base below plus cf, and
// stops it when the test ends, failed or not. A benchmark's proxymap does not log each
// request (-v costs milliseconds per lookup).
func startPostfix(t testing.TB, cf string) *postfixInstance {
	t.Helper()
	needRootTools(t, "postfix", "sqlite3")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	p := &postfixInstance{dir: dir, conf: filepath.Join(dir, "pf"), queue: filepath.Join(dir, "queue"), log: filepath.Join(dir, "maillog")}
	data := filepath.Join(dir, "data")
	for _, d := range []string{p.conf, p.queue, data} {
		must(t, os.MkdirAll(d, 0o755))
	}
	pf, err := user.Lookup("postfix")
	must(t, err)
	uid, _ := strconv.Atoi(pf.Uid)
	must(t, os.Chown(data, uid, -1))
	writeFile(t, filepath.Join(p.conf, "main.cf"), "compatibility_level = 3.6\n"+
		"queue_directory = "+p.queue+"\ndata_directory = "+data+"\n"+
		"mail_owner = postfix\nsetgid_group = postdrop\n"+
		"inet_interfaces = loopback-only\ninet_protocols = ipv4\n"+
		"myhostname = vdeliver-test.invalid\nmydestination =\n"+
		"maillog_file = "+p.log+"\nmaillog_file_prefixes = "+dir+"\n"+cf)
	verbose := " -v"
	if _, ok := t.(*testing.B); ok {
		verbose = ""
	}
	writeFile(t, filepath.Join(p.conf, "master.cf"),
		"proxymap  unix  -  -  n  -  -  proxymap"+verbose+"\n"+
			"postlog   unix-dgram n  -  n  -  1  postlogd\n")
	if out, err := exec.Command("postfix", "-c", p.conf, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix -c %s start: %v\n%s", p.conf, err, out)
	}
	t.Cleanup(func() {
		exec.Command("postfix", "-c", p.conf, "stop").Run()
		// Wait for the master to go, so that the temporary directory can be removed.
		for i := 0; i < 100 && exec.Command("postfix", "-c", p.conf, "status").Run() == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(p.socket()); err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("no proxymap socket after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

func (p *postfixInstance) socket() string {
	return deliver.ProxymapSocket(p.queue, "proxymap")
}

// logged reports whether the instance's log mentions s (proxymap -v logs each
// attribute it reads). The log daemon writes a moment later: it waits up to 10 s.
func (p *postfixInstance) logged(t testing.TB, s string) bool {
	t.Helper()
	for i := 0; i < 100; i++ {
		b, err := os.ReadFile(p.log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// sqliteTable writes a sqlite database with the given address → mailbox rows and a
// sqlite_table(5) file for it, and returns the file's name.
func sqliteTable(t testing.TB, dir string, rows map[string]string) string {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	db := filepath.Join(dir, "vmail.sqlite")
	sql := "CREATE TABLE mailbox (address TEXT PRIMARY KEY, path TEXT);\n"
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sql += fmt.Sprintf("INSERT INTO mailbox VALUES ('%s', '%s');\n", k, rows[k])
	}
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	must(t, os.Chmod(db, 0o644))
	cf := filepath.Join(dir, "vmailbox.cf")
	writeFile(t, cf, "dbpath = "+db+"\nquery = SELECT path FROM mailbox WHERE address = '%s'\n")
	return cf
}

// vdeliverCopy is this test binary installed as a plain (not set-uid) vdeliver.
func vdeliverCopy(t testing.TB, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	must(t, err)
	b, err := os.ReadFile(exe)
	must(t, err)
	bin := filepath.Join(dir, "bin", "vdeliver")
	must(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	must(t, os.WriteFile(bin, b, 0o755))
	return bin
}

// postmapSpy is a directory with a "postmap" that records each run in a file and then
// runs Postfix's own: put first in PATH, it tells whether a delivery fell back to
// postmap(1).
func postmapSpy(t testing.TB, dir string) (pathDir, record string) {
	t.Helper()
	pathDir = filepath.Join(dir, "spy")
	record = filepath.Join(dir, "postmap-runs")
	writeFile(t, filepath.Join(pathDir, "postmap"), "#!/bin/sh\necho \"$*\" >>"+record+"\nexec /usr/sbin/postmap \"$@\"\n")
	must(t, os.Chmod(filepath.Join(pathDir, "postmap"), 0o755))
	return pathDir, record
}

type deliveryResult struct {
	exit int
	out  string
	log  string
}

// deliverAs runs bin as uid:gid (uid 0: root, which switches to the recipient) with
// config directory conf and returns the exit status, standard output and its log.
func deliverAs(t testing.TB, bin string, uid, gid int, env []string, conf, rcpt string) deliveryResult {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "log")
	must(t, os.Chmod(filepath.Dir(logFile), 0o777))
	args := []string{"-c", conf, "-f", "sender@example.org", "--", rcpt}
	if uid == 0 {
		args = append([]string{"--log-file", logFile}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader("Subject: hi\n\nbody\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	}
	err := cmd.Run()
	r := deliveryResult{out: out.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if errOut.Len() > 0 {
		t.Errorf("vdeliver wrote to stderr: %q", errOut.String())
	}
	b, _ := os.ReadFile(logFile)
	r.log = string(b)
	return r
}

// TestProxymapDelivery delivers through proxy:sqlite: in virtual_mailbox_maps with a real
// Postfix's proxymap(8): hit, miss, a table proxymap does not approve, no socket (postmap
// answers instead), and a server that closes the connection in the middle of a reply.
func TestProxymapDelivery(t *testing.T) {
	pfxDir := t.TempDir()
	must(t, os.Chmod(pfxDir, 0o755))
	cf := sqliteTable(t, filepath.Join(pfxDir, "sql"), map[string]string{"alice@example.com": "example.com/alice/"})
	p := startPostfix(t, "virtual_mailbox_maps = proxy:sqlite:"+cf+"\n")
	dir := p.dir
	base := filepath.Join(dir, "vmail")
	must(t, os.MkdirAll(base, 0o755))
	must(t, os.Chown(base, 5000, 5000))
	bin := vdeliverCopy(t, dir)
	spyDir, spyRecord := postmapSpy(t, dir)
	env := []string{"PATH=" + spyDir + ":/usr/bin:/bin"}
	// vdeliver's own configuration directories: the instance's queue or another.
	vconf := func(name, queue, maps string) string {
		c := filepath.Join(dir, name)
		writeFile(t, filepath.Join(c, "main.cf"), "virtual_mailbox_domains = example.com\n"+
			"virtual_mailbox_base = "+base+"\nvirtual_mailbox_maps = "+maps+"\n"+
			"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n"+
			"virtual_minimum_uid = 100\nqueue_directory = "+queue+"\n")
		return c
	}
	spied := func() bool {
		_, err := os.Stat(spyRecord)
		os.Remove(spyRecord)
		return err == nil
	}
	proxied := vconf("etc", p.queue, "proxy:sqlite:"+cf)

	t.Run("hit", func(t *testing.T) {
		r := deliverAs(t, bin, 0, 0, env, proxied, "alice@example.com")
		if r.exit != 0 || r.out != "2.0.0 delivered to maildir\n" {
			t.Fatalf("exit %d, %q; log:\n%s", r.exit, r.out, r.log)
		}
		if n, _ := filepath.Glob(filepath.Join(base, "example.com/alice/new/*")); len(n) != 1 {
			t.Errorf("maildir new/ holds %d files, want 1", len(n))
		}
		if spied() {
			t.Error("postmap(1) ran: the lookup did not go through proxymap")
		}
		if !p.logged(t, "input attribute value: alice@example.com") {
			t.Error("proxymap's log does not show the lookup of alice@example.com")
		}
	})
	t.Run("miss", func(t *testing.T) {
		r := deliverAs(t, bin, 0, 0, env, proxied, "nobody@example.com")
		if r.exit != 67 || !strings.HasPrefix(r.out, "5.1.1 ") {
			t.Fatalf("exit %d, %q; log:\n%s", r.exit, r.out, r.log)
		}
		if spied() {
			t.Error("postmap(1) ran: the lookup did not go through proxymap")
		}
	})
	t.Run("not approved", func(t *testing.T) {
		// A table the instance's main.cf does not name as proxy:: proxymap answers
		// status 4 and the mail waits, as Postfix's own clients fail.
		other := sqliteTable(t, filepath.Join(dir, "sql2"), map[string]string{"alice@example.com": "example.com/alice/"})
		conf := vconf("etc-other", p.queue, "proxy:sqlite:"+other)
		r := deliverAs(t, bin, 0, 0, env, conf, "alice@example.com")
		if r.exit != 75 || r.out != "4.3.5 mail system configuration error\n" || !strings.Contains(r.log, "list proxy:sqlite:"+other+" in proxy_read_maps") {
			t.Fatalf("exit %d, %q; log:\n%s", r.exit, r.out, r.log)
		}
		if !p.logged(t, `request for unapproved table: "sqlite:`+other+`"`) {
			t.Error("proxymap did not log the refusal")
		}
		if spied() {
			t.Error("postmap(1) ran for a table proxymap refused")
		}
		// vdeliver check, run as root, asks proxymap as a delivery does.
		cmd := exec.Command(bin, "check", "-c", conf)
		cmd.Env = env
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "does not serve sqlite:"+other) ||
			!strings.Contains(string(out), "fix: add proxy:sqlite:"+other+" to proxy_read_maps") {
			t.Errorf("vdeliver check: %v\n%s", err, out)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		conf := vconf("etc-nosocket", filepath.Join(dir, "no-queue"), "proxy:sqlite:"+cf)
		r := deliverAs(t, bin, 0, 0, env, conf, "alice@example.com")
		if r.exit != 0 || r.out != "2.0.0 delivered to maildir\n" {
			t.Fatalf("exit %d, %q; log:\n%s", r.exit, r.out, r.log)
		}
		if !spied() {
			t.Error("without a proxymap socket, postmap(1) did not answer")
		}
	})
	t.Run("closed mid-reply", func(t *testing.T) {
		// A fault a real proxymap does not make on demand: a stand-in that accepts the
		// open and closes the connection in the middle of the lookup's reply.
		queue := filepath.Join(dir, "fake-queue")
		must(t, os.MkdirAll(filepath.Join(queue, "private"), 0o755))
		l, err := net.Listen("unix", deliver.ProxymapSocket(queue, "proxymap"))
		must(t, err)
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			c.Write([]byte("protocol\x00proxymap_protocol\x00\x00"))
			readAttrList(r)
			c.Write([]byte("status\x000\x00flags\x0016\x00\x00"))
			readAttrList(r)
			c.Write([]byte("status\x000\x00value\x00example.com/al"))
		}()
		conf := vconf("etc-broken", queue, "proxy:sqlite:"+cf)
		r := deliverAs(t, bin, 0, 0, env, conf, "alice@example.com")
		if r.exit != 75 || !strings.HasPrefix(r.out, "4.3.5 ") || !strings.Contains(r.log, "connection closed by the server in a reply") {
			t.Fatalf("exit %d, %q; log:\n%s", r.exit, r.out, r.log)
		}
		if spied() {
			t.Error("postmap(1) ran after proxymap failed: an error must defer, not be asked again elsewhere")
		}
	})
}

// readAttrList reads one NUL-separated attribute list (up to the empty name).
func readAttrList(r *bufio.Reader) {
	for n := 0; ; n++ {
		s, err := r.ReadString(0)
		if err != nil || s == "\x00" && n%2 == 0 {
			return
		}
	}
}

// TestProxymapSetuid: the Postfixadmin set-up, the .cf of a proxy:sqlite table mode 0640
// root:postfix. Run as vmail, the set-uid-root vdeliver connects to proxymap as root
// before it switches to the recipient, and delivers.
func TestProxymapSetuid(t *testing.T) {
	needRootTools(t, "postfix", "sqlite3")
	pfxDir := t.TempDir()
	must(t, os.Chmod(pfxDir, 0o755))
	cf := sqliteTable(t, filepath.Join(pfxDir, "sql"), map[string]string{"alice@example.com": "alice/"})
	pf, err := user.Lookup("postfix")
	must(t, err)
	pgid, _ := strconv.Atoi(pf.Gid)
	must(t, os.Chown(cf, 0, pgid))
	must(t, os.Chmod(cf, 0o640))
	p := startPostfix(t, "virtual_mailbox_maps = proxy:sqlite:"+cf+"\n")
	in := newSetuidInstall(t, "queue_directory = "+p.queue+"\nvirtual_mailbox_maps = proxy:sqlite:"+cf+"\n")
	cmd, out, errOut := in.command(mtaUID, vmailGID, []string{"MAIL_CONFIG=" + filepath.Join(in.dir, "etc")}, "-f", "sender@example.org", "--", "alice@example.com")
	err = cmd.Run()
	if err != nil || out.String() != "2.0.0 delivered to maildir\n" || errOut.Len() > 0 {
		t.Fatalf("vdeliver: %v, stdout %q, stderr %q", err, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(in.dir, "vmail/alice/new/*"))
	if len(files) != 1 {
		t.Fatalf("alice's new/ holds %d files, want 1", len(files))
	}
	var st syscall.Stat_t
	must(t, syscall.Stat(files[0], &st))
	if st.Uid != aliceUID {
		t.Errorf("message owned by uid %d, want %d", st.Uid, aliceUID)
	}
	if !p.logged(t, "input attribute value: alice@example.com") {
		t.Error("proxymap's log does not show the lookup: the table was not read through proxymap")
	}
}

// TestUnreadableTableHint: without set-uid, a table file the delivering user cannot read
// defers 4.3.5, and the log names the file and the user.
func TestUnreadableTableHint(t *testing.T) {
	needRootTools(t, "postmap", "sqlite3")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	cf := sqliteTable(t, filepath.Join(dir, "sql"), map[string]string{"alice@example.com": "alice/"})
	must(t, os.Chmod(cf, 0o600))
	conf := filepath.Join(dir, "etc")
	logFile := filepath.Join(dir, "log")
	writeFile(t, logFile, "")
	must(t, os.Chown(logFile, 5000, 5000))
	writeFile(t, filepath.Join(conf, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+dir+"/vmail\nvirtual_mailbox_maps = proxy:sqlite:"+cf+"\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nvirtual_minimum_uid = 100\n"+
		"queue_directory = "+dir+"/no-queue\n")
	bin := vdeliverCopy(t, dir)
	cmd := exec.Command(bin, "--log-file", logFile, "-c", conf, "--", "alice@example.com")
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin"}
	cmd.Stdin = strings.NewReader("Subject: hi\n\nbody\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 5000, Gid: 5000, Groups: []uint32{}}}
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 75 || string(out) != "4.3.5 mail system configuration error\n" {
		t.Fatalf("vdeliver: %v, %q", err, out)
	}
	b, err := os.ReadFile(logFile)
	must(t, err)
	name := "5000"
	if u, err := user.LookupId("5000"); err == nil {
		name += " (" + u.Username + ")"
	}
	if want := cf + " is not readable by uid " + name; !strings.Contains(string(b), want) {
		t.Errorf("log does not say %q:\n%s", want, b)
	}
}

// median of a sample, in the unit given.
func median(d []time.Duration, unit time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return float64(s[len(s)/2]) / float64(unit)
}

// BenchmarkProxymapLookup: one lookup of an open proxy:sqlite table through a real
// proxymap(8), alternating with the same lookup through postmap(1) (one process each),
// so that both see the same machine load; the medians are reported (µs).
func BenchmarkProxymapLookup(b *testing.B) {
	pfxDir := b.TempDir()
	must(b, os.Chmod(pfxDir, 0o755))
	cf := sqliteTable(b, filepath.Join(pfxDir, "sql"), map[string]string{"alice@example.com": "example.com/alice/"})
	p := startPostfix(b, "virtual_mailbox_maps = proxy:sqlite:"+cf+"\n")
	ctx := context.Background()
	pm := lookup.NewProxymap(p.socket())
	defer pm.Close()
	var tabs []lookup.Table
	for _, via := range []*lookup.Proxymap{pm, nil} {
		tab, err := lookup.Open("proxy:sqlite:"+cf, lookup.Options{ConfigDir: p.conf, Paranoid: true, Proxymap: via})
		must(b, err)
		defer tab.Close()
		tabs = append(tabs, tab)
	}
	if lookup.ViaPostmap(tabs[0]) || !lookup.ViaPostmap(tabs[1]) {
		b.Fatal("the tables are not one through proxymap, one through postmap")
	}
	var took [2][]time.Duration
	for b.Loop() {
		for i, tab := range tabs {
			start := time.Now()
			if v, ok, err := tab.Lookup(ctx, "alice@example.com"); v != "example.com/alice/" || !ok || err != nil {
				b.Fatalf("Lookup = %q, %v, %v", v, ok, err)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	b.ReportMetric(median(took[0], time.Microsecond), "proxymap-µs")
	b.ReportMetric(median(took[1], time.Microsecond), "postmap-µs")
}

// BenchmarkProxymapDelivery: a whole delivery process (this binary as vdeliver, run as
// root, which switches to the recipient) with virtual_mailbox_maps =
// proxy:sqlite:... through proxymap, alternating with the same delivery with static:,
// so that both see the same machine load. It reports the medians (ms) and the median of
// the differences of each pair.
func BenchmarkProxymapDelivery(b *testing.B) {
	pfxDir := b.TempDir()
	must(b, os.Chmod(pfxDir, 0o755))
	cf := sqliteTable(b, filepath.Join(pfxDir, "sql"), map[string]string{"alice@example.com": "example.com/alice/"})
	p := startPostfix(b, "virtual_mailbox_maps = proxy:sqlite:"+cf+"\n")
	base := filepath.Join(p.dir, "vmail")
	must(b, os.MkdirAll(base, 0o755))
	must(b, os.Chown(base, 5000, 5000))
	bin := vdeliverCopy(b, p.dir)
	var confs []string
	for i, maps := range []string{"static:example.com/alice/", "proxy:sqlite:" + cf} {
		conf := filepath.Join(p.dir, "etc"+strconv.Itoa(i))
		writeFile(b, filepath.Join(conf, "main.cf"), "virtual_mailbox_domains = example.com\n"+
			"virtual_mailbox_base = "+base+"\nvirtual_mailbox_maps = "+maps+"\n"+
			"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n"+
			"virtual_minimum_uid = 100\nqueue_directory = "+p.queue+"\n")
		confs = append(confs, conf)
	}
	var took [2][]time.Duration
	var diff []time.Duration
	for b.Loop() {
		for i, conf := range confs {
			start := time.Now()
			if r := deliverAs(b, bin, 0, 0, []string{"PATH=/usr/bin:/bin"}, conf, "alice@example.com"); r.exit != 0 {
				b.Fatalf("exit %d %q", r.exit, r.out)
			}
			took[i] = append(took[i], time.Since(start))
		}
		diff = append(diff, took[1][len(took[1])-1]-took[0][len(took[0])-1])
	}
	b.ReportMetric(median(took[0], time.Millisecond), "static-ms")
	b.ReportMetric(median(took[1], time.Millisecond), "proxy-sqlite-ms")
	b.ReportMetric(median(diff, time.Millisecond), "diff-ms")
}

// startPostgres starts a throwaway PostgreSQL server: a cluster in a temporary directory,
// listening only on a UNIX socket there, trust authentication, stopped when the test
// ends. It returns the socket directory and a function that runs SQL as postgres.
func startPostgres(t testing.TB) (sockDir string, stop func(), psql func(sql string)) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		needRootTools(t, "pg_ctl (postgresql)")
	}
	if _, err := os.Stat("/usr/lib/postfix/postfix-pgsql.so"); err != nil {
		needRootTools(t, "postfix-pgsql")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	pg, err := user.Lookup("postgres")
	must(t, err)
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	data, sockDir := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sockDir} {
		must(t, os.Mkdir(d, 0o700))
		must(t, os.Chown(d, uid, gid))
	}
	must(t, os.Chmod(sockDir, 0o755))
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		return cmd
	}
	run := func(cmd *exec.Cmd) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd.Args, err, out)
		}
	}
	run(asPostgres("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"))
	run(asPostgres("pg_ctl", "-D", data, "-w", "-l", filepath.Join(sockDir, "log"),
		"-o", "-c listen_addresses= -k "+sockDir+" -c fsync=off", "start"))
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			asPostgres("pg_ctl", "-D", data, "-w", "-m", "immediate", "stop").Run()
		}
	}
	t.Cleanup(stop)
	psql = func(sql string) {
		t.Helper()
		run(asPostgres("psql", "-h", sockDir, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql))
	}
	return sockDir, stop, psql
}

// TestProxymapPgsql: proxy:pgsql: through a real proxymap and a throwaway PostgreSQL:
// hit, miss, and the database gone, which proxymap reports as a temporary error (status
// 2): the mail waits.
func TestProxymapPgsql(t *testing.T) {
	needRootTools(t, "postfix")
	sock, stopDB, psql := startPostgres(t)
	psql("CREATE TABLE mailbox (address TEXT PRIMARY KEY, path TEXT); INSERT INTO mailbox VALUES ('alice@example.com', 'example.com/alice/');")
	proxySQLDeliveries(t, "pgsql", "hosts = unix:"+sock+"\nuser = postgres\ndbname = postgres\n"+
		"query = SELECT path FROM mailbox WHERE address = '%s'\n", stopDB)
}

// startMariaDB starts a throwaway MariaDB server as root (--user=root: the instance
// lives in a temporary directory and listens on a UNIX socket only), with a
// password-less root account for Postfix's mysql client, killed when the test ends. It
// returns the socket and a function that runs SQL.
func startMariaDB(t testing.TB) (socket string, stop func(), sql func(string)) {
	t.Helper()
	needRootTools(t, "mariadb-install-db", "mariadbd", "mariadb")
	if _, err := os.Stat("/usr/lib/postfix/postfix-mysql.so"); err != nil {
		needRootTools(t, "postfix-mysql")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	data := filepath.Join(dir, "data")
	socket = filepath.Join(dir, "mysqld.sock")
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	mariadbd, err := exec.LookPath("mariadbd")
	must(t, err)
	srv := exec.Command(mariadbd, "--no-defaults", "--user=root", "--datadir="+data, "--socket="+socket,
		"--skip-networking", "--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "error.log"),
		"--innodb-buffer-pool-size=8M")
	must(t, srv.Start())
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Process.Kill()
			srv.Wait()
		}
	}
	t.Cleanup(stop)
	sql = func(q string) {
		t.Helper()
		if out, err := exec.Command("mariadb", "--no-defaults", "-S", socket, "-u", "root", "-e", q).CombinedOutput(); err != nil {
			t.Fatalf("mariadb -e %q: %v\n%s", q, err, out)
		}
	}
	for i := 0; ; i++ {
		if exec.Command("mariadb", "--no-defaults", "-S", socket, "-u", "root", "-e", "SELECT 1").Run() == nil {
			break
		}
		if i == 300 {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("MariaDB did not start in 30 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return socket, stop, sql
}

// TestProxymapMySQL: proxy:mysql: through a real proxymap and a throwaway MariaDB, the
// Postfixadmin set-up: hit, miss, and the database gone (status 2): the mail waits.
func TestProxymapMySQL(t *testing.T) {
	needRootTools(t, "postfix")
	sock, stopDB, sql := startMariaDB(t)
	sql("CREATE DATABASE vmail; CREATE TABLE vmail.mailbox (address VARCHAR(255) PRIMARY KEY, path VARCHAR(255));" +
		" INSERT INTO vmail.mailbox VALUES ('alice@example.com', 'example.com/alice/');")
	proxySQLDeliveries(t, "mysql", "hosts = unix:"+sock+"\nuser = root\npassword =\ndbname = vmail\n"+
		"query = SELECT path FROM mailbox WHERE address = '%s'\n", stopDB)
}

// proxySQLDeliveries delivers through proxy:typ: with a table configured by cfText (whose
// database holds alice@example.com): a hit, a miss, and after stopDB the database gone,
// which proxymap reports as a temporary error, so the mail waits. postmap(1) must never run.
func proxySQLDeliveries(t *testing.T, typ, cfText string, stopDB func()) {
	t.Helper()
	sqlDir := t.TempDir()
	must(t, os.Chmod(sqlDir, 0o755))
	cf := filepath.Join(sqlDir, "vmailbox.cf")
	writeFile(t, cf, cfText)
	p := startPostfix(t, "virtual_mailbox_maps = proxy:"+typ+":"+cf+"\n")
	base := filepath.Join(p.dir, "vmail")
	must(t, os.MkdirAll(base, 0o755))
	must(t, os.Chown(base, 5000, 5000))
	bin := vdeliverCopy(t, p.dir)
	spyDir, spyRecord := postmapSpy(t, p.dir)
	env := []string{"PATH=" + spyDir + ":/usr/bin:/bin"}
	conf := filepath.Join(p.dir, "etc")
	writeFile(t, filepath.Join(conf, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+base+"\nvirtual_mailbox_maps = proxy:"+typ+":"+cf+"\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\n"+
		"virtual_minimum_uid = 100\nqueue_directory = "+p.queue+"\n")
	if r := deliverAs(t, bin, 0, 0, env, conf, "alice@example.com"); r.exit != 0 || r.out != "2.0.0 delivered to maildir\n" {
		t.Fatalf("hit: exit %d, %q; log:\n%s", r.exit, r.out, r.log)
	}
	if r := deliverAs(t, bin, 0, 0, env, conf, "nobody@example.com"); r.exit != 67 || !strings.HasPrefix(r.out, "5.1.1 ") {
		t.Fatalf("miss: exit %d, %q; log:\n%s", r.exit, r.out, r.log)
	}
	stopDB()
	if r := deliverAs(t, bin, 0, 0, env, conf, "alice@example.com"); r.exit != 75 || r.out != "4.3.5 mail system configuration error\n" || !strings.Contains(r.log, "temporary error") {
		t.Fatalf("database down: exit %d, %q; log:\n%s", r.exit, r.out, r.log)
	}
	if _, err := os.Stat(spyRecord); err == nil {
		t.Error("postmap(1) ran: the lookups did not all go through proxymap")
	}
}

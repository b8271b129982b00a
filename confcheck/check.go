package confcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vdeliver/deliver"
	"vdeliver/internal/rawfile"
	"vdeliver/lookup"
	"vdeliver/maincf"
)

// maxListFile bounds a /file of a domain list or master.cf as a delivery does: a file
// that claims more must not decide how much memory check asks for.
const maxListFile = 16 << 20

// Severity says how bad a finding is: an Error loses, misroutes or defers mail or opens a
// hole; a Warning works today but is a trap.
type Severity string

// The severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem: where it is written, how bad, what is wrong and how to fix it.
// Line 0 means the file as a whole: something is missing from it.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

// String is the finding as "FILE:LINE: severity: message [code]" and an indented fix
// line, the shape compilers use so editors can jump to it.
func (f Finding) String() string {
	loc := f.File + ":"
	if f.Line > 0 {
		loc += strconv.Itoa(f.Line) + ":"
	}
	if f.File == overrideFile {
		loc = fmt.Sprintf("-o option %d:", f.Line)
	}
	return fmt.Sprintf("%s %s: %s [%s]\n\tfix: %s", loc, f.Severity, f.Message, f.Code, f.Fix)
}

// Options change what Check reads.
type Options struct {
	// Master is the master.cf to read; "" is master.cf beside main.cf. When the file does
	// not exist the master.cf checks are skipped.
	Master string
	// SyslogSocket is the syslog socket the delivery uses instead of the usual places
	// ($VDELIVER_SYSLOG_SOCKET), "" for those.
	SyslogSocket string
	// DeliveryOptions are the names of the delivery command's options (without dashes),
	// for the master.cf argv check; nil skips it.
	DeliveryOptions []string
}

// Check inspects a loaded main.cf, the tables it names and master.cf, and returns every
// finding, sorted by file and line. See the package documentation for the list.
//
// Check never fails: a file it cannot read is itself a finding.
func Check(ctx context.Context, cf *maincf.Config, opt Options) []Finding {
	c := &checker{ctx: ctx, cf: cf, mainFile: filepath.Join(cf.Dir(), "main.cf"), tables: map[string]*table{}, vals: map[string]string{}}
	c.masterFile = opt.Master
	c.syslogSocket = opt.SyslogSocket
	c.deliveryOptions = opt.DeliveryOptions
	if c.masterFile == "" {
		c.masterFile = filepath.Join(cf.Dir(), "master.cf")
	}
	defer c.close()
	for _, w := range cf.Warnings() {
		c.add(w.File, w.Line, Warning, "maincf-warning", w.Msg, "remove the earlier entry; Postfix uses the last one")
	}
	c.readMaster()
	c.setuid = c.setuidInstalled()
	c.openTables()
	c.domains()
	c.aliasWildcards()
	c.base()
	c.ids()
	c.mailboxPaths()
	c.quotas()
	c.tableFiles()
	c.masterEntries()
	c.relativeTables()
	c.setuidOwners()
	c.unknownParameters()
	c.mailboxWrites()
	c.logDestination()
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].File != c.out[j].File {
			return c.out[i].File < c.out[j].File
		}
		return c.out[i].Line < c.out[j].Line
	})
	if c.out == nil {
		c.out = []Finding{}
	}
	return c.out
}

type checker struct {
	ctx        context.Context
	cf         *maincf.Config
	mainFile   string
	masterFile string
	out        []Finding

	masterFound  bool
	masterBroken bool
	services     []Service
	// pipeUser is the account of the master.cf entry that runs vdeliver, whose rights
	// decide what vdeliver can read; nil without master.cf, and nil when that vdeliver
	// is installed set-uid root, which opens every table as root.
	pipeUser *account
	// setuid: vdeliver is installed setuid-root and writes as each recipient's own ids.
	setuid bool
	// lmtp is the spawn(8) service running vdeliver lmtp that virtual_transport reaches,
	// nil when mail reaches vdeliver through pipe(8) or not at all.
	lmtp *Service
	// proxymapReachable: pipeUser can connect to proxymap(8), so proxy: tables are read
	// by Postfix rather than with pipeUser's rights.
	proxymapReachable bool

	tables   map[string]*table // by spec
	proxymap *lookup.Proxymap
	vals     map[string]string // expanded parameters, by name ("" when expansion failed)

	mailboxList   []listed // mailboxDomains, once read
	mailboxListed bool
	order         []*table

	lists           map[string]*deliver.DomainList // inList's, by parameter
	syslogSocket    string                         // Options.SyslogSocket
	deliveryOptions []string                       // Options.DeliveryOptions
}

// table is one configured lookup table: how main.cf names it and what it holds.
type table struct {
	spec, typ, name string
	param           string // the first parameter naming it
	t               lookup.Table
	openErr         error
	warnings        []lookup.Warning
	entries         []entry // text sources (hash, btree, texthash) only
	source          string  // the file vdeliver (or postmap) reads; "" for static:, inline:...
	proxied         bool    // named proxy:TYPE:NAME
	compiled        string  // the file Postfix's daemons read, when it differs
}

type account struct {
	name     string
	uid, gid uint32
}

func (c *checker) close() {
	for _, d := range c.lists {
		if d != nil {
			d.Close()
		}
	}
	for _, t := range c.order {
		if t.t != nil {
			t.t.Close()
		}
	}
	c.proxymap.Close()
}

// overrideFile is the File of a finding about a -o override; Line is its position.
const overrideFile = "-o"

func (c *checker) add(file string, line int, sev Severity, code, msg, fix string) {
	c.out = append(c.out, Finding{File: file, Line: line, Severity: sev, Code: code, Message: msg, Fix: fix})
}

// addErr adds a finding about err at file and line; an error that carries its own
// position (maincf's, about the text it was written in) is put there instead, and named
// once.
func (c *checker) addErr(file string, line int, sev Severity, code string, err error, fix string) {
	var pe *maincf.Error
	if errors.As(err, &pe) && pe.File != "" {
		c.add(pe.File, pe.Line, sev, code, pe.Msg, fix)
		return
	}
	c.add(file, line, sev, code, err.Error(), fix)
}

// where is the file and line that set a parameter; main.cf line 0 for a default.
func (c *checker) where(param string) (string, int) {
	f, l := c.cf.Line(param)
	if f == "" {
		return c.mainFile, 0
	}
	return f, l
}

// get is an expanded parameter; an expansion error is a finding, made once, and gives "".
func (c *checker) get(param string) string {
	if v, ok := c.vals[param]; ok {
		return v
	}
	v, err := c.cf.Get(param)
	if err != nil {
		f, l := c.where(param)
		c.addErr(f, l, Error, "parameter-error", err, "correct the $name expressions in "+param)
		v = ""
	}
	c.vals[param] = v
	return v
}

// nonBDB is Postfix 3.11's non-Berkeley-DB migration as main.cf sets it.
func (c *checker) nonBDB() lookup.NonBDB {
	return lookup.NonBDB{
		Level:         c.get("non_bdb_migration_level"),
		DatabaseType:  c.get("default_database_type"),
		CacheDBType:   c.get("default_cache_db_type"),
		CustomMapping: c.get("non_bdb_custom_mapping"),
	}
}

// tableParams are the parameters whose every element is a table.
var tableParams = []string{"virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps", "virtual_alias_maps", "vdeliver_quota_maps"}

// domainParams are domain lists whose elements may be tables.
var domainParams = []string{"virtual_mailbox_domains", "virtual_alias_domains", "mydestination"}

// openTables opens every table the configuration names, once, collecting what lookup
// warns about while reading it.
func (c *checker) openTables() {
	nonBDB := c.nonBDB()
	// proxy: tables as a delivery opens them: through this Postfix's proxymap(8) when
	// check can reach it (as root), which shows a table it would refuse to serve.
	c.proxymap = lookup.NewProxymap(filepath.Join(c.get("queue_directory"), "private", c.get("proxymap_service_name")))
	use := func(param, spec string) {
		if _, ok := c.tables[spec]; ok {
			return
		}
		t := &table{spec: spec, param: param}
		c.tables[spec] = t
		c.order = append(c.order, t)
		var err error
		t.typ, t.name, err = lookup.ParseSpec(spec)
		if err != nil {
			t.openErr = err
			return
		}
		inner := spec
		for t.typ == "proxy" {
			inner = t.name
			if t.typ, t.name, err = lookup.ParseSpec(inner); err != nil {
				t.openErr = err
				return
			}
		}
		switch t.typ {
		case "hash", "btree":
			// vdeliver reads the .db, as Postfix does; the text is what postmap compiles.
			t.source, t.compiled = t.name+".db", t.name+".db"
		case "texthash", "regexp", "pcre":
			t.source = t.name
		case "cdb":
			t.source = t.name + ".cdb"
		case "lmdb", "dbm", "sdbm":
			t.source = t.name + "." + t.typ
		case "cidr":
			t.source = t.name
		case "sqlite", "mysql", "pgsql", "ldap":
			// The configuration file, which postmap(1) reads with the delivering
			// user's rights; a name that is not a path is a main.cf prefix.
			if strings.HasPrefix(t.name, "/") || strings.HasPrefix(t.name, ".") {
				t.source = t.name
			}
		}
		t.proxied = inner != spec
		paranoid := param == "virtual_mailbox_maps" || param == "virtual_uid_maps" || param == "virtual_gid_maps" || param == "vdeliver_quota_maps"
		// Each file is read once: the entries of a text source as written come with
		// the read that builds or checks the table.
		warn := func(w lookup.Warning) { t.warnings = append(t.warnings, w) }
		addEntry := func(e lookup.Entry) { t.entries = append(t.entries, entry{key: e.Key, value: e.Value, line: e.Line}) }
		opt := lookup.Options{Paranoid: paranoid, ConfigDir: c.cf.Dir(), NonBDB: nonBDB, Proxymap: c.proxymap, OnWarning: warn}
		if t.typ == "texthash" && !t.proxied {
			opt.Entries = addEntry
		}
		t.t, t.openErr = lookup.Open(spec, opt)
		switch {
		case t.typ == "texthash" && !t.proxied:
			if t.openErr == nil && t.entries == nil {
				t.entries = []entry{} // read, and empty
			}
		case t.typ == "texthash":
			// proxymap(8) reads the table in its own process, if it is there.
			t.entries, _ = readEntries(t.name)
		case t.typ == "hash" || t.typ == "btree":
			// The text and what postmap says when it compiles it (skipped lines,
			// duplicates): lookup reads only the .db, which keeps none of it.
			if _, err := lookup.ReadSource(t.name, lookup.SourceOptions{OnWarning: warn, Entries: addEntry}); err == nil && t.entries == nil {
				t.entries = []entry{}
			}
		}
		if t.openErr == nil && lookup.ViaPostmap(t.t) {
			// A delivery opens such a table without asking it anything; one query here
			// shows a type postmap does not know, or a database it cannot reach, before
			// the first delivery defers on it.
			if _, _, err := t.t.Lookup(c.ctx, "postmaster@vdeliver-check.invalid"); err != nil {
				t.openErr = err
			}
		}
	}
	for _, p := range tableParams {
		for _, spec := range lookup.SplitList(c.get(p)) {
			use(p, spec)
		}
	}
	for _, p := range domainParams {
		for _, item := range lookup.SplitList(c.get(p)) {
			item = strings.TrimLeft(item, "!")
			if isTableItem(item) {
				use(p, item)
			}
		}
	}
}

func isTableItem(item string) bool {
	return strings.Contains(item, ":") && !strings.HasPrefix(item, "[") && !strings.HasPrefix(item, "/")
}

func (c *checker) specs(param string) []*table {
	var out []*table
	for _, spec := range lookup.SplitList(c.get(param)) {
		if t := c.tables[spec]; t != nil {
			out = append(out, t)
		}
	}
	return out
}

// listed is one domain of virtual_mailbox_domains and where it is written.
type listed struct {
	domain string
	file   string
	line   int
}

// mailboxDomains enumerates the virtual mailbox domains that can be enumerated: literal
// names, /file words and the keys of text-source tables. With virtual_mailbox_domains
// unset they are the domains of virtual_mailbox_maps' keys.
func (c *checker) mailboxDomains() []listed {
	if !c.mailboxListed {
		c.mailboxList, c.mailboxListed = c.readMailboxDomains(), true
	}
	return c.mailboxList
}

// readMailboxDomains does mailboxDomains' work, once: a /file item that cannot be read
// is one finding.
func (c *checker) readMailboxDomains() []listed {
	var out []listed
	if !c.cf.IsSet("virtual_mailbox_domains") {
		seen := map[string]bool{}
		for _, t := range c.specs("virtual_mailbox_maps") {
			for _, e := range t.entries {
				if _, d, ok := strings.Cut(strings.ToLower(e.key), "@"); ok && d != "" && !seen[d] {
					seen[d] = true
					out = append(out, listed{d, t.name, e.line})
				}
			}
		}
		return out
	}
	file, line := c.where("virtual_mailbox_domains")
	for _, item := range lookup.SplitList(c.get("virtual_mailbox_domains")) {
		switch {
		case strings.HasPrefix(item, "!"):
		case strings.HasPrefix(item, "/"):
			b, err := rawfile.ReadFile(item, maxListFile)
			if err != nil {
				c.add(file, line, Error, "unreadable", fmt.Sprintf("virtual_mailbox_domains names %s: %v", item, err),
					"create the file or remove it from virtual_mailbox_domains")
				continue
			}
			for i, l := range strings.Split(string(b), "\n") {
				for _, w := range strings.Fields(l) {
					if strings.HasPrefix(w, "#") {
						break
					}
					out = append(out, listed{strings.ToLower(w), item, i + 1})
				}
			}
		case isTableItem(item):
			if t := c.tables[item]; t != nil {
				for _, e := range t.entries {
					out = append(out, listed{strings.ToLower(e.key), t.name, e.line})
				}
			}
		default:
			out = append(out, listed{strings.ToLower(item), file, line})
		}
	}
	return out
}

// inList is the delivery's domain list match (deliver.DomainList: exact names, ".parent"
// patterns, /file words, type:table keys and "!" negation; first match wins), the list
// opened once per parameter. A list or table error counts as no match: its own finding
// reports it.
func (c *checker) inList(param, domain string) bool {
	if c.lists == nil {
		c.lists = map[string]*deliver.DomainList{}
	}
	d, ok := c.lists[param]
	if !ok {
		// The tables openTables opened already, not read a second time.
		opened := func(spec string) lookup.Table {
			if t := c.tables[spec]; t != nil && t.t != nil {
				return t.t
			}
			return nil
		}
		d, _ = deliver.OpenDomainList(c.get(param), c.cf.Dir(), lookup.Options{ConfigDir: c.cf.Dir(), Opened: opened})
		c.lists[param] = d
	}
	hit, err := d.Match(c.ctx, strings.ToLower(domain))
	return err == nil && hit
}

// domains: the VIRTUAL_README "NEVER" rules (docs/behaviour.md §10): a domain has exactly
// one address class, and trivial-rewrite takes local, then alias, then mailbox.
func (c *checker) domains() {
	if !c.cf.IsSet("virtual_mailbox_domains") {
		file, line := c.where("virtual_mailbox_maps")
		c.add(file, line, Error, "domains-unset",
			"virtual_mailbox_domains is not set: it defaults to $virtual_mailbox_maps, so Postfix looks the bare domain name up in the mailbox table",
			"list the domains: virtual_mailbox_domains = example.com, example.net")
	}
	destFile, destLine := c.where("mydestination")
	aliasFile, aliasLine := c.where("virtual_alias_domains")
	for _, d := range c.mailboxDomains() {
		if c.inList("mydestination", d.domain) {
			c.add(d.file, d.line, Error, "domain-in-mydestination",
				fmt.Sprintf("virtual mailbox domain %s is also in mydestination (%s:%d): Postfix delivers it with local(8) and never runs vdeliver", d.domain, destFile, destLine),
				"remove "+d.domain+" from mydestination (a domain is either local or a virtual mailbox domain, never both)")
		}
		if c.inList("virtual_alias_domains", d.domain) {
			c.add(d.file, d.line, Error, "domain-in-alias-domains",
				fmt.Sprintf("virtual mailbox domain %s is also a virtual alias domain (%s:%d): every address without an alias bounces \"User unknown in virtual alias table\"", d.domain, aliasFile, aliasLine),
				"remove "+d.domain+" from virtual_alias_domains (aliases for a mailbox domain go in virtual_alias_maps without listing the domain there)")
		}
	}
}

// aliasWildcards: an "@domain" alias for a mailbox domain catches every address before
// virtual_mailbox_maps is consulted (docs/behaviour.md §10).
func (c *checker) aliasWildcards() {
	domains := map[string]bool{}
	for _, d := range c.mailboxDomains() {
		domains[d.domain] = true
	}
	file, line := c.where("virtual_alias_maps")
	for _, t := range c.specs("virtual_alias_maps") {
		if t.entries != nil {
			for _, e := range t.entries {
				if d, ok := strings.CutPrefix(strings.ToLower(e.key), "@"); ok && domains[d] {
					c.add(t.name, e.line, Error, "alias-wildcard", wildcardMsg(d), wildcardFix(d))
				}
			}
			continue
		}
		if t.t == nil {
			continue
		}
		for _, d := range slices.Sorted(maps.Keys(domains)) {
			if _, hit, _ := t.t.Lookup(c.ctx, "@"+d); hit {
				c.add(file, line, Error, "alias-wildcard", wildcardMsg(d)+" (in "+t.spec+")", wildcardFix(d))
			}
		}
	}
}

func wildcardMsg(d string) string {
	return fmt.Sprintf("wildcard alias @%s for a virtual mailbox domain: alias expansion runs first, so it takes the mail of every mailbox of %s", d, d)
}

func wildcardFix(d string) string {
	return fmt.Sprintf("remove the @%s alias; put a catch-all mailbox in virtual_mailbox_maps (@%s %s/catchall/) instead", d, d, d)
}

// base: virtual_mailbox_base must be an absolute directory that no other user can change.
func (c *checker) base() {
	file, line := c.where("virtual_mailbox_base")
	base := c.get("virtual_mailbox_base")
	switch {
	case base == "":
		c.add(file, line, Error, "base-unset", "virtual_mailbox_base is not set: every delivery defers",
			"set virtual_mailbox_base = /var/mail/vhosts (an absolute directory owned by root)")
		return
	case !strings.HasPrefix(base, "/"):
		c.add(file, line, Error, "base-relative", fmt.Sprintf("virtual_mailbox_base = %s is not an absolute path: every delivery defers", base),
			"give the full path, starting with /")
		return
	}
	fi, err := os.Stat(base)
	if err != nil {
		c.add(file, line, Error, "base-missing", fmt.Sprintf("virtual_mailbox_base %s: %v", base, errText(err)),
			"create it: install -d -m 0755 "+base)
		return
	}
	if !fi.IsDir() {
		c.add(file, line, Error, "base-missing", fmt.Sprintf("virtual_mailbox_base %s is not a directory", base),
			"point virtual_mailbox_base at a directory")
		return
	}
	// A directory others can write lets them replace the mailboxes beneath it (a symlink
	// or a renamed tree), whatever the base's own mode.
	for d := filepath.Clean(base); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o002 != 0 && (d == filepath.Clean(base) || fi.Mode()&fs.ModeSticky == 0) {
			c.add(file, line, Error, "base-writable", fmt.Sprintf("%s (virtual_mailbox_base or a directory above it) is writable by others (mode %#o)", d, fi.Mode().Perm()),
				"chmod o-w "+d)
		}
		if d == "/" {
			break
		}
	}
}

// ids: uid 0 or one below virtual_minimum_uid can never be written as
// (docs/behaviour.md §3), and a pipe(8) command can only become its own user.
func (c *checker) ids() {
	file, line := c.where("virtual_minimum_uid")
	minUID, err := c.cf.Int("virtual_minimum_uid")
	if err != nil {
		c.addErr(file, line, Error, "parameter-error", err, "give a number: virtual_minimum_uid = 100")
		minUID = 100
	} else if minUID < 100 {
		c.add(file, line, Warning, "minimum-uid-low", fmt.Sprintf("virtual_minimum_uid = %d lets mailboxes be written as system accounts (uids below 100)", minUID),
			"virtual_minimum_uid = 100, or higher: the lowest uid a mailbox belongs to")
	}
	for _, p := range []string{"virtual_uid_maps", "virtual_gid_maps"} {
		if !c.cf.IsSet(p) {
			f, l := c.where(p)
			c.add(f, l, Error, "ids-unset", p+" is not set: every delivery defers",
				p+" = static:5000 (the uid/gid of the account master.cf's user= names)")
			continue
		}
		isUID := p == "virtual_uid_maps"
		c.values(p, func(v, key, f string, l int) {
			c.checkID(isUID, v, key, f, l, uint64(max(minUID, 0)))
		})
	}
}

// values calls fn with every value a table list can answer that can be known: static:
// values, text-source entries, and for other tables the answers to the keys of
// virtual_mailbox_maps' text sources.
func (c *checker) values(param string, fn func(value, key, file string, line int)) {
	file, line := c.where(param)
	for _, t := range c.specs(param) {
		switch {
		case t.typ == "static":
			// A value lookup refuses is the table-error finding.
			if v, err := lookup.StaticValue(t.name); err == nil {
				fn(v, "", file, line)
			}
		case t.entries != nil:
			for _, e := range t.entries {
				fn(e.value, e.key, t.name, e.line)
			}
		case t.t != nil:
			seen := map[string]bool{}
			for _, m := range c.specs("virtual_mailbox_maps") {
				for _, e := range m.entries {
					k := strings.ToLower(e.key)
					if v, hit, err := t.t.Lookup(c.ctx, k); err == nil && hit && !seen[v] {
						seen[v] = true
						fn(v, k, file, line)
					}
				}
			}
		}
	}
}

func (c *checker) checkID(isUID bool, v, key, file string, line int, minUID uint64) {
	what, param := "gid", "virtual_gid_maps"
	if isUID {
		what, param = "uid", "virtual_uid_maps"
	}
	of := ""
	if key != "" {
		of = " for " + key
	}
	n, err := deliver.ParseID(v)
	switch {
	case err != nil:
		c.add(file, line, Error, what+"-invalid", fmt.Sprintf("%s %q%s is not a valid %s (%v): deliveries defer", what, v, of, what, err),
			fmt.Sprintf("give a decimal %s from 1 to 4294967294 in %s", what, param))
	case n == 0:
		c.add(file, line, Error, what+"-root", fmt.Sprintf("%s 0 (root)%s: vdeliver never writes as root, deliveries defer", what, of),
			"map to the unprivileged mail account's "+what+", e.g. static:5000")
	case isUID && n < minUID:
		c.add(file, line, Error, "uid-below-minimum", fmt.Sprintf("uid %d%s is below virtual_minimum_uid %d: deliveries defer", n, of, minUID),
			"use a uid of at least virtual_minimum_uid")
	case c.pipeUser != nil && !c.setuid && ((isUID && uint32(n) != c.pipeUser.uid) || (!isUID && uint32(n) != c.pipeUser.gid)):
		want := c.pipeUser.gid
		if isUID {
			want = c.pipeUser.uid
		}
		runs := "pipe(8) runs vdeliver"
		if c.lmtp != nil {
			runs = "spawn(8) runs vdeliver lmtp"
		}
		c.add(file, line, Error, what+"-not-pipe-user", fmt.Sprintf("%s %d%s differs from %s's %s %d, which %s as: deliveries defer", what, n, of, c.pipeUser.name, what, want, runs),
			fmt.Sprintf("%s = static:%d, or run vdeliver as the owner of the mailboxes", param, want))
	}
}

// mailboxPaths: a ".." element would leave the base; vdeliver defers such a recipient.
func (c *checker) mailboxPaths() {
	c.values("virtual_mailbox_maps", func(v, key, file string, line int) {
		err := deliver.CheckMailbox(v)
		if err == nil {
			return
		}
		of := ""
		if key != "" {
			of = " of " + key
		}
		if slices.Contains(strings.Split(v, "/"), "..") {
			c.add(file, line, Error, "mailbox-dotdot", fmt.Sprintf("mailbox path %q%s contains \"..\": deliveries defer", v, of),
				"give a path beneath virtual_mailbox_base without \"..\"")
			return
		}
		c.add(file, line, Error, "mailbox-invalid", fmt.Sprintf("mailbox path %q%s is refused (%v): deliveries defer", v, of, err),
			"give a path beneath virtual_mailbox_base, without control characters; end it in / for a maildir")
	})
}

// tableFiles: problems of the table files themselves.
func (c *checker) tableFiles() {
	for _, t := range c.order {
		file, line := c.where(t.param)
		if msg, fix, ok := missingModule(t, t.param); ok {
			c.add(file, line, Error, "table-module-missing", msg, fix)
			continue
		}
		switch {
		case t.openErr != nil && errors.Is(t.openErr, lookup.ErrUnsupported):
			c.add(file, line, Error, "table-unsupported", fmt.Sprintf("%s: %v", t.param, t.openErr),
				"use a table type vdeliver reads (hash, btree, texthash, cdb, lmdb through postmap, regexp, pcre, static, inline, sql)")
			continue
		case t.openErr != nil && errors.Is(t.openErr, fs.ErrNotExist) && t.compiled != "" && exists(t.name):
			c.add(file, line, Error, "table-not-built", fmt.Sprintf("%s: %s has no %s: postmap has never been run on it, so every delivery defers", t.param, t.name, t.compiled),
				fmt.Sprintf("postmap %s:%s", t.typ, t.name))
			continue
		case t.openErr != nil && (errors.Is(t.openErr, fs.ErrNotExist) || errors.Is(t.openErr, fs.ErrPermission)):
			c.add(file, line, Error, "unreadable", fmt.Sprintf("%s: %v", t.param, t.openErr),
				"create the table, or make it readable by the user vdeliver runs as")
			continue
		case t.openErr != nil && errors.Is(t.openErr, lookup.ErrNotApproved):
			inner := strings.TrimPrefix(t.spec, "proxy:")
			c.add(file, line, Error, "table-error", fmt.Sprintf("%s: %v", t.param, t.openErr),
				fmt.Sprintf("add proxy:%s to proxy_read_maps in the main.cf of the Postfix whose queue_directory is %s, then postfix reload; every delivery defers until then", inner, c.get("queue_directory")))
			continue
		case t.openErr != nil:
			c.add(file, line, Error, "table-error", fmt.Sprintf("%s: %v", t.param, t.openErr), "correct the table; every delivery defers until then")
			continue
		}
		for _, w := range t.warnings {
			if w.Kind == lookup.WarnStaleDB {
				continue // reported below, with the fix
			}
			// A warning about a line of a file is put there; any other at main.cf.
			f, l, msg := file, line, w.String()
			if w.File != "" && w.Line > 0 {
				f, l, msg = w.File, w.Line, w.Msg
			}
			switch {
			case w.Kind == lookup.WarnDuplicate && t.typ == "texthash":
				c.add(f, l, Error, "table-duplicate", fmt.Sprintf("duplicate entry: %q: a texthash table with a duplicate key fails every lookup", w.Key),
					"remove one of the two entries")
			case w.Kind == lookup.WarnDuplicate:
				c.add(f, l, Warning, "table-duplicate", fmt.Sprintf("duplicate entry: %q: the first entry wins", w.Key),
					"remove one of the two entries")
			default:
				c.add(f, l, Warning, "table-warning", msg, "correct the line as postmap(1) would require")
			}
		}
		if t.typ == "texthash" {
			for _, e := range t.entries {
				if e.key != strings.ToLower(e.key) {
					c.add(t.name, e.line, Error, "texthash-uppercase", fmt.Sprintf("key %q has upper-case letters: texthash keys are not folded and addresses are, so it never matches", e.key),
						"write the key in lower case")
				}
			}
		}
		// The source was edited after postmap ran: neither Postfix nor vdeliver sees
		// the edit until postmap runs again.
		var src, dst string
		switch t.typ {
		case "hash", "btree":
			src, dst = t.name, t.compiled
		case "cdb":
			src, dst = t.name, t.source
		}
		if src != "" {
			s, err1 := os.Stat(src)
			d, err2 := os.Stat(dst)
			if err1 == nil && err2 == nil && s.ModTime().After(d.ModTime()) {
				c.add(file, line, Warning, "table-stale",
					fmt.Sprintf("%s is newer than %s: postmap has not been run since the last edit, so neither Postfix nor vdeliver sees it", src, dst),
					fmt.Sprintf("postmap %s:%s", t.typ, t.name))
			}
		}
		if c.pipeUser != nil && t.source != "" && !(t.proxied && c.proxymapReachable) {
			if err := canRead(t.source, c.pipeUser); err != nil {
				fix := fmt.Sprintf("make %s readable by %s (chmod o+r, or chgrp %d and g+r)", t.source, c.pipeUser.name, c.pipeUser.gid)
				if t.proxied {
					// A file kept from the delivering user on purpose (a database
					// password): let proxymap(8) read it instead.
					fix = fmt.Sprintf("install vdeliver set-uid root (make install-setuid), so that it asks proxymap(8) as root, or make %s readable by %s (chgrp %d and g+r)", t.source, c.pipeUser.name, c.pipeUser.gid)
				}
				c.add(file, line, Error, "unreadable", fmt.Sprintf("%s: %v", t.spec, err), fix)
			}
		}
	}
	if c.pipeUser != nil {
		if err := canRead(c.mainFile, c.pipeUser); err != nil {
			c.add(c.mainFile, 0, Error, "unreadable", err.Error(), "make main.cf readable by "+c.pipeUser.name+" (chmod 0644)")
		}
	}
}

// exists tells whether a file exists, whatever its type.
func exists(file string) bool {
	_, err := os.Lstat(file)
	return err == nil
}

// canRead tells whether a by mode bits can read file: search permission on every
// directory above it and read permission on the file itself. pipe(8) gives the command
// only its user's own gid, so supplementary groups do not count.
func canRead(file string, a *account) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	allowed := func(p string, bit fs.FileMode) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || a.uid == 0 {
			return nil
		}
		perm := fi.Mode().Perm()
		var has bool
		switch {
		case st.Uid == a.uid:
			has = perm&(bit<<6) != 0
		case st.Gid == a.gid:
			has = perm&(bit<<3) != 0
		default:
			has = perm&bit != 0
		}
		if !has {
			what := "read"
			if bit == 1 {
				what = "search"
			}
			return fmt.Errorf("%s cannot %s %s (mode %#o, owner %d:%d)", a.name, what, p, perm, st.Uid, st.Gid)
		}
		return nil
	}
	dirs := []string{}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" {
			break
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := allowed(dirs[i], 1); err != nil {
			return err
		}
	}
	return allowed(abs, 4)
}

func (c *checker) readMaster() {
	services, found, err := readMaster(c.masterFile)
	c.masterFound = found
	if err != nil {
		c.masterFound, c.masterBroken = true, true
		f, l, msg := c.masterFile, 0, err.Error()
		var me *MasterError
		if errors.As(err, &me) {
			f, l, msg = me.File, me.Line, me.Msg
		}
		c.add(f, l, Error, "master-syntax", msg, "correct the line; master(8) will not start with it")
		return
	}
	c.services = services
	// The LMTP service virtual_transport reaches, if it does, runs as its user= even when
	// the program is installed set-uid root. Else only the first pipe(8) vdeliver
	// service counts: the one virtual_transport names.
	if s, ok := c.lmtpService(); ok {
		c.lmtp = &s
		p, _ := s.Spawn()
		c.pipeUser = serviceAccount(p)
	} else if ours := c.vdeliverServices(); len(ours) > 0 {
		p, _ := ours[0].Pipe()
		if !setuidRoot(p.Argv[0].Text) {
			c.pipeUser = serviceAccount(p)
		}
	}
	if c.pipeUser != nil {
		socket := filepath.Join(c.get("queue_directory"), "private", c.get("proxymap_service_name"))
		if fi, err := os.Stat(socket); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			c.proxymapReachable = canRead(socket, c.pipeUser) == nil
		}
	}
}

// serviceAccount is the account of a service's user= attribute, or nil when it is
// unknown or root (each its own finding: the service would not start).
func serviceAccount(p PipeAttrs) *account {
	name, _, _ := strings.Cut(p.Attrs["user"].Text, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return nil
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil
	}
	return &account{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// lmtpService is the spawn(8) service running vdeliver lmtp that virtual_transport
// reaches: an lmtp transport whose next hop is the service's socket, a unix service in
// private/ (or public/ when its private column is n), named relative to queue_directory
// or in full.
func (c *checker) lmtpService() (Service, bool) {
	transport, next, _ := strings.Cut(c.get("virtual_transport"), ":")
	if transport != "lmtp" {
		lmtpClone := false
		for _, s := range c.services {
			lmtpClone = lmtpClone || s.Name == transport && path.Base(s.Command) == "lmtp"
		}
		if !lmtpClone {
			return Service{}, false
		}
	}
	sock, ok := strings.CutPrefix(next, "unix:")
	if !ok {
		return Service{}, false
	}
	dir, name := filepath.Split(sock)
	dir = filepath.Clean(dir)
	for _, s := range c.services {
		p, ok := s.Spawn()
		if !ok || s.Name != name || s.Type != "unix" || !p.runsVdeliverLMTP() {
			continue
		}
		class := "private"
		if s.Private == "n" {
			class = "public"
		}
		if dir == class || dir == filepath.Join(c.get("queue_directory"), class) {
			return s, true
		}
	}
	return Service{}, false
}

// lmtpClientParam is a parameter of the lmtp client that virtual_transport names: its
// -o override in master.cf when it has one, else main.cf's, expanded, and where it is
// set.
func (c *checker) lmtpClientParam(param string) (value, file string, line int, err error) {
	transport, _, _ := strings.Cut(c.get("virtual_transport"), ":")
	for _, s := range c.services {
		if s.Name != transport || path.Base(s.Command) != "lmtp" {
			continue
		}
		for i := 0; i < len(s.Args); i++ {
			// "-o name=value", "-oname=value", and "-o { name = value }" (Postfix 3.0).
			var w Word
			switch {
			case s.Args[i].Text == "-o" && i+1 < len(s.Args):
				i++
				w = s.Args[i]
			case strings.HasPrefix(s.Args[i].Text, "-o"):
				w = Word{Text: s.Args[i].Text[2:], Line: s.Args[i].Line}
			default:
				continue
			}
			setting := strings.TrimSpace(w.Text)
			if strings.HasPrefix(setting, "{") && strings.HasSuffix(setting, "}") {
				setting = setting[1 : len(setting)-1]
			}
			if name, v, ok := strings.Cut(setting, "="); ok && strings.TrimSpace(name) == param {
				value, err = c.cf.Expand(strings.TrimSpace(v))
				file, line = c.masterFile, w.Line
			}
		}
	}
	if file != "" {
		return value, file, line, err
	}
	file, line = c.where(param)
	value, err = c.cf.Get(param)
	return value, file, line, err
}

// setuidRoot reports whether the program is installed set-uid root: it then opens the
// tables as root, before it switches to the recipient.
func setuidRoot(prog string) bool {
	fi, err := os.Stat(prog)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && fi.Mode()&fs.ModeSetuid != 0
}

// vdeliverServices are the pipe(8) services whose command is vdeliver, the one
// virtual_transport names first.
func (c *checker) vdeliverServices() []Service {
	var out []Service
	transport, _, _ := strings.Cut(c.get("virtual_transport"), ":")
	for _, s := range c.services {
		if p, ok := s.Pipe(); ok && p.runsVdeliver() {
			if s.Name == transport {
				out = append([]Service{s}, out...)
			} else {
				out = append(out, s)
			}
		}
	}
	return out
}

// masterEntries: the pipe(8) entry that runs vdeliver (docs/behaviour.md §8, §12).
func (c *checker) masterEntries() {
	if !c.masterFound || c.masterBroken {
		return
	}
	services := c.vdeliverServices()
	tfile, tline := c.where("virtual_transport")
	transport, _, _ := strings.Cut(c.get("virtual_transport"), ":")
	viaLMTP := c.lmtp != nil
	if viaLMTP {
		c.lmtpEntry(*c.lmtp)
	}
	if len(services) == 0 {
		if !viaLMTP {
			c.add(c.masterFile, 0, Error, "master-no-entry", "no pipe(8) service in master.cf runs vdeliver",
				`add: vdeliver unix - n n - - pipe flags=X null_sender= user=vmail argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}`)
		}
		return
	}
	if !viaLMTP && services[0].Name != transport {
		c.add(tfile, tline, Error, "transport-mismatch",
			fmt.Sprintf("virtual_transport = %s, but the master.cf service that runs vdeliver is %s (%s:%d): virtual mailbox mail does not reach vdeliver", transport, services[0].Name, c.masterFile, services[0].Line),
			"virtual_transport = "+services[0].Name)
	}
	for _, s := range services {
		c.masterEntry(s)
	}
}

func (c *checker) masterEntry(s Service) {
	mf := c.masterFile
	p, _ := s.Pipe()
	c.serviceColumns(s, "pipe(8)", p, "pipe(8) refuses to run commands as root")
	if f, ok := p.Attrs["flags"]; ok {
		var bad []string
		for _, ch := range f.Text {
			switch ch {
			case 'F':
				bad = append(bad, "F (a second From_ line)")
			case 'D':
				bad = append(bad, "D (a second Delivered-To)")
			case 'O':
				bad = append(bad, "O (a second X-Original-To)")
			case 'R':
				bad = append(bad, "R (a second Return-Path)")
			case '>':
				bad = append(bad, "> (From quoted twice in mbox)")
			}
		}
		if bad != nil {
			c.add(mf, f.Line, Error, "master-flags", fmt.Sprintf("service %s: flags=%s: vdeliver writes these itself, so the message gets them twice: %s", s.Name, f.Text, strings.Join(bad, ", ")),
				"flags=X (or with h, q, u, . only)")
		}
	}
	if ns, ok := p.Attrs["null_sender"]; !ok {
		c.add(mf, s.Line, Warning, "master-null-sender", fmt.Sprintf("service %s: no null_sender=: bounces arrive with sender MAILER-DAEMON instead of <>", s.Name),
			"add null_sender= (empty)")
	} else if ns.Text != "" {
		c.add(mf, ns.Line, Warning, "master-null-sender", fmt.Sprintf("service %s: null_sender=%s: bounces arrive with sender %s instead of <>", s.Name, ns.Text, ns.Text),
			"null_sender= (empty)")
	}
	c.argv(s, p)
	c.foreignOptions(s, p)
	c.limits(s)
}

// lmtpEntry: the spawn(8) entry that runs vdeliver lmtp (README, LMTP mode), and the
// lmtp client setting without which the mailbox differs from virtual(8)'s.
func (c *checker) lmtpEntry(s Service) {
	p, _ := s.Spawn()
	c.serviceColumns(s, "spawn(8)", p, "vdeliver lmtp refuses to run as root")
	// A chrooted lmtp client takes an absolute socket path inside its chroot, the
	// queue directory: the path given names a file that is not there.
	transport, next, _ := strings.Cut(c.get("virtual_transport"), ":")
	if sock := strings.TrimPrefix(next, "unix:"); filepath.IsAbs(sock) {
		for _, client := range c.services {
			if client.Name == transport && path.Base(client.Command) == "lmtp" && client.Chroot == "y" {
				file, line := c.where("virtual_transport")
				c.add(file, line, Error, "lmtp-chroot-path",
					fmt.Sprintf("virtual_transport = %s: the lmtp client (%s:%d) runs chrooted in queue_directory, where %s names %s: every delivery defers", c.get("virtual_transport"), c.masterFile, client.Line, sock, filepath.Join(c.get("queue_directory"), sock)),
					fmt.Sprintf("virtual_transport = %s:unix:%s", transport, filepath.Join(filepath.Base(filepath.Dir(sock)), s.Name)))
			}
		}
	}
	v, file, line, err := c.lmtpClientParam("lmtp_line_length_limit")
	if n, perr := strconv.Atoi(strings.TrimSpace(v)); err == nil && perr == nil && n != 0 {
		c.add(file, line, Warning, "lmtp-line-length",
			fmt.Sprintf("lmtp_line_length_limit is %d, not 0: Postfix's lmtp client breaks longer lines (CR LF SPACE), so the mailbox differs from what virtual(8) writes", n),
			"lmtp_line_length_limit = 0")
	}
}

// serviceColumns: what a service that runs vdeliver needs from its columns and user=,
// for pipe(8) and spawn(8) alike (both change to user= and refuse root).
func (c *checker) serviceColumns(s Service, daemon string, p PipeAttrs, rootText string) {
	mf := c.masterFile
	if s.Unpriv != "n" {
		c.add(mf, s.Line, Error, "master-unpriv", fmt.Sprintf("service %s: unpriv column is %q: %s needs root to change to user=, it cannot start", s.Name, s.Unpriv, daemon),
			"write n in the fourth column")
	}
	if s.Chroot != "n" && s.Chroot != "-" {
		c.add(mf, s.Line, Error, "master-chroot", fmt.Sprintf("service %s: chroot column is %q: vdeliver cannot reach main.cf, the tables or the mailboxes from inside the chroot", s.Name, s.Chroot),
			"write n in the fifth column")
	}
	if u, ok := p.Attrs["user"]; !ok {
		c.add(mf, s.Line, Error, "master-user-missing", fmt.Sprintf("service %s: no user= attribute: %s refuses to run", s.Name, daemon),
			"add user=vmail (the account that owns the mailboxes)")
	} else {
		name, _, _ := strings.Cut(u.Text, ":")
		lu, err := user.Lookup(name)
		switch {
		case name == "root" || err == nil && lu.Uid == "0":
			c.add(mf, u.Line, Error, "master-user-root", fmt.Sprintf("service %s: user=%s: %s", s.Name, u.Text, rootText),
				"user=vmail (the account that owns the mailboxes)")
		case err != nil:
			c.add(mf, u.Line, Error, "master-user-unknown", fmt.Sprintf("service %s: user=%s: no such account (%s): %s refuses to run", s.Name, u.Text, accountError(name, err), daemon),
				"create the account or name an existing one")
		}
	}
}

// argv: the recipient must be there, after "--", so an address starting with "-" is
// never taken for an option.
func (c *checker) argv(s Service, p PipeAttrs) {
	dashdash := false
	for _, w := range p.Argv[1:] {
		switch {
		case w.Text == "--":
			dashdash = true
		case strings.Contains(w.Text, "recipient}") && !strings.Contains(w.Text, "original_recipient") || w.Text == "$recipient":
			if !dashdash {
				c.add(c.masterFile, w.Line, Warning, "master-argv", fmt.Sprintf("service %s: %s is not preceded by --: a recipient starting with - would be taken for an option", s.Name, w.Text),
					"put -- before ${recipient}")
			}
			return
		}
	}
	c.add(c.masterFile, p.Argv[0].Line, Error, "master-argv", fmt.Sprintf("service %s: argv= does not pass ${recipient}: vdeliver does not know whom to deliver to", s.Name),
		"end argv= with -- ${recipient}")
}

// limits: one recipient per run (pipe(8) applies one exit status to all), and a time
// limit the lock waits fit in (running out of time bounces).
func (c *checker) limits(s Service) {
	param := s.Name + "_destination_recipient_limit"
	file, line := c.where(param)
	raw := "$default_destination_recipient_limit"
	if c.cf.IsSet(param) {
		raw, _ = c.cf.Raw(param)
	} else {
		file, line = c.masterFile, s.Line
	}
	v, err := c.cf.Expand(raw)
	if n, perr := strconv.Atoi(strings.TrimSpace(v)); err != nil || perr != nil || n != 1 {
		v = quotedValue(v)
		c.add(file, line, Error, "recipient-limit", fmt.Sprintf("%s is %s, not 1: pipe(8) gives one exit status to every recipient of a run, so one recipient's failure decides for all", param, v),
			param+" = 1")
	}
	tparam := s.Name + "_time_limit"
	if !c.cf.IsSet(tparam) {
		tparam = "command_time_limit"
	}
	tfile, tline := c.where(tparam)
	if tline == 0 {
		tfile, tline = c.masterFile, s.Line
	}
	limit, err := c.cf.Duration(tparam)
	if err != nil {
		c.addErr(tfile, tline, Error, "parameter-error", err, "give a time such as 1000s")
		return
	}
	attempts, err1 := c.cf.Int("deliver_lock_attempts")
	delay, err2 := c.cf.Duration("deliver_lock_delay")
	if err1 != nil || err2 != nil {
		return
	}
	kinds := 0
	for _, l := range lookup.SplitList(c.get("virtual_mailbox_lock")) {
		if l == "dotlock" || l == "flock" || l == "fcntl" {
			kinds++
		}
	}
	// Each lock kind waits up to attempts-1 times 1.25 x the delay (docs/behaviour.md §4.2).
	budget := time.Duration(kinds) * time.Duration(max(attempts-1, 0)) * delay * 5 / 4
	if budget > 0 && limit <= budget {
		c.add(tfile, tline, Error, "time-limit",
			fmt.Sprintf("%s = %s is not longer than the lock waits (%d lock kinds x %d waits x up to 1.25 x %s = %s): pipe(8) kills vdeliver while it waits, and a time-out bounces the mail", tparam, limit, kinds, max(attempts-1, 0), delay, budget),
			fmt.Sprintf("%s_time_limit = %ds, or fewer deliver_lock_attempts", s.Name, int((2*budget+time.Second-1)/time.Second)+1))
	}
}

// errText drops the path an *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// LoadFailure is the finding for a main.cf that cannot be loaded (missing, unreadable, a
// line that is not "name = value"), at the line the error names.
func LoadFailure(mainFile string, err error) Finding {
	f := Finding{File: mainFile, Severity: Error, Code: "unreadable", Message: err.Error(),
		Fix: "create or correct main.cf; every delivery defers until then"}
	var oe *maincf.OverrideError
	if errors.As(err, &oe) {
		f.File, f.Code = overrideFile, "override-syntax"
		f.Fix = "write the option as -o name=value"
		return f
	}
	var pe *maincf.Error
	if errors.As(err, &pe) && pe.File != "" {
		f.File, f.Line, f.Message, f.Code = pe.File, pe.Line, pe.Msg, "maincf-syntax"
		f.Fix = "write the line as name = value; Postfix refuses to start with it"
	}
	return f
}

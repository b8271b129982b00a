package deliver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"vdeliver/internal/ifaddrs"
	"vdeliver/internal/rawfile"
	"vdeliver/lookup"
	"vdeliver/maincf"
)

// Settings is main.cf read into typed values and opened tables: everything one delivery
// run needs from the configuration, loaded once per process.
type Settings struct {
	Base          string // virtual_mailbox_base, checked absolute at delivery time
	MailboxMaps   *lookup.Maps
	UIDMaps       *lookup.Maps
	GIDMaps       *lookup.Maps
	Domains       *DomainList // virtual_mailbox_domains
	MyDestination *DomainList
	MyOrigin      string
	Interfaces    []string // inet_interfaces and proxy_interfaces, for [ip] literals
	MinUID        uint64
	Limit         int64
	Locks         []string
	LockAttempts  int
	LockDelay     time.Duration
	StaleLock     time.Duration
	StrictOwner   bool
	Delimiters    string
	OrigRcpt      bool // enable_original_recipient
	OwnerRequest  bool // owner_request_special
	DoubleBounce  string
	SoftBounce    bool
	TimeLimit     time.Duration // command_time_limit: our own deadline stays well below it
	Warn          func(string)
	// ConfigDir is the directory main.cf was read from. Tables that only Postfix's
	// postmap(1) can read are asked with "postmap -c ConfigDir", so that postmap reads the
	// same main.cf as the delivery, never /etc/postfix's by default.
	ConfigDir string
	// NonBDB is Postfix 3.11's non-Berkeley-DB migration: which files hash: and btree:
	// tables are read from.
	NonBDB lookup.NonBDB

	// Virtual alias expansion (alias.go). The tables are opened on first use, so a
	// delivery with expansion off never depends on them.
	AliasMapsSpec       string        // virtual_alias_maps
	AliasRecursionLimit int           // virtual_alias_recursion_limit
	AliasExpansionLimit int           // virtual_alias_expansion_limit
	AliasLengthLimit    int           // virtual_alias_address_length_limit
	PropagateExtension  bool          // propagate_unmatched_extensions contains "virtual"
	QueueLifetime       time.Duration // maximal_queue_lifetime: the journal's expiry
	aliasMaps           *lookup.Maps
	aliasErr            error
	proxymap            *lookup.Proxymap // shared by every proxy: table

	// Additions beyond virtual(8), each off by default (docs/behaviour.md).
	SizeInNames      bool // vdeliver_maildir_size_in_names: ",S=" and ",W=" in Maildir names
	ExtensionFolders bool // vdeliver_extension_folders: user+ext goes to the folder .ext/
	FolderAutocreate bool // vdeliver_folder_autocreate: create that folder when missing
	// QuotaMaps is vdeliver_quota_maps (quota.go): nil when the parameter is empty, so that
	// a delivery without it asks no table and explain shows no lookup.
	QuotaMaps      *lookup.Maps
	OverquotaDefer bool // vdeliver_overquota_status = defer: over quota is 4.2.2, not 5.2.2
}

// ProxymapSocket is where Postfix's table clients find proxymap(8):
// $queue_directory/private/$proxymap_service_name.
func ProxymapSocket(queueDir, service string) string {
	return filepath.Join(queueDir, "private", service)
}

// Close releases the tables.
func (s *Settings) Close() error {
	var errs []error
	for _, m := range []*lookup.Maps{s.MailboxMaps, s.UIDMaps, s.GIDMaps, s.aliasMaps, s.QuotaMaps} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	for _, d := range []*DomainList{s.Domains, s.MyDestination} {
		if d != nil {
			errs = append(errs, d.Close())
		}
	}
	errs = append(errs, s.proxymap.Close())
	return errors.Join(errs...)
}

// Load turns a main.cf into Settings. Every failure is a configuration error (4.3.5): the
// mail stays queued while the administrator fixes main.cf or a table.
func Load(cf *maincf.Config, warn func(string)) (*Settings, *Status) {
	if warn == nil {
		warn = func(string) {}
	}
	s := &Settings{Warn: warn, ConfigDir: cf.Dir()}
	var err error
	get := func(name string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = cf.Get(name)
		if err != nil {
			err = fmt.Errorf("parameter %s: %w", name, err)
		}
		return v
	}
	integer := func(name string) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, err = cf.Int(name)
		return v
	}
	boolean := func(name string) bool {
		if err != nil {
			return false
		}
		var v bool
		v, err = cf.Bool(name)
		return v
	}
	duration := func(name string) time.Duration {
		if err != nil {
			return 0
		}
		var v time.Duration
		v, err = cf.Duration(name)
		return v
	}
	s.Base = get("virtual_mailbox_base")
	minUID := integer("virtual_minimum_uid")
	s.Limit = integer("virtual_mailbox_limit")
	s.Locks = lookup.SplitList(get("virtual_mailbox_lock"))
	s.LockAttempts = int(integer("deliver_lock_attempts"))
	s.LockDelay = duration("deliver_lock_delay")
	s.StaleLock = duration("stale_lock_time")
	s.StrictOwner = boolean("strict_mailbox_ownership")
	s.Delimiters = get("recipient_delimiter")
	s.OrigRcpt = boolean("enable_original_recipient")
	s.OwnerRequest = boolean("owner_request_special")
	s.DoubleBounce = get("double_bounce_sender")
	s.SoftBounce = boolean("soft_bounce")
	// pipe(8) kills the command after <service>_time_limit, falling back to
	// command_time_limit; the master.cf entry we document names the service "vdeliver".
	if cf.IsSet("vdeliver_time_limit") {
		s.TimeLimit = duration("vdeliver_time_limit")
	} else {
		s.TimeLimit = duration("command_time_limit")
	}
	s.MyOrigin = get("myorigin")
	s.Interfaces = append(lookup.SplitList(get("inet_interfaces")), lookup.SplitList(get("proxy_interfaces"))...)
	s.AliasMapsSpec = get("virtual_alias_maps")
	s.AliasRecursionLimit = int(integer("virtual_alias_recursion_limit"))
	s.AliasExpansionLimit = int(integer("virtual_alias_expansion_limit"))
	s.AliasLengthLimit = int(integer("virtual_alias_address_length_limit"))
	s.PropagateExtension = propagatesVirtual(get("propagate_unmatched_extensions"))
	s.QueueLifetime = duration("maximal_queue_lifetime")
	s.SizeInNames = boolean("vdeliver_maildir_size_in_names")
	s.ExtensionFolders = boolean("vdeliver_extension_folders")
	s.FolderAutocreate = boolean("vdeliver_folder_autocreate")
	overquota := get("vdeliver_overquota_status")
	quotaMaps := get("vdeliver_quota_maps")
	s.NonBDB = lookup.NonBDB{
		Level:         get("non_bdb_migration_level"),
		DatabaseType:  get("default_database_type"),
		CacheDBType:   get("default_cache_db_type"),
		CustomMapping: get("non_bdb_custom_mapping"),
	}
	mailboxMaps := get("virtual_mailbox_maps")
	uidMaps := get("virtual_uid_maps")
	gidMaps := get("virtual_gid_maps")
	domains := get("virtual_mailbox_domains")
	mydest := get("mydestination")
	queueDir := get("queue_directory")
	proxymapService := get("proxymap_service_name")
	if err != nil {
		return nil, configError(err)
	}
	// virtual_minimum_uid has a lower bound of 1 in Postfix, so uid 0 can never pass.
	if minUID < 1 {
		return nil, configError(fmt.Errorf("virtual_minimum_uid = %d: must be at least 1", minUID))
	}
	s.MinUID = uint64(minUID)
	if s.Limit < 0 {
		return nil, configError(fmt.Errorf("virtual_mailbox_limit = %d: must not be negative", s.Limit))
	}
	// virtual(8) refuses to start with a mailbox limit below the message size limit: every
	// message the MTA accepts must fit in a mailbox.
	if s.Limit > 0 {
		msl, err := cf.Int("message_size_limit")
		if err != nil {
			return nil, configError(err)
		}
		if msl <= 0 || s.Limit < msl {
			return nil, configError(fmt.Errorf("virtual_mailbox_limit (%d) must be at least message_size_limit (%d), and message_size_limit > 0", s.Limit, msl))
		}
	}
	s.OverquotaDefer, err = ParseOverquotaStatus(overquota)
	if err != nil {
		return nil, configError(err)
	}
	for _, l := range s.Locks {
		if l != "flock" && l != "fcntl" && l != "dotlock" {
			return nil, configError(fmt.Errorf("virtual_mailbox_lock: unknown lock method %q", l))
		}
	}
	// Table results are paths and ids: virtual(8) opens them paranoid, so a regexp rule
	// cannot paste parts of an attacker-chosen address into a path. proxy: tables go
	// through this Postfix's proxymap(8); its socket is connected when the first of them
	// is opened, here, before any identity switch.
	s.proxymap = lookup.NewProxymap(ProxymapSocket(queueDir, proxymapService))
	opt := lookup.Options{Paranoid: true, Warn: warn, ConfigDir: s.ConfigDir, NonBDB: s.NonBDB, Proxymap: s.proxymap}
	open := func(name, list string) *lookup.Maps {
		if err != nil {
			return nil
		}
		var m *lookup.Maps
		m, err = lookup.OpenMaps(list, opt)
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return m
	}
	s.MailboxMaps = open("virtual_mailbox_maps", mailboxMaps)
	s.UIDMaps = open("virtual_uid_maps", uidMaps)
	s.GIDMaps = open("virtual_gid_maps", gidMaps)
	// Opened here with the others, before any identity switch: a set-uid root vdeliver
	// reads every table as root, as virtual(8) does.
	if len(lookup.SplitList(quotaMaps)) > 0 {
		s.QuotaMaps = open("vdeliver_quota_maps", quotaMaps)
	}
	if err == nil {
		s.Domains, err = OpenDomainList(domains, cf.Dir(), opt)
		if err != nil {
			err = fmt.Errorf("virtual_mailbox_domains: %w", err)
		}
	}
	if err == nil {
		s.MyDestination, err = OpenDomainList(mydest, cf.Dir(), opt)
		if err != nil {
			err = fmt.Errorf("mydestination: %w", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, configError(err)
	}
	return s, nil
}

func configError(err error) *Status {
	return Deferf(CodeConfig, err, "mail system configuration error")
}

// DomainList is a Postfix domain list (match_list): names, ".parent" patterns, "/file"
// names, type:table lookups and "!" negation, first match wins.
type DomainList struct {
	items []domainItem
}

type domainItem struct {
	negate  bool
	pattern string
	table   lookup.Table
}

// OpenDomainList parses list; a "/file" element is read now and its words added in place.
func OpenDomainList(list, dir string, opt lookup.Options) (*DomainList, error) {
	d := &DomainList{}
	if err := d.add(list, dir, opt, 0); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// maxListFile bounds a /file of a domain list: a file that claims more (sparse,
// /dev/zero) must not decide how much memory a delivery asks for.
const maxListFile = 16 << 20

func (d *DomainList) add(list, dir string, opt lookup.Options, depth int) error {
	if depth > 10 {
		return errors.New("domain list files nested too deep")
	}
	for _, item := range lookup.SplitList(list) {
		neg := false
		for strings.HasPrefix(item, "!") {
			neg = !neg
			item = item[1:]
		}
		switch {
		case item == "":
			return errors.New("empty list element after '!'")
		case strings.HasPrefix(item, "/"):
			b, err := rawfile.ReadFile(filepath.Clean(item), maxListFile)
			if err != nil {
				return err
			}
			var words []string
			for _, line := range strings.Split(string(b), "\n") {
				if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
					words = append(words, l)
				}
			}
			if err := d.add(strings.Join(words, " "), dir, opt, depth+1); err != nil {
				return fmt.Errorf("%s: %w", item, err)
			}
		case strings.Contains(item, ":") && !strings.HasPrefix(item, "["):
			t, err := lookup.Open(item, opt)
			if err != nil {
				return err
			}
			d.items = append(d.items, domainItem{negate: neg, table: t})
		default:
			d.items = append(d.items, domainItem{negate: neg, pattern: strings.ToLower(item)})
		}
	}
	return nil
}

// Match reports whether domain (already folded) is in the list. A table error is returned,
// never taken as "not listed".
func (d *DomainList) Match(ctx context.Context, domain string) (bool, error) {
	if d == nil {
		return false, nil
	}
	for _, it := range d.items {
		hit := false
		if it.table != nil {
			_, found, err := it.table.Lookup(ctx, domain)
			if err != nil {
				return false, fmt.Errorf("%s: lookup %q: %w", it.table.Name(), domain, err)
			}
			hit = found
		} else if strings.HasPrefix(it.pattern, ".") {
			hit = strings.HasSuffix(domain, it.pattern)
		} else {
			hit = domain == it.pattern
		}
		if hit {
			return !it.negate, nil
		}
	}
	return false, nil
}

// Close releases the tables of the list.
func (d *DomainList) Close() error {
	var errs []error
	for _, it := range d.items {
		if it.table != nil {
			errs = append(errs, it.table.Close())
		}
	}
	return errors.Join(errs...)
}

// isLocal is Postfix's resolve_local(): $myorigin, a $mydestination domain, or an [ip]
// literal of this host's interfaces. One trailing dot is ignored.
func (s *Settings) isLocal(ctx context.Context, domain string) (bool, error) {
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		return false, nil
	}
	if strings.EqualFold(domain, s.MyOrigin) {
		return true, nil
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		ip, ok := parseIP(strings.TrimPrefix(strings.Trim(domain, "[]"), "ipv6:"))
		return ok && s.localIP(ip), nil
	}
	return s.MyDestination.Match(ctx, domain)
}

// parseIP reads an address literal as net.ParseIP did: IPv4 in dotted decimal or IPv6,
// no zone; an IPv4-mapped IPv6 address is the IPv4 address. net/netip instead of net:
// the net package's initialisation and code cost every delivery process its start-up
// time (bench/mda/README.md), and the command needs no network.
func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

func (s *Settings) localIP(ip netip.Addr) bool {
	for _, iface := range s.Interfaces {
		switch strings.ToLower(iface) {
		case "all":
			addrs, _ := ifaddrs.List()
			for _, a := range addrs {
				if a.Unmap() == ip {
					return true
				}
			}
		case "loopback-only":
			if ip.IsLoopback() {
				return true
			}
		default:
			if other, ok := parseIP(strings.Trim(iface, "[]")); ok && other == ip {
				return true
			}
		}
	}
	return false
}

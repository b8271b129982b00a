package deliver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vdeliver/lookup"
)

// Target is where and as whom one recipient's mail is written.
type Target struct {
	Recipient string // as given, original case: used in Delivered-To
	Folded    string // the lookup key (whole address case-folded)
	Mailbox   string // the table result, relative to the base
	Path      string // Mailbox without leading slashes: the name under the base root
	Maildir   bool   // the result ends in "/"
	UID, GID  uint32
	Quota     *TargetQuota // vdeliver_quota_maps' result; nil without one (quota.go)
	Probes    []Probe      // every key asked, in order, for explain and the log
}

// Probe records one table query made during resolution.
type Probe struct {
	Map   string // virtual_mailbox_maps, virtual_uid_maps, ...
	Table string // the table of the list that answered or failed; "" for a miss
	Key   string
	Found bool
	Value string
	Err   error
}

// searchKeys is mail_addr_find()'s order for one address (docs/behaviour.md §2): the full
// address, the address without extension, the localpart forms when the domain is local,
// then @domain. Each key carries whether only fixed-key tables may answer it; pattern
// tables (regexp) only ever see the full address.
type searchKey struct {
	key       string
	raw       string // the unquoted form, asked when the quoted one misses and differs
	fixedOnly bool
}

func (s *Settings) searchKeys(ctx context.Context, folded string) ([]searchKey, error) {
	local, domain, hasAt := splitAt(folded)
	ext, split := splitExtension(local, s.Delimiters, s.DoubleBounce, s.OwnerRequest)
	quote := func(l string) string {
		if !hasAt {
			return Quote822Local(l)
		}
		return Quote822Local(l + "@" + domain)
	}
	with := func(l string) string {
		if !hasAt {
			return l
		}
		return l + "@" + domain
	}
	keys := []searchKey{{key: quote(local), raw: with(local)}}
	if split {
		keys = append(keys, searchKey{key: quote(ext.User), raw: with(ext.User), fixedOnly: true})
	}
	if hasAt {
		local0, err := s.isLocal(ctx, domain)
		if err != nil {
			return nil, err
		}
		if local0 {
			keys = append(keys, searchKey{key: Quote822Local(local), raw: local, fixedOnly: true})
			if split {
				keys = append(keys, searchKey{key: Quote822Local(ext.User), raw: ext.User, fixedOnly: true})
			}
		}
		keys = append(keys, searchKey{key: "@" + domain, raw: "@" + domain, fixedOnly: true})
	}
	return keys, nil
}

// find searches one list of tables with the keys in order; key order beats table order.
func (t *Target) find(ctx context.Context, name string, m *lookup.Maps, keys []searchKey) (string, bool, error) {
	for _, k := range keys {
		forms := []string{k.key}
		if k.raw != k.key {
			forms = append(forms, k.raw)
		}
		for _, key := range forms {
			v, table, found, err := m.FindTable(ctx, key, k.fixedOnly)
			t.Probes = append(t.Probes, Probe{Map: name, Table: table, Key: key, Found: found, Value: v, Err: err})
			if err != nil {
				return "", false, err
			}
			if found {
				return v, true, nil
			}
		}
	}
	return "", false, nil
}

// Resolve looks the recipient up as virtual(8) does and validates every table result before
// it is used (docs/behaviour.md §3). It writes nothing.
func (s *Settings) Resolve(ctx context.Context, rcpt string) (*Target, *Status) {
	t := &Target{Recipient: rcpt, Folded: fold(rcpt)}
	if rcpt == "" || hasControl(rcpt) {
		return t, Bouncef(CodeBadRcptSyntax, fmt.Errorf("recipient %q", rcpt), "bad recipient address syntax")
	}
	_, domain, _ := splitAt(t.Folded)
	listed, err := s.Domains.Match(ctx, domain)
	if err != nil {
		return t, Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_domains: %w", err), "mail system configuration error")
	}
	if !listed {
		return t, Bouncef(CodeUnknownDomain, fmt.Errorf("domain %q not in virtual_mailbox_domains", domain),
			"domain \"%s\" is not a virtual mailbox domain", domain)
	}
	keys, err := s.searchKeys(ctx, t.Folded)
	if err != nil {
		return t, Deferf(CodeConfig, fmt.Errorf("mydestination: %w", err), "mail system configuration error")
	}
	mailbox, found, err := t.find(ctx, "virtual_mailbox_maps", s.MailboxMaps, keys)
	if err != nil {
		return t, Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_maps: %w", err), "mail system configuration error")
	}
	if !found {
		return t, Bouncef(CodeUnknownUser, nil, "unknown user: \"%s\"", t.Folded)
	}
	t.Mailbox = mailbox
	t.Maildir = strings.HasSuffix(mailbox, "/")
	if err := CheckMailbox(mailbox); err != nil {
		return t, Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_maps: bad mailbox path %q for %s: %w", mailbox, t.Folded, err),
			"mail system configuration error")
	}
	t.Path = strings.TrimLeft(mailbox, "/")
	uid, gid, st := s.owner(ctx, t, keys)
	if st != nil {
		return t, st
	}
	t.UID, t.GID = uid, gid
	if st := s.quotaOf(ctx, t, keys); st != nil {
		return t, st
	}
	return t, nil
}

// owner is the uid and gid virtual_uid_maps and virtual_gid_maps give t, refusing a uid
// below virtual_minimum_uid and gid 0.
func (s *Settings) owner(ctx context.Context, t *Target, keys []searchKey) (uid, gid uint32, st *Status) {
	u, st := s.id(ctx, t, "virtual_uid_maps", s.UIDMaps, keys)
	if st != nil {
		return 0, 0, st
	}
	if u < s.MinUID {
		return 0, 0, Deferf(CodeConfig, fmt.Errorf("virtual_uid_maps: bad uid %d for %s: below virtual_minimum_uid %d", u, t.Folded, s.MinUID),
			"mail system configuration error")
	}
	g, st := s.id(ctx, t, "virtual_gid_maps", s.GIDMaps, keys)
	if st != nil {
		return 0, 0, st
	}
	if g == 0 {
		return 0, 0, Deferf(CodeConfig, fmt.Errorf("virtual_gid_maps: bad gid 0 for %s", t.Folded), "mail system configuration error")
	}
	return uint32(u), uint32(g), nil
}

func (s *Settings) id(ctx context.Context, t *Target, name string, m *lookup.Maps, keys []searchKey) (uint64, *Status) {
	v, found, err := t.find(ctx, name, m, keys)
	if err != nil {
		return 0, Deferf(CodeConfig, fmt.Errorf("%s: %w", name, err), "mail system configuration error")
	}
	if !found {
		return 0, Deferf(CodeConfig, fmt.Errorf("recipient %s: not found in %s", t.Folded, name), "mail system configuration error")
	}
	id, err := ParseID(v)
	if err != nil {
		return 0, Deferf(CodeConfig, fmt.Errorf("%s: bad id %q for %s: %w", name, v, t.Folded, err), "mail system configuration error")
	}
	return id, nil
}

// ParseID accepts what Postfix 3.12 accepts for a uid or gid: the whole string decimal,
// no sign, no overflow, and not (uid_t)-1, which the kernel reads as "leave unchanged".
// The delivery, explain and check all use it.
func ParseID(s string) (uint64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// CheckMailbox refuses table results that would leave the base or are unusable: any ".."
// element, including a trailing "x/.." that Postfix itself misses (path traversal),
// control characters and NUL bytes, and an empty path. The delivery, explain and check
// all use it.
func CheckMailbox(m string) error {
	if strings.IndexByte(m, 0) >= 0 || hasControl(m) {
		return errors.New("control character in path")
	}
	for _, el := range strings.Split(m, "/") {
		if el == ".." {
			return errors.New(`".." path element`)
		}
	}
	if strings.Trim(m, "/") == "" && !strings.HasSuffix(m, "/") {
		return errors.New("empty mailbox path")
	}
	return nil
}

package lookup

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Table is one opened lookup table.
//
// Lookup has three outcomes: a hit (value, true, nil), a miss ("", false, nil) and an
// error (err != nil). An error is never collapsed into a miss: a caller that bounces on a
// miss must defer on an error.
type Table interface {
	Lookup(ctx context.Context, key string) (value string, found bool, err error)
	// Name is the table as configured, "type:name", e.g. "hash:/etc/postfix/vmailbox".
	Name() string
	// Fixed reports a fixed-key table (hash, btree, texthash, cdb, static, inline, SQL,
	// ...), as opposed to a pattern table (regexp, pcre, cidr). Postfix asks pattern
	// tables only with the full address.
	Fixed() bool
	Close() error
}

// Options change how tables are opened.
type Options struct {
	// Paranoid is virtual(8)'s DICT_FLAG_PARANOID: a regexp or pcre rule whose result
	// uses $n substitution is skipped with a warning, so that parts of an address cannot
	// be pasted into a mailbox path.
	Paranoid bool
	// Warn receives non-fatal warnings as text, "FILE:LINE: text" (Warning.String).
	// Nil discards them.
	Warn func(msg string)
	// OnWarning, when not nil, receives each warning with its position in fields, in
	// place of Warn.
	OnWarning func(Warning)
	// Entries, when not nil, receives every key and value of a texthash: source as
	// written, duplicates included, in file order, as Open reads it: a caller that
	// also wants the entries does not read the file a second time. Other table types
	// do not call it.
	Entries func(Entry)
	// Opened, when not nil, is asked first for a table already open under spec; Open
	// returns one it gives as it is, except that closing it there does nothing: whoever
	// opened it closes it. A caller that opens the same tables again through code it does
	// not control (a domain list) so reads none of them twice. Nil opens every spec.
	Opened func(spec string) Table
	// ConfigDir is passed to postmap(1) as -c when a table type is looked up through
	// Postfix's own postmap; "" leaves postmap's default ($MAIL_CONFIG, /etc/postfix).
	ConfigDir string
	// NonBDB is Postfix 3.11's redirection of hash: and btree: to other types.
	NonBDB NonBDB

	// foldFixed is Postfix's DICT_FLAG_FOLD_FIX, for the tables Open opens itself:
	// keys of an inline: table are folded to lower case as it is built.
	foldFixed bool

	// Proxymap, when not nil, is the proxymap(8) server that proxy:TYPE:NAME tables are
	// asked through. Nil, or a socket that cannot be opened, sends them to postmap(1)
	// like any other type vdeliver does not read itself.
	Proxymap *Proxymap
}

func (o *Options) warn(w Warning) {
	switch {
	case o.OnWarning != nil:
		o.OnWarning(w)
	case o.Warn != nil:
		o.Warn(w.String())
	}
}

// Warning is a problem Postfix logs but tolerates while it reads a table: a line it
// skips, a duplicate key, a database older than its source.
type Warning struct {
	// File is the file the warning is about, "" when the text names no file of its own
	// (postmap(1)'s own words, say); Line is the line in File, 0 for the whole file.
	File string
	Line int
	Kind WarningKind
	// Msg is the text without File and Line.
	Msg string
	// Key is the key a WarnDuplicate is about.
	Key string
}

// WarningKind tells apart the warnings a caller may want to handle itself.
type WarningKind int

// The kinds of warning.
const (
	// WarnOther is every warning not named below.
	WarnOther WarningKind = iota
	// WarnDuplicate is a key that a source text defines again at Line.
	WarnDuplicate
	// WarnStaleDB is a hash: or btree: table whose .db is older than its source text
	// File, as Postfix's dict_db.c warns.
	WarnStaleDB
)

// String is the warning as Postfix prints it: "FILE:LINE: Msg", "FILE: Msg" without a
// line, Msg alone without a file.
func (w Warning) String() string {
	switch {
	case w.File == "":
		return w.Msg
	case w.Line == 0:
		return w.File + ": " + w.Msg
	}
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg)
}

var (
	// ErrUnsupported reports a table type vdeliver cannot read; it is wrapped with the
	// type name.
	ErrUnsupported = errors.New("unsupported table type")
	// ErrSyntax reports a table spec or table file content that cannot be used.
	ErrSyntax = errors.New("syntax error")
	// ErrEmptyValue reports a table that answered with an empty string, which Postfix's
	// maps_find treats as a configuration error, not as a miss.
	ErrEmptyValue = errors.New("empty table value")
	// ErrNotApproved reports a proxy: table that the proxymap(8) server refuses to serve
	// (status 4: not listed in its proxy_read_maps).
	ErrNotApproved = errors.New("table not approved for proxy access")
	// ErrNoModule reports a table type that Postfix's postmap(1) has no module for
	// ("unsupported dictionary type": a postfix-TYPE package not installed); such an
	// error also matches ErrUnsupported.
	ErrNoModule = errors.New("no Postfix table module")
)

// ParseSpec splits a table spec "type:name" at the first colon.
//
// It returns an error wrapping ErrSyntax when there is no colon or the type is empty or
// contains anything but ASCII letters, digits, '_' and '-'.
func ParseSpec(spec string) (typ, name string, err error) {
	typ, name, ok := strings.Cut(spec, ":")
	if !ok {
		return "", "", fmt.Errorf("table %q: need type:name: %w", spec, ErrSyntax)
	}
	if typ == "" {
		return "", "", fmt.Errorf("table %q: empty table type: %w", spec, ErrSyntax)
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !isAlnum(c) && c != '_' && c != '-' {
			return "", "", fmt.Errorf("table %q: bad character %q in table type: %w", spec, c, ErrSyntax)
		}
	}
	return typ, name, nil
}

// Open opens the table named by spec.
//
// Any failure is an error and no table is returned: a missing file, a syntax error in a
// pattern table (wrapping ErrSyntax, with file and line), or a type vdeliver cannot read
// and no postmap(1) to read it (wrapping ErrUnsupported). Warnings that Postfix would log
// while building the same table go to opt.Warn.
func Open(spec string, opt Options) (Table, error) {
	if opt.Opened != nil {
		if t := opt.Opened(spec); t != nil {
			return borrowed{t}, nil
		}
	}
	typ, name, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	// proxy: only changes which process opens the table. Through proxymap(8) the table
	// is read by Postfix's own code with Postfix's privileges; without it the inner
	// table is read as if proxy: were not there, as virtual(8) does (DICT_FLAG_NO_PROXY
	// under PARANOID).
	inner := spec
	proxied := typ == "proxy"
	for typ == "proxy" {
		inner = name
		if typ, name, err = ParseSpec(inner); err != nil {
			return nil, fmt.Errorf("table %q: %w", spec, err)
		}
	}
	if proxied && opt.Proxymap != nil && typ != "tcp" && typ != "socketmap" && typ != "memcache" {
		t, err := openProxy(spec, inner, !patternTypes[typ], &opt)
		if t != nil || err != nil {
			return t, err
		}
	}
	if typ == "hash" || typ == "btree" {
		if typ, err = opt.NonBDB.redirect(typ, name, &opt); err != nil {
			return nil, fmt.Errorf("table %s: %w", spec, err)
		}
		inner = typ + ":" + name
	}
	var t Table
	switch typ {
	case "hash", "btree":
		t, err = openDB(spec, typ, name, &opt)
	case "texthash":
		t, err = openTexthash(spec, name, &opt)
	case "static":
		t, err = openStatic(spec, name)
	case "inline":
		t, err = openInline(spec, name, opt.foldFixed)
	case "regexp":
		t, err = openRegexp(spec, name, false, &opt)
	case "pcre":
		t, err = openRegexp(spec, name, true, &opt)
	case "cdb":
		t, err = openCDB(spec, name)
	case "lmdb":
		t, err = openLMDB(spec, name, &opt)
	case "tcp", "socketmap", "memcache":
		// docs/behaviour.md §1: these carry unauthenticated data (DICT_FLAG_NO_UNAUTH); a
		// table server on the network must not decide where mail is written.
		return nil, fmt.Errorf("table %q: %s: tables with unauthenticated data are not allowed: %w", spec, typ, ErrUnsupported)
	default:
		t, err = openPostmap(spec, typ, name, inner, &opt)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// borrowed is a table from Options.Opened: its owner closes it.
type borrowed struct{ Table }

func (borrowed) Close() error { return nil }

// SplitList splits a Postfix list value: elements separated by commas and/or whitespace,
// with text inside "{...}" kept whole (Postfix mystrtokq with CHARS_COMMA_SP), so that
// "inline:{a=1, b=2}, hash:/x" is two elements.
func SplitList(s string) []string {
	var out []string
	for {
		tok, rest, ok := nextToken(s, ", \t\r\n")
		if !ok {
			return out
		}
		out = append(out, tok)
		s = rest
	}
}

// nextToken is Postfix's mystrtokq with "{}" as the parentheses: it skips leading
// separators and returns the text up to the next separator outside braces. An unbalanced
// "{" runs to the end.
func nextToken(s, sep string) (tok, rest string, ok bool) {
	i := 0
	for i < len(s) && strings.IndexByte(sep, s[i]) >= 0 {
		i++
	}
	if i == len(s) {
		return "", "", false
	}
	start, level := i, 0
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{':
			level++
		case level > 0 && c == '}':
			level--
		case level == 0 && strings.IndexByte(sep, c) >= 0:
			return s[start:i], s[i+1:], true
		}
	}
	return s[start:], "", true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isSpace is Postfix's ISSPACE: ASCII isspace only.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// base is embedded by every table type: it answers Name and Fixed and closes
// nothing.
type base struct {
	name  string
	fixed bool
}

func (b *base) Name() string { return b.name }
func (b *base) Fixed() bool  { return b.fixed }
func (b *base) Close() error { return nil }

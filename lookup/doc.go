// Package lookup reads Postfix lookup tables with Postfix's answers: the same file gives
// the same hit, miss or error as Postfix's own dict_*.c code (docs/behaviour.md §9).
//
// A table is named by a spec "type:name" (ParseSpec splits at the first colon). A list
// of specs (SplitList) is separated by commas and/or whitespace, with "{...}" kept whole.
// Maps searches such a list in order; Postfix's maps_find rules apply: the first hit or
// the first error ends the search, and an empty value is an error (ErrEmptyValue).
//
// # Table types
//
//	hash:/f, btree:/f  the Berkeley DB file /f.db that postmap(1) writes, as Postfix's
//	                   dict_db.c reads it (package lookup/bdb): keys tried with and then
//	                   without a trailing NUL, the form that works is remembered; a
//	                   shared flock(2) around each lookup, as postmap rewrites the file
//	                   in place under an exclusive one. The source text /f is not read
//	                   (postmap folded its keys and kept the first of duplicates). No
//	                   /f.db: Open fails with the OS error and "run postmap hash:/f"; a
//	                   warning when /f is newer than /f.db (and older than 100 s)
//	texthash:/f        the source text itself, read whole at Open, keys not folded; a
//	                   duplicate key makes every lookup fail, as for a Postfix daemon
//	cdb:/f             the cdb file /f.cdb; keys tried with and without a trailing NUL,
//	                   the form that works is remembered
//	lmdb:/f            the LMDB file /f.lmdb (package lmdb: read-only, pread, under
//	                   Postfix's shared fcntl lock); keys tried as for cdb; a missing
//	                   file's error says to run "postmap lmdb:/f"
//	static:v           v for every key; static:{ v } strips the braces and the
//	                   whitespace inside them (StaticValue)
//	inline:{k=v, ...}  elements separated by commas/whitespace, "{ k = v, w }" for a value
//	                   with commas or spaces; last duplicate wins; empty is an error
//	regexp:/f, pcre:/f pattern tables (not Fixed), see below
//	proxy:T            asked through Postfix's proxymap(8) when Options.Proxymap names a
//	                   socket that can be opened (see below); otherwise opens T as if
//	                   proxy: were not there
//	tcp:, socketmap:, memcache:
//	                   always refused (ErrUnsupported): unauthenticated data
//	anything else      dbm, sdbm, cidr, mysql, pgsql, sqlite, ldap, ...: looked up
//	                   through Postfix's "postmap -f -q KEY type:name", one process per
//	                   lookup made (milliseconds each); without postmap(1) Open fails with
//	                   ErrUnsupported
//
// With Options.NonBDB set from main.cf, hash: and btree: are first redirected as
// Postfix 3.11's non-Berkeley-DB migration does (see NonBDB): hash:/f may be read as
// lmdb:/f or cdb:/f, keeping its name.
//
// # proxy: through proxymap(8)
//
// The proxy: tables opened with one Options.Proxymap share one connection to the
// server (package lookup/proxymap has the protocol), made when the first of them is
// opened and kept: a set-uid process opens its tables as root and can give up root
// afterwards. Open sends the server an open request with virtual(8)'s dictionary flags
// (lock, UTF-8 request, and the paranoid flags with Options.Paranoid); a table the server
// does not approve is an Open error wrapping ErrNotApproved; the server's reply tells a
// fixed-key from a pattern table. A lookup's status "not found" is a miss, every other
// status and every failure of the connection an error. A socket that cannot be opened
// (missing, no permission, refused) is not an error: the table is read as if proxy: were
// not there.
//
// # Tables through postmap(1)
//
// Open runs no query, so a table costs a process only for the lookups actually made.
// Instead it checks the file the table's type names, where the name tells it (the .cf of
// sqlite, mysql, pgsql and ldap tables given as a path, a cidr file): missing
// is an error wrapping fs.ErrNotExist, unreadable by this process one wrapping
// fs.ErrPermission that names the file and the uid (postmap runs with our ids). A type
// postmap does not know fails at the first lookup, wrapping ErrUnsupported. ViaPostmap
// tells such tables apart, for a caller that wants one query at open all the same.
//
// Lookups never fold the key: callers fold addresses first, as virtual(8) does. Folding
// (of source keys here, of addresses by callers) is strings.ToLower; Postfix with
// smtputf8_enable=yes uses full Unicode case folding, which differs for a few characters
// (ß, final sigma).
//
// # Source text format (texthash, and what postmap(1) compiles; ReadSource)
//
//	file     = { physical-line "\n" }
//	logical  = first-line { continuation | comment | blank }
//	first    = a line starting with neither whitespace nor "#"
//	continuation = a line starting with whitespace; appended with its leading whitespace,
//	           without the newline
//	comment  = a line whose first non-blank character is "#"; dropped, even between a
//	           line and its continuation ("#" elsewhere is ordinary text)
//	blank    = an empty or all-whitespace line; dropped, also inside a logical line
//	entry    = key whitespace value
//
// The key ends at the first whitespace outside double quotes; a backslash makes the next
// character ordinary for this scan; quotes and backslashes stay in the key, so
// `"john doe"@example.com` is found only by that quoted query. The value is the rest
// with surrounding whitespace (including CR) removed. Lines are skipped with a warning
// "FILE:LINE: ..." (LINE = first physical line) when: a logical line starts with
// whitespace, a quote is unbalanced, the key or the value is missing, or a non-ASCII line
// is not valid UTF-8. Text after a NUL byte is dropped with a warning. A key ending in ':'
// is kept with a warning (alias-file format). Options.OnWarning and SourceOptions.OnWarning
// receive each warning as a Warning, with its file, line and kind in fields.
//
// # regexp: and pcre: format (regexp_table(5), pcre_table(5))
//
// Logical lines as above, trailing whitespace removed. Rules, first match wins, matched
// against the whole key:
//
//	rule   = { "!" } delim pattern delim flags [ legacy ] whitespace result
//	legacy = "!" { "!" } delim pattern delim flags      (regexp: only; /p1/!/p2/ = p1 and not p2)
//	if     = "if" { "!" } delim pattern delim flags     (keywords case-insensitive; nest)
//	endif  = "endif"
//
// Each "!" toggles negation; a backslash escapes the delimiter. regexp: flags (POSIX
// regcomp): i toggles case-insensitivity (default on), m toggles REG_NEWLINE (default
// off), x toggles extended syntax (default on; off = basic regular expressions). GNU
// syntax is translated to Go's RE2 and matched leftmost-longest; back-references and
// \< \> are refused. pcre: flags: i caseless (on), m multiline, s dotall (on), x
// extended, A anchored, E dollar-end-only, U ungreedy, X ignored. PCRE constructs RE2
// cannot express (back-references, lookaround, atomic groups, possessive quantifiers,
// \G, \K, ...) are an Open error. Without E, PCRE's "$" also matches before a final
// newline; here it never does (keys hold no newlines).
//
// The result may use $1..$n, ${n}, $(n) for captured text (unmatched or empty captures
// insert nothing) and $$ for "$"; an empty result is allowed with a warning. With
// Options.Paranoid a rule whose result uses $n is skipped with a warning, as virtual(8)
// does.
//
// Where Postfix skips a bad rule with a warning (unknown flag, bad pattern, missing
// delimiter, bad $ syntax, $n in a negated rule, $n beyond the groups, unknown keyword,
// ENDIF without IF, IF without ENDIF), Open fails with an error wrapping ErrSyntax that
// names the file and line: a table is never used with a rule missing.
package lookup

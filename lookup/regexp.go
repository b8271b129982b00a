package lookup

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	opMatch = iota
	opIf
	opEndif
)

// rxRule is one rule of a regexp: or pcre: table.
type rxRule struct {
	op    int
	line  int
	re    *regexp.Regexp
	match bool // false for a negated pattern
	// re2/match2 are the legacy second pattern of /p1/!/p2/ (regexp: only).
	re2    *regexp.Regexp
	match2 bool
	repl   []replPart
	maxSub int
	endif  int // index of the matching endif rule, for opIf
}

// replPart is literal text (index 0) or a $n reference.
type replPart struct {
	lit   string
	index int
}

// rxTable is a regexp: or pcre: table (Postfix dict_regexp.c, dict_pcre.c).
type rxTable struct {
	base
	rules []rxRule
}

func (t *rxTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	for i := 0; i < len(t.rules); i++ {
		r := &t.rules[i]
		switch r.op {
		case opMatch:
			var m []int
			if r.maxSub > 0 {
				m = r.re.FindStringSubmatchIndex(key)
				if m == nil {
					continue
				}
			} else if r.re.MatchString(key) != r.match {
				continue
			}
			if r.re2 != nil && r.re2.MatchString(key) != r.match2 {
				continue
			}
			return expand(r.repl, key, m), true, nil
		case opIf:
			if r.re.MatchString(key) == r.match {
				continue
			}
			// Skip to the endif; the loop increment steps over it.
			i = r.endif
		}
	}
	return "", false, nil
}

func expand(parts []replPart, key string, m []int) string {
	if len(parts) == 1 && parts[0].index == 0 {
		return parts[0].lit
	}
	var b strings.Builder
	for _, p := range parts {
		if p.index == 0 {
			b.WriteString(p.lit)
			continue
		}
		// An unmatched or empty group inserts nothing (MAC_PARSE_UNDEF).
		if s, e := m[2*p.index], m[2*p.index+1]; s >= 0 && e > s {
			b.WriteString(key[s:e])
		}
	}
	return b.String()
}

// openRegexp reads and compiles a regexp: (pcre false) or pcre: table file.
func openRegexp(spec, path string, pcre bool, opt *Options) (Table, error) {
	data, _, err := readStable(path)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	t, err := parseRegexpTable(spec, path, data, pcre, opt)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	return t, nil
}

// parseRegexpTable compiles the text of a regexp or pcre table. Every problem that makes
// Postfix skip a rule is an error wrapping ErrSyntax with "path:line", so that a table is
// never used with a rule missing; the one exception is a $n rule under Options.Paranoid,
// which Postfix's virtual(8) skips with a warning and so do we.
func parseRegexpTable(spec, path, data string, pcre bool, opt *Options) (*rxTable, error) {
	t := &rxTable{base: base{name: spec}}
	var stack []int // indexes of open if rules
	var firstErr error
	warn := opt.warn
	logicalLines(path, data, warn, func(text string, line int) {
		if firstErr != nil {
			return
		}
		fail := func(format string, args ...any) {
			firstErr = fmt.Errorf("%s:%d: %s: %w", path, line, fmt.Sprintf(format, args...), ErrSyntax)
		}
		if i := strings.IndexByte(text, 0); i >= 0 {
			warn(Warning{File: path, Line: line, Msg: "text after null byte may be ignored"})
			text = text[:i]
		}
		p := strings.TrimRight(text, " \t\r\n\v\f")
		if p == "" {
			return
		}
		switch {
		case !isAlnum(p[0]):
			r := rxRule{op: opMatch, line: line}
			pat, rest, err := getPattern(p, pcre)
			if err != nil {
				fail("%v", err)
				return
			}
			var pat2 *pattern
			if !pcre && strings.HasPrefix(rest, "!") {
				pat2, rest, err = getPattern(rest, false)
				if err != nil {
					fail("%v", err)
					return
				}
			}
			repl := trimSpace(rest)
			if repl == "" {
				warn(Warning{File: path, Line: line, Msg: "no replacement text: using empty string"})
			}
			parts, maxSub, err := parseReplacement(repl)
			if err != nil {
				fail("bad replacement syntax: %v", err)
				return
			}
			if maxSub > 0 && !pat.match {
				fail("$number found in negative match replacement text")
				return
			}
			if maxSub > 0 && opt.Paranoid {
				warn(Warning{File: path, Line: line, Msg: "regular expression substitution is not allowed: skipping this rule"})
				return
			}
			if r.re, err = pat.compile(pcre); err != nil {
				fail("%v", err)
				return
			}
			if maxSub > r.re.NumSubexp() {
				fail("out of range replacement index \"%d\"", maxSub)
				return
			}
			if pat2 != nil {
				if r.re2, err = pat2.compile(false); err != nil {
					fail("%v", err)
					return
				}
				r.match2 = pat2.match
			}
			r.match, r.repl, r.maxSub = pat.match, parts, maxSub
			t.rules = append(t.rules, r)
		case keyword(p, "if"):
			pat, rest, err := getPattern(strings.TrimLeft(p[2:], " \t\r\n\v\f"), pcre)
			if err != nil {
				fail("%v", err)
				return
			}
			if rest = trimSpace(rest); rest != "" {
				warn(Warning{File: path, Line: line, Msg: fmt.Sprintf("ignoring extra text after IF statement: %q", rest)})
				warn(Warning{File: path, Line: line, Msg: "do not prepend whitespace to statements between IF and ENDIF"})
			}
			re, err := pat.compile(pcre)
			if err != nil {
				fail("%v", err)
				return
			}
			stack = append(stack, len(t.rules))
			t.rules = append(t.rules, rxRule{op: opIf, line: line, re: re, match: pat.match, endif: -1})
		case keyword(p, "endif"):
			if len(stack) == 0 {
				fail("ENDIF without matching IF")
				return
			}
			if trimSpace(p[5:]) != "" {
				warn(Warning{File: path, Line: line, Msg: "ignoring extra text after ENDIF"})
			}
			t.rules[stack[len(stack)-1]].endif = len(t.rules)
			stack = stack[:len(stack)-1]
			t.rules = append(t.rules, rxRule{op: opEndif, line: line})
		default:
			fail("unrecognized request %q", abbrev(p))
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if len(stack) > 0 {
		// Postfix warns and then treats a failed IF without ENDIF as the end of the
		// table; a missing ENDIF is far more likely a truncated or mis-edited file.
		return nil, fmt.Errorf("%s:%d: IF has no matching ENDIF: %w", path, t.rules[stack[len(stack)-1]].line, ErrSyntax)
	}
	return t, nil
}

// keyword reports whether p starts with word (case-insensitive) not followed by an
// alphanumeric.
func keyword(p, word string) bool {
	return len(p) >= len(word) && strings.EqualFold(p[:len(word)], word) && (len(p) == len(word) || !isAlnum(p[len(word)]))
}

// pattern is one /regexp/flags with its negation.
type pattern struct {
	text  string
	flags string
	match bool
}

// getPattern reads [!...]<delim>pattern<delim>flags from p and returns what follows.
// For regexp: the flags end at whitespace or '!', for pcre: at whitespace.
func getPattern(p string, pcre bool) (*pattern, string, error) {
	pat := &pattern{match: true}
	i := 0
	for ; i < len(p); i++ {
		if p[i] == '!' {
			pat.match = !pat.match
		} else if !isSpace(p[i]) {
			break
		}
	}
	if i == len(p) {
		return nil, "", fmt.Errorf("no regexp")
	}
	delim := p[i]
	i++
	start := i
	for ; i < len(p); i++ {
		if p[i] == '\\' {
			if i+1 < len(p) {
				i++
				continue
			}
			i = len(p)
			break
		}
		if p[i] == delim {
			break
		}
	}
	if i >= len(p) {
		return nil, "", fmt.Errorf("no closing regexp delimiter %q", delim)
	}
	pat.text = p[start:i]
	i++
	fstart := i
	for ; i < len(p) && !isSpace(p[i]) && (pcre || p[i] != '!'); i++ {
		ok := strings.IndexByte("imx", p[i]) >= 0
		if pcre {
			ok = strings.IndexByte("imsxAEUX", p[i]) >= 0
		}
		if !ok {
			return nil, "", fmt.Errorf("unknown regexp option %q", p[i])
		}
	}
	pat.flags = p[fstart:i]
	return pat, p[i:], nil
}

// compile turns a pattern into a Go regexp with the table type's flag semantics.
func (pat *pattern) compile(pcre bool) (*regexp.Regexp, error) {
	if pcre {
		return compilePCRE(pat.text, pat.flags)
	}
	return compilePOSIX(pat.text, pat.flags)
}

func toggled(flags string, c byte) bool {
	return strings.Count(flags, string(c))%2 == 1
}

// compilePOSIX compiles a regexp: pattern: POSIX regcomp with REG_EXTENDED|REG_ICASE by
// default, 'i' toggling REG_ICASE, 'm' REG_NEWLINE and 'x' REG_EXTENDED (so "x" means a
// basic regular expression). The GNU dialect is translated to RE2 syntax and matched
// leftmost-longest, as POSIX requires.
func compilePOSIX(text, flags string) (*regexp.Regexp, error) {
	icase := !toggled(flags, 'i')
	newline := toggled(flags, 'm')
	extended := !toggled(flags, 'x')
	tr, err := translatePOSIX(text, extended, newline)
	if err != nil {
		return nil, err
	}
	prefix := "(?s)"
	if newline {
		prefix = "(?m)"
	}
	if icase {
		prefix += "(?i)"
	}
	re, err := regexp.Compile(prefix + tr)
	if err != nil {
		return nil, fmt.Errorf("cannot compile %q: %v", text, err)
	}
	re.Longest()
	return re, nil
}

// translatePOSIX rewrites a GNU regcomp pattern (ERE, or BRE when !extended) as RE2
// syntax with the same meaning, or explains why it cannot.
func translatePOSIX(s string, extended, newline bool) (string, error) {
	var b strings.Builder
	// atStart is true where a BRE treats '*' as a literal and '^' as an anchor.
	atStart := true
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return "", fmt.Errorf("trailing backslash in %q", s)
			}
			r, size := utf8.DecodeRuneInString(s[i+1:])
			i += 1 + size
			n := s[i-size]
			if size > 1 {
				b.WriteString(regexp.QuoteMeta(string(r)))
				atStart = false
				continue
			}
			if !extended {
				switch n {
				case '(', ')', '{', '}', '|', '+', '?':
					b.WriteByte(n)
					atStart = n == '(' || n == '|'
					continue
				}
			}
			atStart = false
			switch {
			case n >= '1' && n <= '9':
				return "", fmt.Errorf("back-reference \\%c in %q is not supported", n, s)
			case strings.IndexByte("wWsSbB", n) >= 0:
				b.WriteByte('\\')
				b.WriteByte(n)
			case n == '<' || n == '>':
				return "", fmt.Errorf("word anchor \\%c in %q is not supported", n, s)
			case n == '`':
				b.WriteString(`\A`)
			case n == '\'':
				b.WriteString(`\z`)
			case isAlnum(n):
				// GNU regcomp gives escaped letters meanings of its own (\d matches
				// neither "d" nor a digit); refuse rather than guess.
				return "", fmt.Errorf("escape \\%c in %q is not supported", n, s)
			default:
				b.WriteString(regexp.QuoteMeta(string(n)))
			}
		case c == '[':
			cls, n, err := translateBracket(s[i:], newline)
			if err != nil {
				return "", err
			}
			b.WriteString(cls)
			i += n
			atStart = false
		case extended && c == '(':
			if i+1 < len(s) && s[i+1] == '?' {
				return "", fmt.Errorf("invalid \"(?\" in %q", s)
			}
			b.WriteByte(c)
			i++
			atStart = true
		case extended && c == '{' && i+1 < len(s) && s[i+1] == ',':
			// GNU reads {,n} as {0,n}; RE2 would take it literally.
			b.WriteString("{0")
			i++
		case extended && strings.IndexByte(".()|*+?{}^$", c) >= 0:
			b.WriteByte(c)
			i++
			atStart = c == '|'
		case !extended && c == '*':
			if atStart {
				b.WriteString(`\*`)
			} else {
				b.WriteByte('*')
			}
			i++
			atStart = false
		case !extended && c == '^':
			if atStart {
				b.WriteByte('^')
			} else {
				b.WriteString(`\^`)
			}
			i++
		case !extended && c == '$':
			// An anchor only at the end of the pattern or of a group.
			if i+1 == len(s) || strings.HasPrefix(s[i+1:], `\)`) || strings.HasPrefix(s[i+1:], `\|`) {
				b.WriteByte('$')
			} else {
				b.WriteString(`\$`)
			}
			i++
			atStart = false
		case !extended && c == '.':
			b.WriteByte('.')
			i++
			atStart = false
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteString(regexp.QuoteMeta(s[i : i+size]))
			}
			i += size
			atStart = false
		}
	}
	return b.String(), nil
}

var posixClasses = map[string]bool{
	"alnum": true, "alpha": true, "blank": true, "cntrl": true, "digit": true, "graph": true,
	"lower": true, "print": true, "punct": true, "space": true, "upper": true, "xdigit": true,
}

// translateBracket translates the POSIX bracket expression at the start of s and returns
// it with the number of bytes it used. Inside brackets a backslash is an ordinary
// character, as POSIX says.
func translateBracket(s string, newline bool) (string, int, error) {
	var b strings.Builder
	b.WriteByte('[')
	i := 1
	if i < len(s) && s[i] == '^' {
		b.WriteByte('^')
		i++
		if newline {
			// REG_NEWLINE: a non-matching list never matches a newline.
			b.WriteString(`\n`)
		}
	}
	first := i
	for {
		if i >= len(s) {
			return "", 0, fmt.Errorf("unmatched [ in %q", s)
		}
		c := s[i]
		if c == ']' && i > first {
			b.WriteByte(']')
			return b.String(), i + 1, nil
		}
		if c == '[' && i+1 < len(s) && strings.IndexByte(":=.", s[i+1]) >= 0 {
			kind := s[i+1]
			end := strings.Index(s[i+2:], string(kind)+"]")
			if end < 0 {
				return "", 0, fmt.Errorf("unterminated [%c in %q", kind, s)
			}
			name := s[i+2 : i+2+end]
			i += 2 + end + 2
			if kind == ':' {
				if !posixClasses[name] {
					return "", 0, fmt.Errorf("invalid character class [:%s:] in %q", name, s)
				}
				b.WriteString("[:" + name + ":]")
				continue
			}
			if utf8.RuneCountInString(name) != 1 {
				return "", 0, fmt.Errorf("unsupported collating element [%c%s%c] in %q", kind, name, kind, s)
			}
			b.WriteString(quoteClassChar(name))
			continue
		}
		if c == '-' && i > first && i+1 < len(s) && s[i+1] != ']' {
			b.WriteByte('-')
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteString(quoteClassChar(s[i : i+size]))
		}
		i += size
	}
}

func quoteClassChar(ch string) string {
	if len(ch) == 1 && !isAlnum(ch[0]) && ch[0] < utf8.RuneSelf {
		if ch[0] < ' ' || ch[0] == 0x7f {
			return fmt.Sprintf(`\x%02x`, ch[0])
		}
		return `\` + ch
	}
	return ch
}

// compilePCRE compiles a pcre: pattern with RE2. Flags as pcre_table(5): 'i' caseless
// (default on), 'm' multiline, 's' dotall (default on), 'x' extended, 'A' anchored, 'E'
// dollar-end-only, 'U' ungreedy, 'X' obsolete. A construct RE2 cannot express
// (back-references, lookaround, atomic groups, possessive quantifiers, recursion, \G, \K,
// ...) is an error naming it.
func compilePCRE(text, flags string) (*regexp.Regexp, error) {
	src := text
	if toggled(flags, 'x') {
		src = stripExtended(src)
	}
	tr, err := translatePCRE(src)
	if err != nil {
		return nil, err
	}
	var f string
	if !toggled(flags, 'i') {
		f += "i"
	}
	if toggled(flags, 'm') {
		f += "m"
	}
	if !toggled(flags, 's') {
		f += "s"
	}
	if toggled(flags, 'U') {
		f += "U"
	}
	if f != "" {
		tr = "(?" + f + ")" + tr
	}
	if toggled(flags, 'A') {
		tr = `\A(?:` + tr + `)`
	}
	re, err := regexp.Compile(tr)
	if err != nil {
		return nil, fmt.Errorf("cannot compile %q (RE2 cannot express every PCRE construct): %v", text, err)
	}
	return re, nil
}

// translatePCRE rejects what RE2 would silently read differently: \1..\9 are PCRE
// back-references (RE2 would take \12 as octal), and \v is PCRE's vertical-space class
// (RE2's vertical tab).
func translatePCRE(s string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			n := s[i+1]
			i++
			switch {
			case n >= '1' && n <= '9':
				return "", fmt.Errorf("back-reference \\%c in %q is not supported by RE2", n, s)
			case n == 'v':
				if inClass {
					b.WriteString(`\n\x0b\f\r\x{85}\x{2028}\x{2029}`)
				} else {
					b.WriteString(`[\n\x0b\f\r\x{85}\x{2028}\x{2029}]`)
				}
			case n == 'Q':
				// \Q...\E is literal text; copy it untouched.
				end := strings.Index(s[i+1:], `\E`)
				if end < 0 {
					b.WriteString(s[i-1:])
					return b.String(), nil
				}
				b.WriteString(s[i-1 : i+1+end+2])
				i += end + 2
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(s) && s[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(s) && s[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '[' && inClass && i+1 < len(s) && s[i+1] == ':':
			end := strings.Index(s[i:], ":]")
			if end < 0 {
				b.WriteByte(c)
				continue
			}
			b.WriteString(s[i : i+end+2])
			i += end + 1
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// stripExtended removes what PCRE_EXTENDED ignores: whitespace outside character classes
// and '#' comments (to the end of the pattern, which holds no newline).
func stripExtended(s string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(s) && s[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(s) && s[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case isSpace(c):
		case c == '#':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseReplacement splits result text into literals and $n references with Postfix
// mac_parse(3) syntax: $$ is '$'; $name, ${name} and $(name) are references, and a
// reference must be a decimal number >= 1. It returns the largest number used.
func parseReplacement(s string) ([]replPart, int, error) {
	var parts []replPart
	var lit strings.Builder
	maxSub := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		i++
		var name string
		if i < len(s) && (s[i] == '{' || s[i] == '(') {
			open := s[i]
			cl := byte('}')
			if open == '(' {
				cl = ')'
			}
			level := 1
			j := i + 1
			for ; j < len(s) && level > 0; j++ {
				if s[j] == open {
					level++
				} else if s[j] == cl {
					level--
				}
			}
			if level > 0 {
				return nil, 0, fmt.Errorf("truncated macro reference: %q", s)
			}
			name = s[i+1 : j-1]
			i = j
		} else {
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
				j++
			}
			name = s[i:j]
			i = j
		}
		if name == "" {
			return nil, 0, fmt.Errorf("empty macro name: %q", s)
		}
		for k := 0; k < len(name); k++ {
			if name[k] < '0' || name[k] > '9' {
				return nil, 0, fmt.Errorf("non-numeric replacement index %q", name)
			}
		}
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 || n > 1<<16 {
			return nil, 0, fmt.Errorf("out of range replacement index %q", name)
		}
		if lit.Len() > 0 {
			parts = append(parts, replPart{lit: lit.String()})
			lit.Reset()
		}
		parts = append(parts, replPart{index: n})
		maxSub = max(maxSub, n)
	}
	if lit.Len() > 0 || len(parts) == 0 {
		parts = append(parts, replPart{lit: lit.String()})
	}
	return parts, maxSub, nil
}

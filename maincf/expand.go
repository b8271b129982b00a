package maincf

import (
	"fmt"
	"strconv"
	"strings"
)

// maxNesting is Postfix's bound on nested macro references (mac_expand.c); exceeding it
// is how an expansion loop ends.
const maxNesting = 100

// maxReferences bounds the references one expansion may visit. Postfix has no such
// bound, so "a1 = $a2$a2", "a2 = $a3$a3", ... would run for 2^100 steps; real
// configurations visit a few hundred.
const maxReferences = 100000

// macroErrorf returns an expansion error; Get adds the parameter and its position.
func macroErrorf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// expander expands macros against one Config. hidden names a parameter that is treated
// as undefined (see Config.raw).
type expander struct {
	c      *Config
	hidden string
	refs   int // references visited so far
}

func (c *Config) expand(s, hidden string) (string, error) {
	// Most values hold no macro; they cost nothing.
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	e := expander{c: c, hidden: hidden}
	if err := e.parse(&b, s, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

// parse is mac_parse() with mac_expand()'s callback: it copies literal text, turns "$$"
// into "$", and expands each $name, ${...} or $(...) reference. depth counts the
// references being expanded around s.
func (e *expander) parse(b *strings.Builder, s string, depth int) error {
	// Postfix checks the depth on every piece of text it handles, literal or reference.
	if depth > maxNesting && s != "" {
		return macroErrorf("unreasonable macro call nesting: %q", abbrev(s, 40))
	}
	whole := s
	for len(s) > 0 {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		if len(s) > 0 && s[0] == '$' {
			b.WriteByte('$')
			s = s[1:]
			continue
		}
		var expr string
		if len(s) > 0 && (s[0] == '{' || s[0] == '(') {
			open, close := s[0], byte('}')
			if open == '(' {
				close = ')'
			}
			level, j := 1, 1
			for ; j < len(s); j++ {
				if s[j] == open {
					level++
				} else if s[j] == close {
					if level--; level == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				return macroErrorf("truncated macro reference: %q", whole)
			}
			expr, s = s[1:j], s[j+1:]
		} else {
			j := 0
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			expr, s = s[:j], s[j:]
		}
		if expr == "" {
			return macroErrorf("empty macro name: %q", whole)
		}
		if e.refs++; e.refs > maxReferences {
			return macroErrorf("more than %d macro references: %q", maxReferences, abbrev(whole, 40))
		}
		if err := e.reference(b, expr, depth); err != nil {
			return err
		}
	}
	return nil
}

// reference expands the text of one reference: a name or a comparison, optionally
// followed by "?" and/or ":" and their operands.
func (e *expander) reference(b *strings.Builder, x string, depth int) error {
	var (
		value string // "" for an undefined name too: only emptiness matters below
		op    byte   // 0, '?' or ':'
		cp    string // what follows the name or comparison and op
	)
	if t := skipSpace(x); len(t) > 0 && t[0] == '{' {
		v, rest, err := e.relational(t, depth)
		if err != nil {
			return err
		}
		value, cp = v, rest
		if cp != "" {
			if cp[0] != '?' && cp[0] != ':' {
				return macroErrorf(`"?" or ":" expected at: "...}>>>%s"`, first20(cp))
			}
			op, cp = cp[0], cp[1:]
		}
	} else {
		t = skipSpace(x)
		var name string
		for i := 0; ; i++ {
			k := i + spaceSpan(t[i:])
			if k == len(t) {
				name, cp = t[:i], ""
				break
			}
			if t[k] == '?' || t[k] == ':' {
				name, op, cp = t[:i], t[k], t[k+1:]
				break
			}
			if !isNameChar(t[i]) {
				done := len(x) - len(t) + i
				return macroErrorf(`attribute name syntax error at: "...%s>>>%s"`, x[:done], first20(x[done:]))
			}
		}
		value, _ = e.c.raw(name, e.hidden)
	}

	switch op {
	case '?':
		var text string
		if t := skipSpace(cp); len(t) > 0 && t[0] == '{' {
			var err error
			if text, cp, err = extractCurly(t); err != nil {
				return err
			}
		} else {
			text, cp = cp, ""
		}
		if value != "" {
			if err := e.parse(b, text, depth+1); err != nil {
				return err
			}
		}
		if cp == "" {
			return nil
		}
		if cp[0] != ':' {
			return macroErrorf(`":" expected at: "...%s}>>>%s"`, text, first20(cp))
		}
		cp = cp[1:]
		// The ":" operand of "${name?{t1}:{t2}}" follows.
		fallthrough
	case ':':
		var text string
		if t := skipSpace(cp); len(t) > 0 && t[0] == '{' {
			var err error
			if text, cp, err = extractCurly(t); err != nil {
				return err
			}
		} else {
			text, cp = cp, ""
		}
		if value == "" {
			if err := e.parse(b, text, depth+1); err != nil {
				return err
			}
		}
		if cp != "" {
			return macroErrorf(`unexpected input at: "...%s}>>>%s"`, text, first20(cp))
		}
	default:
		if value != "" {
			return e.parse(b, value, depth+1)
		}
	}
	return nil
}

// Comparison operators, as mac_expand.c spells them.
const (
	opEQ = iota + 1
	opNE
	opLT
	opLE
	opGE
	opGT
)

func operator(s string) int {
	switch s {
	case "==":
		return opEQ
	case "!=":
		return opNE
	case "<":
		return opLT
	case "<=":
		return opLE
	case ">=":
		return opGE
	case ">":
		return opGT
	}
	return 0
}

// relational evaluates "{a} op {b}" at the start of t to "true" or "" and returns the
// text after it, leading whitespace skipped.
func (e *expander) relational(t string, depth int) (value, rest string, err error) {
	left, cp, err := extractCurly(t)
	if err != nil {
		return "", "", err
	}
	n := 0
	for n < len(cp) && strings.IndexByte("<>!=?+-*/~&|%", cp[n]) >= 0 {
		n++
	}
	opText := cp[:n]
	op := operator(opText)
	if op == 0 {
		return "", "", macroErrorf(`"==" or "!=" or "<" or "<=" or ">=" or ">" expected at: "...%s}>>>%s"`, left, first20(cp))
	}
	cp = cp[n:]
	level := false
	if len(cp) > 0 && isAlnum(cp[0]) {
		j := 1
		for j < len(cp) && isAlnum(cp[j]) {
			j++
		}
		if cp[:j] != "level" {
			return "", "", macroErrorf(`bad operator suffix at: "...%s>>>%s"`, opText, cp[:j])
		}
		level, cp = true, cp[j:]
	}
	t = skipSpace(cp)
	if len(t) == 0 || t[0] != '{' {
		return "", "", macroErrorf(`"{expression}" expected at: "...{%s} %s>>>%s"`, left, opText, first20(cp))
	}
	right, rest, err := extractCurly(t)
	if err != nil {
		return "", "", err
	}
	l, err := e.sub(left, depth+1)
	if err != nil {
		return "", "", err
	}
	r, err := e.sub(right, depth+1)
	if err != nil {
		return "", "", err
	}
	var delta int
	if level {
		delta, err = compareLevels(l, r)
	} else {
		delta, err = compareValues(l, r)
	}
	if err != nil {
		return "", "", err
	}
	var ok bool
	switch op {
	case opEQ:
		ok = delta == 0
	case opNE:
		ok = delta != 0
	case opLT:
		ok = delta < 0
	case opLE:
		ok = delta <= 0
	case opGE:
		ok = delta >= 0
	case opGT:
		ok = delta > 0
	}
	if ok {
		return "true", rest, nil
	}
	return "", rest, nil
}

// sub expands s on its own, for a comparison operand.
func (e *expander) sub(s string, depth int) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	var b strings.Builder
	if err := e.parse(&b, s, depth); err != nil {
		return "", err
	}
	return b.String(), nil
}

// compareValues compares as numbers when both sides are all digits, else as strings.
func compareValues(l, r string) (int, error) {
	if !allDigits(l) || !allDigits(r) {
		return strings.Compare(l, r), nil
	}
	a, err := strconv.ParseInt(l, 10, 64)
	if err != nil {
		return 0, macroErrorf("bad conversion: %s", l)
	}
	b, err := strconv.ParseInt(r, 10, 64)
	if err != nil {
		return 0, macroErrorf("bad conversion: %s", r)
	}
	switch {
	case a < b:
		return -1, nil
	case a > b:
		return 1, nil
	}
	return 0, nil
}

// compareLevels compares two Postfix compatibility levels, "major[.minor[.patch]]".
func compareLevels(l, r string) (int, error) {
	a, err := parseLevel(l)
	if err != nil {
		return 0, err
	}
	b, err := parseLevel(r)
	if err != nil {
		return 0, err
	}
	for i := range a {
		switch {
		case a[i] < b[i]:
			return -1, nil
		case a[i] > b[i]:
			return 1, nil
		}
	}
	return 0, nil
}

func parseLevel(s string) ([3]uint64, error) {
	var v [3]uint64
	rest := s
	for i := 0; i < 3; i++ {
		part := rest
		dot := strings.IndexByte(rest, '.')
		if dot >= 0 {
			part, rest = rest[:dot], rest[dot+1:]
		}
		n, err := strconv.ParseUint(part, 10, 63)
		if err != nil || !allDigits(part) {
			break
		}
		v[i] = n
		if dot < 0 {
			return v, nil
		}
	}
	return v, macroErrorf("malformed compatibility level syntax: %q", s)
}

// extractCurly returns the text inside the balanced braces that open t, and what
// follows them with leading whitespace skipped.
func extractCurly(t string) (payload, rest string, err error) {
	level := 1
	for j := 1; j < len(t); j++ {
		switch t[j] {
		case '{':
			level++
		case '}':
			if level--; level == 0 {
				return t[1:j], skipSpace(t[j+1:]), nil
			}
		}
	}
	return "", "", macroErrorf("unbalanced {} in attribute expression: %q", t)
}

// isExprSpace is mac_expand.c's whitespace set, narrower than isSpace.
func isExprSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\n'
}

func spaceSpan(s string) int {
	i := 0
	for i < len(s) && isExprSpace(s[i]) {
		i++
	}
	return i
}

func skipSpace(s string) string { return s[spaceSpan(s):] }

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

func isNameChar(b byte) bool { return isAlnum(b) || b == '_' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// first20 is the "%.20s" Postfix uses to show where a parse stopped.
func first20(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

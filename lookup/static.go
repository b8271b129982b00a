package lookup

import (
	"context"
	"fmt"
	"strings"
)

// staticTable answers every key with one value (Postfix dict_static.c).
type staticTable struct {
	base
	value string
}

func (t *staticTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	return t.value, true, nil
}

func openStatic(spec, name string) (Table, error) {
	value, err := StaticValue(name)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	return &staticTable{base: base{name: spec, fixed: true}, value: value}, nil
}

// StaticValue is the value every lookup in static:NAME answers: NAME itself, or the text
// inside "{...}" without the whitespace just inside the braces ("static:{ a b }" is
// "a b"). A "{" with no matching "}", or text after it, gives an error wrapping
// ErrSyntax.
func StaticValue(name string) (string, error) {
	if !strings.HasPrefix(name, "{") {
		return name, nil
	}
	v, err := extpar(name)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, ErrSyntax)
	}
	return v, nil
}

// extpar strips "{" and its matching "}" from s and the whitespace just inside them
// (Postfix extpar with EXTPAR_FLAG_STRIP). Text after the closing brace is an error.
func extpar(s string) (string, error) {
	n := balpar(s)
	if n == 0 {
		return "", fmt.Errorf("missing '}' in %q", s)
	}
	if n != len(s) {
		return "", fmt.Errorf("syntax error after '}' in %q", s)
	}
	return trimSpace(s[1 : n-1]), nil
}

// balpar returns the length of the balanced "{...}" that s starts with, or 0.
func balpar(s string) int {
	if s == "" || s[0] != '{' {
		return 0
	}
	level := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			level++
		case '}':
			level--
			if level == 0 {
				return i + 1
			}
		}
	}
	return 0
}

// inlineTable is inline:{ k1=v1, { k2 = v with, comma } } (Postfix dict_inline.c).
type inlineTable struct {
	base
	m map[string]string
}

func (t *inlineTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	v, ok := t.m[key]
	return v, ok, nil
}

func openInline(spec, name string, fold bool) (Table, error) {
	fail := func(why string) (Table, error) {
		return nil, fmt.Errorf("table %s: %s; need \"inline:{name=value...}\": %w", spec, why, ErrSyntax)
	}
	n := balpar(name)
	if n == 0 || n != len(name) || n == 2 {
		return fail("bad syntax")
	}
	m := make(map[string]string)
	rest := name[1 : n-1]
	for {
		tok, r, ok := nextToken(rest, ", \t\r\n")
		if !ok {
			break
		}
		rest = r
		if tok[0] == '{' {
			inner, err := extpar(tok)
			if err != nil {
				return fail(err.Error())
			}
			tok = inner
		}
		k, v, err := splitNameval(tok)
		if err != nil {
			return fail(err.Error())
		}
		if fold {
			k = strings.ToLower(k)
		}
		// No duplicate check in dict_inline.c: the last value wins.
		m[k] = v
	}
	if len(m) == 0 {
		return fail("empty table")
	}
	return &inlineTable{base: base{name: spec, fixed: true}, m: m}, nil
}

// splitNameval splits "name = value" (Postfix split_qnameval): the name ends at
// whitespace or '=' outside double quotes, a backslash protects the next character, and
// quotes and backslashes stay in the name; the value is trimmed and may be empty.
func splitNameval(s string) (name, value string, err error) {
	s = trimSpace(s)
	if s == "" || s[0] == '=' {
		return "", "", fmt.Errorf("missing attribute name")
	}
	inQuotes := false
	i := 0
scan:
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
			if i >= len(s) {
				break scan
			}
		case c == '"':
			inQuotes = !inQuotes
		case !inQuotes && (isSpace(c) || c == '='):
			break scan
		}
	}
	if inQuotes {
		return "", "", fmt.Errorf("unbalanced '\"' in attribute name")
	}
	if i > len(s) {
		i = len(s)
	}
	name = s[:i]
	rest := strings.TrimLeft(s[i:], " \t\r\n\v\f")
	if rest == "" || rest[0] != '=' {
		return "", "", fmt.Errorf("missing '=' after attribute name")
	}
	return name, trimSpace(rest[1:]), nil
}

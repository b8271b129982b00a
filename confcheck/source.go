package confcheck

import (
	"os"
	"strings"
)

// entry is one key and value of a lookup table's source text, where it was written.
type entry struct {
	key, value string
	line       int
}

// readEntries returns the entries of a postmap(1) source file in file order, as written
// (keys not folded, duplicates kept): the check looks at what the administrator wrote,
// while lookup (which opens the same file for the verdicts) applies Postfix's rules to
// it. Lines that postmap skips are skipped here too; lookup reports them.
func readEntries(file string) ([]entry, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []entry
	logical(string(b), func(text string, line int) {
		if isSpace(text[0]) {
			return
		}
		quoted, esc := false, false
		i := 0
		for ; i < len(text); i++ {
			c := text[i]
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				quoted = !quoted
			case !quoted && isSpace(c):
				goto split
			}
		}
		return // no value: postmap skips it with a warning
	split:
		if quoted {
			return
		}
		value := strings.Trim(text[i:], " \t\r\n\v\f")
		if value == "" {
			return
		}
		out = append(out, entry{key: text[:i], value: value, line: line})
	})
	return out, nil
}

// logical calls fn with each logical line of a Postfix source text (readllines(3)) and
// the number of its first physical line: blank lines and lines whose first non-blank is
// "#" are dropped, a line starting with whitespace continues the one before.
func logical(data string, fn func(text string, line int)) {
	var cur strings.Builder
	first := 0
	flush := func() {
		if cur.Len() > 0 {
			fn(cur.String(), first)
			cur.Reset()
		}
	}
	for i, phys := range strings.Split(data, "\n") {
		t := strings.TrimLeft(phys, " \t\r\v\f")
		if t == "" || t[0] == '#' {
			continue
		}
		if t == phys {
			flush()
			first = i + 1
		} else if cur.Len() == 0 {
			first = i + 1
		}
		cur.WriteString(phys)
	}
	flush()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

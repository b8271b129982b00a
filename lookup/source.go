package lookup

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"vdeliver/internal/rawfile"
)

// logicalLines splits a source file into Postfix logical lines (readllines(3)), calling fn
// with each line's text and the number of its first physical line. warn receives the
// lines readllines drops.
func logicalLines(path, data string, warn func(Warning), fn func(text string, line int)) {
	pos, lineno := 0, 0
	var buf strings.Builder
	for pos < len(data) {
		first, parts := 0, 0
		var single string
		buf.Reset()
		for pos < len(data) {
			end := strings.IndexByte(data[pos:], '\n')
			var phys string
			if end < 0 {
				phys, pos = data[pos:], len(data)
			} else {
				phys, pos = data[pos:pos+end], pos+end+1
			}
			lineno++
			i := 0
			for i < len(phys) && isSpace(phys[i]) {
				i++
			}
			// A blank line or one whose first non-blank is '#' is dropped, even in
			// the middle of a logical line.
			if i < len(phys) && phys[i] != '#' {
				if parts == 0 {
					first, single = lineno, phys
				} else {
					if parts == 1 {
						buf.WriteString(single)
					}
					buf.WriteString(phys)
				}
				parts++
			}
			// The logical line goes on while the next physical line starts with
			// whitespace or '#'.
			if parts > 0 && pos < len(data) && data[pos] != '#' && !isSpace(data[pos]) {
				break
			}
		}
		if parts == 0 {
			return
		}
		text := single
		if parts > 1 {
			text = buf.String()
		}
		if isSpace(text[0]) {
			warn(Warning{File: path, Line: first, Msg: fmt.Sprintf("logical line must not start with whitespace: %q", abbrev(text))})
			continue
		}
		fn(text, first)
	}
}

func abbrev(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

// entry is one key/value pair of a source file and where it was defined.
type entry struct {
	key, value string
	line       int
}

// parseSource parses the postmap(1) source format, calling add for every usable entry in
// file order. fold lower-cases keys as postmap does for fixed-key types; asWritten, when
// not nil, is called first with the entry as written, before folding.
func parseSource(path, data string, fold bool, warn func(Warning), asWritten func(Entry), add func(entry)) {
	arena := foldArena{hint: len(data) / 2}
	logicalLines(path, data, warn, func(text string, line int) {
		if i := strings.IndexByte(text, 0); i >= 0 {
			warn(Warning{File: path, Line: line, Msg: "text after null byte may be ignored"})
			text = text[:i]
		}
		// smtputf8_enable=yes, the default since compatibility_level 1.
		if !isASCII(text) && !utf8.ValidString(text) {
			warn(Warning{File: path, Line: line, Msg: fmt.Sprintf("non-UTF-8 input %q -- ignoring this line", text)})
			return
		}
		// The key ends at the first whitespace outside double quotes; a backslash
		// protects the next character for this scan only. Quotes and backslashes stay
		// in the key (postmap.c).
		inQuotes := false
		k := 0
	scan:
		for ; k < len(text); k++ {
			switch c := text[k]; {
			case c == '\\':
				k++
				if k >= len(text) {
					break scan
				}
			case isSpace(c):
				if !inQuotes {
					break scan
				}
			case c == '"':
				inQuotes = !inQuotes
			}
		}
		if inQuotes {
			warn(Warning{File: path, Line: line, Msg: fmt.Sprintf("unbalanced '\"' in '%s' -- ignoring this line", text)})
			return
		}
		key, value := text, ""
		if k < len(text) {
			key, value = text[:k], trimSpace(text[k:])
		}
		if key == "" || value == "" {
			warn(Warning{File: path, Line: line, Msg: "expected format: key whitespace value"})
			return
		}
		if key[len(key)-1] == ':' {
			warn(Warning{File: path, Line: line, Msg: "record is in \"key: value\" format; is this an alias file?"})
		}
		if asWritten != nil {
			asWritten(Entry{Key: key, Value: value, Line: line})
		}
		if fold {
			key = arena.lower(key)
		}
		add(entry{key: key, value: value, line: line})
	})
}

// foldArena lower-cases keys into one growing buffer, so that folding a 100,000-key
// table costs a few allocations instead of one per key.
type foldArena struct {
	b    strings.Builder
	hint int // bytes to reserve at the first key that needs folding (most tables have none)
}

func (a *foldArena) lower(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if !upper {
		return s
	}
	if a.b.Cap() == 0 {
		a.b.Grow(a.hint)
	}
	// Bytes already written are never changed by later writes, so the substring stays
	// valid while the builder grows.
	n := a.b.Len()
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		a.b.WriteByte(c)
	}
	return a.b.String()[n:]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// maxSourceFile bounds a table file read whole (hash:, btree:, texthash: sources,
// regexp:, pcre:): about 5,000,000 entries, held in memory about twice over. A file that
// claims more (sparse, or /dev/zero through a symlink) must not decide how much memory a
// delivery asks for: the runtime cannot survive a refused allocation. cdb: has no such
// bound, as it is never read whole.
const maxSourceFile = 256 << 20

// readStable reads a whole table file. It reads again when the file changed while it was
// being read (an editor writing in place), so a table is never half a file.
func readStable(path string) (string, os.FileInfo, error) {
	for range 3 {
		f, err := rawfile.Open(path)
		if err != nil {
			return "", nil, err
		}
		before, err := f.Stat()
		if err != nil {
			f.Close()
			return "", nil, err
		}
		if before.IsDir() {
			f.Close()
			return "", nil, fmt.Errorf("%s: is a directory: %w", path, ErrSyntax)
		}
		if before.Size() > maxSourceFile {
			f.Close()
			return "", nil, fmt.Errorf("%s: %d bytes, larger than %d: use cdb: for a table this large", path, before.Size(), maxSourceFile)
		}
		// A strings.Builder grown to the size holds the file once: string([]byte) would
		// copy it, and a 1,000,000-line table would briefly take twice its size.
		var b strings.Builder
		b.Grow(int(before.Size()) + 1)
		// Through a buffer of the file's size (4 KiB to 64 KiB: a file that says it is
		// empty may not be, /proc or a FIFO), not io.Copy: *os.File's WriteTo would take a
		// detour and a fresh 32 KiB buffer for every table.
		buf := make([]byte, min(max(before.Size()+1, 4<<10), 64<<10))
		// Never more than one byte past the bound: a file that says it is small may not be.
		if _, err := io.CopyBuffer(&b, onlyReader{io.LimitReader(f, maxSourceFile+1)}, buf); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("read %s: %w", path, err)
		}
		if b.Len() > maxSourceFile {
			f.Close()
			return "", nil, fmt.Errorf("%s: larger than %d bytes: use cdb: for a table this large", path, maxSourceFile)
		}
		after, err := f.Stat()
		f.Close()
		if err != nil {
			return "", nil, err
		}
		if after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) && int64(b.Len()) == after.Size() {
			return b.String(), after, nil
		}
	}
	return "", nil, fmt.Errorf("%s: file keeps changing while it is read", path)
}

// onlyReader hides every method but Read, so io.CopyBuffer uses the buffer it is given.
type onlyReader struct{ io.Reader }

// textTable is a texthash: table held in memory.
type textTable struct {
	base
	m map[string]string
	// broken makes every lookup fail: texthash with a duplicate key (docs/behaviour.md §9.1).
	broken error
}

func (t *textTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	if t.broken != nil {
		return "", false, t.broken
	}
	v, ok := t.m[key]
	return v, ok, nil
}

// openTexthash reads a texthash: table: the same source format, keys not folded, and a
// duplicate key makes the table unusable, as for a Postfix daemon (dict_thash.c with no
// duplicate policy).
func openTexthash(spec, path string, opt *Options) (Table, error) {
	data, _, err := readStable(path)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", spec, err)
	}
	t := &textTable{base: base{name: spec, fixed: true}, m: make(map[string]string, strings.Count(data, "\n")+1)}
	parseSource(path, data, false, opt.warn, opt.Entries, func(e entry) {
		if _, dup := t.m[e.key]; dup {
			if t.broken == nil {
				t.broken = fmt.Errorf("%s:%d: duplicate entry: %q: %w", path, e.line, e.key, ErrSyntax)
				opt.warn(Warning{File: path, Line: e.line, Kind: WarnDuplicate, Key: e.key, Msg: fmt.Sprintf("duplicate entry: %q: table unusable", e.key)})
			}
			return
		}
		t.m[e.key] = e.value
	})
	return t, nil
}

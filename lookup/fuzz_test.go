package lookup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seedFromGolden adds the table section of every golden file of the given types.
func seedFromGolden(f *testing.F, add func(table, queries string), types ...string) {
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		s := string(b)
		spec, table := section(s, "spec"), section(s, "table")
		for _, typ := range types {
			if strings.TrimSpace(spec) == typ && table != "" {
				add(table, section(s, "queries"))
			}
		}
	}
}

// section returns the body of "-- name --" in a txtar text.
func section(s, name string) string {
	_, rest, ok := strings.Cut(s, "\n-- "+name+" --\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n-- "); i >= 0 {
		return rest[:i+1]
	}
	return rest
}

// FuzzParseSource: the source parser never panics; every key it stores is folded and
// looks up to the value of its first definition.
func FuzzParseSource(f *testing.F) {
	seedFromGolden(f, func(table, _ string) { f.Add(table) }, "source", "texthash")
	f.Add("a b\n  c\n#x\n\"q k\" v\r\n")
	f.Fuzz(func(t *testing.T, data string) {
		var entries []entry
		var written []Entry
		lines := strings.Count(data, "\n") + 1
		parseSource("f", data, true, func(w Warning) {
			// A warning names the file and a line of it, in fields.
			if w.File != "f" || w.Line < 1 || w.Line > lines || w.Msg == "" || w.String() != fmt.Sprintf("f:%d: %s", w.Line, w.Msg) {
				t.Fatalf("warning %#v: want f:1..%d", w, lines)
			}
		}, func(e Entry) { written = append(written, e) }, func(e entry) {
			// Each entry comes right after itself as written, which folds to it.
			w := written[len(written)-1]
			if len(written) != len(entries)+1 || e.line < 1 || e.line > lines || w.Line != e.line || w.Value != e.value || strings.ToLower(w.Key) != e.key {
				t.Fatalf("entry %+v after %+v as written: line out of 1..%d, or the written key does not fold to the key", e, w, lines)
			}
			entries = append(entries, e)
		})
		tab := &textTable{base: base{name: "hash:f", fixed: true}, m: map[string]string{}}
		parseSource("f", data, true, func(Warning) {}, nil, func(e entry) {
			if _, dup := tab.m[e.key]; !dup {
				tab.m[e.key] = e.value
			}
		})
		first := map[string]string{}
		for _, e := range entries {
			if e.key != strings.ToLower(e.key) {
				t.Fatalf("key %q not folded", e.key)
			}
			if e.key == "" || e.value == "" || e.value != trimSpace(e.value) {
				t.Fatalf("bad entry %+v", e)
			}
			if strings.IndexByte(e.key+e.value, 0) >= 0 || strings.ContainsAny(e.key, " \t\n") && !strings.ContainsAny(e.key, "\"\\") {
				t.Fatalf("entry %+v has NUL or unquoted whitespace in its key", e)
			}
			if _, ok := first[e.key]; !ok {
				first[e.key] = e.value
			}
		}
		for k, want := range first {
			v, found, err := tab.Lookup(context.Background(), k)
			if !found || err != nil || v != want {
				t.Fatalf("Lookup(%q) = %q, %v, %v; want %q", k, v, found, err, want)
			}
		}
	})
}

var lineRef = regexp.MustCompile(`^t:[0-9]+: `)

// FuzzRegexpTable: parsing never panics, every error names a line and wraps ErrSyntax,
// and lookups of any key never panic.
func FuzzRegexpTable(f *testing.F) {
	seedFromGolden(f, func(table, queries string) {
		for _, q := range strings.Split(queries, "\n") {
			f.Add(table, q)
		}
	}, "regexp", "pcre")
	f.Add("/(a)(b)?/ $1-$2-$$\nif !/x/\n/[[:alpha:]]/x $1\nendif\n", "ab")
	f.Fuzz(func(t *testing.T, table, key string) {
		for _, pcre := range []bool{false, true} {
			for _, paranoid := range []bool{false, true} {
				tab, err := parseRegexpTable("regexp:t", "t", table, pcre, &Options{Paranoid: paranoid})
				if err != nil {
					if !errors.Is(err, ErrSyntax) || !lineRef.MatchString(err.Error()) {
						t.Fatalf("error without line or ErrSyntax: %v", err)
					}
					continue
				}
				v, found, err := tab.Lookup(context.Background(), key)
				if err != nil || (!found && v != "") {
					t.Fatalf("Lookup = %q, %v, %v", v, found, err)
				}
			}
		}
	})
}

// FuzzTableSpec: ParseSpec(type+":"+name) gives back type and name for every valid type
// (one without a colon),
// and Open never panics on any spec.
func FuzzTableSpec(f *testing.F) {
	f.Add("hash", "/etc/postfix/vmailbox")
	f.Add("static", "{ a b }")
	f.Add("inline", "{a=1, { b = x y }}")
	f.Add("proxy", "static:x")
	f.Fuzz(func(t *testing.T, typ, name string) {
		if strings.Contains(typ, ":") {
			// The first colon ends the type, so there is nothing to round-trip.
			return
		}
		spec := typ + ":" + name
		gotT, gotN, err := ParseSpec(spec)
		valid := typ != "" && !strings.ContainsFunc(typ, func(r rune) bool {
			return !(r < 128 && (isAlnum(byte(r)) || r == '_' || r == '-'))
		})
		if valid != (err == nil) {
			t.Fatalf("ParseSpec(%q) error %v, valid type %v", spec, err, valid)
		}
		if err == nil && (gotT != typ || gotN != name) {
			t.Fatalf("ParseSpec(%q) = %q, %q", spec, gotT, gotN)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("ParseSpec error %v does not wrap ErrSyntax", err)
		}
		// Only the in-memory types: the others would touch files or run postmap.
		if typ == "static" || typ == "inline" {
			tab, err := Open(spec, Options{})
			if err == nil {
				_, _, _ = tab.Lookup(context.Background(), fmt.Sprint(len(name)))
			}
		}
	})
}

// FuzzStaticValue: a static: value is its name unless the name starts with "{"; then it
// is the text inside one balanced pair of braces, trimmed, and Open answers every key
// with the same value.
func FuzzStaticValue(f *testing.F) {
	for _, seed := range []string{"5000", "{ a b }", "{}", "{{x}}", "{x} y", "{x", " {x}", "{ {a} b }"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v, err := StaticValue(name)
		tab, openErr := Open("static:"+name, Options{})
		if (err == nil) != (openErr == nil) {
			t.Fatalf("StaticValue(%q) error %v, Open error %v", name, err, openErr)
		}
		if err != nil {
			if !strings.HasPrefix(name, "{") || !errors.Is(err, ErrSyntax) || !errors.Is(openErr, ErrSyntax) {
				t.Fatalf("StaticValue(%q) = %v: only a name starting with { fails, with ErrSyntax", name, err)
			}
			return
		}
		defer tab.Close()
		if got, hit, err := tab.Lookup(context.Background(), "any@example.com"); got != v || !hit || err != nil {
			t.Fatalf("static:%s answers %q, %v, %v; StaticValue says %q", name, got, hit, err, v)
		}
		if !strings.HasPrefix(name, "{") {
			if v != name {
				t.Fatalf("StaticValue(%q) = %q; want the name itself", name, v)
			}
			return
		}
		if !strings.HasSuffix(name, "}") || v != trimSpace(name[1:len(name)-1]) {
			t.Fatalf("StaticValue(%q) = %q; want the trimmed text inside the braces", name, v)
		}
	})
}

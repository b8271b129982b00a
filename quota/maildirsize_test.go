package quota

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, data string
		ok         bool
		limit      Limit
		limitOK    bool
		usage      Usage
		lines      int
	}{
		{"dovecot", "1000S,10C\n0 0\n18 1\n", true, Limit{1000, 10}, true, Usage{18, 1}, 2},
		{"courier padded", "10000000S\n        5120            3\n         100            1\n", true, Limit{Bytes: 10000000}, true, Usage{5220, 4}, 2},
		{"removal", "5C\n300 3\n-100 -1\n", true, Limit{Count: 5}, true, Usage{200, 2}, 2},
		// Dovecot reads "5C\r" as no item at all; the counts are fine.
		{"crlf", "5C\r\n300 3\r\n", true, Limit{}, false, Usage{300, 3}, 1},
		{"signs", "5C\n+300 +3\n", true, Limit{Count: 5}, true, Usage{300, 3}, 1},
		{"tabs", "5C\n300\t3\n", true, Limit{Count: 5}, true, Usage{300, 3}, 1},
		{"unfinished last line", "1000S\n100 1\n50", true, Limit{Bytes: 1000}, true, Usage{100, 1}, 1},
		{"no limit", "0S\n100 1\n", true, Limit{}, true, Usage{100, 1}, 1},
		{"lenient header", "1000S,junk,5C\n1 1\n", true, Limit{1000, 5}, false, Usage{1, 1}, 1},
		{"header repeats", "1000S,2000S\n1 1\n", true, Limit{Bytes: 2000}, true, Usage{1, 1}, 1},

		{"empty", "", false, Limit{}, false, Usage{}, 0},
		{"no newline", "1000S", false, Limit{}, false, Usage{}, 0},
		{"header only", "1000S\n", false, Limit{Bytes: 1000}, true, Usage{}, 0},
		{"one number", "1000S\n100\n", false, Limit{Bytes: 1000}, true, Usage{}, 1},
		{"three numbers", "1000S\n100 1 1\n", false, Limit{Bytes: 1000}, true, Usage{}, 1},
		{"word", "1000S\n100 one\n", false, Limit{Bytes: 1000}, true, Usage{}, 1},
		{"empty line", "1000S\n100 1\n\n", false, Limit{Bytes: 1000}, true, Usage{100, 1}, 2},
		{"negative total", "1000S\n100 1\n-200 -1\n", false, Limit{Bytes: 1000}, true, Usage{-100, 0}, 2},
		{"negative count", "1000S\n100 1\n0 -2\n", false, Limit{Bytes: 1000}, true, Usage{100, -1}, 2},
		{"NUL", "1000S\n100\x00 1\n", false, Limit{Bytes: 1000}, true, Usage{}, 0},
		{"NUL in header", "1000\x00S\n100 1\n", false, Limit{}, false, Usage{}, 0},
		{"overflow", "1000S\n9223372036854775807 1\n1 1\n", false, Limit{Bytes: 1000}, true, Usage{9223372036854775807, 1}, 2},
		{"too big a number", "1000S\n9223372036854775808 1\n", false, Limit{Bytes: 1000}, true, Usage{}, 1},
	}
	for _, c := range cases {
		got, ok := parseFile([]byte(c.data))
		want := fileContents{c.limit, c.limitOK, c.usage, c.lines}
		if ok != c.ok || got != want {
			t.Errorf("%s: parseFile(%q) = %+v, %v; want %+v, %v", c.name, c.data, got, ok, want, c.ok)
		}
	}
}

// TestRecalculationRules: when Reserve trusts maildirsize and when it counts the Maildir
// (which holds 300 bytes in 3 messages, while the files below say otherwise).
func TestRecalculationRules(t *testing.T) {
	t.Parallel()
	now := time.Now()
	fresh, old := now.Add(-time.Minute), now.Add(-staleAfter-time.Second)
	for _, n := range []int{maxFileSize - 1, maxFileSize} {
		if len(sizedFile(n)) != n {
			t.Fatalf("sizedFile(%d) has %d bytes", n, len(sizedFile(n)))
		}
	}
	cases := []struct {
		name   string
		file   string // "" for none
		mtime  time.Time
		limit  string // "" for nil
		size   int64
		recalc bool
		over   bool
	}{
		{"missing", "", fresh, "1000S", 10, true, false},
		{"trusted", "1000S\n100 1\n", fresh, "1000S", 10, false, false},
		{"trusted with the file's limit", "1000S\n100 1\n", fresh, "", 10, false, false},
		{"5119 bytes", sizedFile(maxFileSize - 1), fresh, "1000S", 10, false, false},
		{"5120 bytes", sizedFile(maxFileSize), fresh, "1000S", 10, true, false},
		{"broken line", "1000S\n100 x\n", fresh, "1000S", 10, true, false},
		{"negative", "1000S\n-100 -1\n", fresh, "1000S", 10, true, false},
		{"another limit", "2000S\n100 1\n", fresh, "1000S", 10, true, false},
		{"same limit written otherwise", "0C,1000S\n100 1\n", fresh, "1000S", 10, false, false},
		{"broken header, table limit", "1000S,x\n100 1\n", fresh, "1000S", 10, true, false},
		// Over quota: one fresh line is believed, no recalculation.
		{"over, one fresh line", "1000S\n990 1\n", fresh, "1000S", 20, false, true},
		// Over quota from a 15-minute-old line, or from several lines: counted again.
		{"over, one old line", "1000S\n990 1\n", old, "1000S", 20, true, false},
		{"over, two lines", "1000S\n900 1\n90 1\n", fresh, "1000S", 20, true, false},
		// Not over: old or long files are used as they are.
		{"old but fits", "1000S\n100 1\n", old, "1000S", 20, false, false},
		{"long but fits", "1000S\n100 1\n1 1\n1 1\n", fresh, "1000S", 20, false, false},
		// A message too big even for the counted Maildir.
		{"over after counting", "1000S\n900 1\n90 1\n", fresh, "1000S", 701, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			md := maildirAt(t, base, "u")
			for _, n := range []string{"a,S=100", "b,S=100", "c,S=100"} {
				putMessage(t, md, "cur", n, 0)
			}
			p := filepath.Join(md, FileName)
			if c.file != "" {
				if err := os.WriteFile(p, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, c.mtime, c.mtime); err != nil {
					t.Fatal(err)
				}
			}
			var l *Limit
			if c.limit != "" {
				l = lim(c.limit)
			}
			r, err := Reserve(openRoot(t, base), "u", l, c.size, now)
			if c.over != (err != nil) {
				t.Fatalf("Reserve: %v, %v; over quota %v", r, err, c.over)
			}
			if r != nil {
				r.Cancel()
			}
			got := readFile(t, p)
			recalculated := strings.HasPrefix(got, "1000S\n300 3\n")
			if recalculated != c.recalc {
				t.Errorf("recalculated %v, want %v; maildirsize:\n%.200s", recalculated, c.recalc, got)
			}
			if !c.recalc && !strings.HasPrefix(got, c.file) {
				t.Errorf("maildirsize rewritten:\n%.200s", got)
			}
		})
	}
}

// sizedFile is a valid maildirsize of exactly n bytes saying 100 bytes in 1 message.
func sizedFile(n int) string {
	s := "1000S\n100 1\n"
	for n-len(s) >= 8 {
		s += "0 0\n"
	}
	return s + "0" + strings.Repeat(" ", n-len(s)-3) + "0\n"
}

// FuzzMaildirsize: parseFile never panics and never reports a usable file with negative
// totals; what formatFile writes reads back to the same limit and usage, one line.
func FuzzMaildirsize(f *testing.F) {
	f.Add([]byte("1000S,10C\n0 0\n18 1\n"), int64(0), int64(0), int64(1000), int64(10))
	f.Add([]byte("5C\r\n  300 3\n-1 -1\n"), int64(5), int64(1), int64(0), int64(5))
	f.Add([]byte("\x00\n\n"), int64(1<<62), int64(1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, ub, uc, lb, lc int64) {
		c, ok := parseFile(data)
		if ok && (c.usage.Bytes < 0 || c.usage.Count < 0 || c.lines < 1) {
			t.Fatalf("parseFile(%q) = %+v, ok", data, c)
		}
		if ok && bytes.IndexByte(data, 0) >= 0 && bytes.IndexByte(data, 0) < bytes.LastIndexByte(data, '\n') {
			t.Fatalf("parseFile(%q) trusted a NUL byte", data)
		}
		if ub < 0 || uc < 0 || lb < 0 || lc < 0 {
			return
		}
		l, u := Limit{lb, lc}, Usage{ub, uc}
		out := formatFile(l, u)
		back, ok := parseFile(out)
		if !ok || !back.limitOK || back.limit != l || back.usage != u || back.lines != 1 {
			t.Fatalf("formatFile(%v, %+v) = %q reads back as %+v, %v", l, u, out, back, ok)
		}
		// An appended delta adds up.
		out = appendDelta(out, -ub, -uc)
		back, ok = parseFile(out)
		if !ok || back.usage != (Usage{}) || back.lines != 2 {
			t.Fatalf("%q reads back as %+v, %v", out, back, ok)
		}
	})
}

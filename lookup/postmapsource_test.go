package lookup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const dupSource = "B@x one\n" +
	"a@x first\n" +
	"# comment\n" +
	"A@X second\n" +
	"c@x c\n" +
	"  continued\n" +
	"b@x two\n" +
	"a@x third"

func TestReadSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, []byte(dupSource), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		opt   SourceOptions
		want  []Entry
		warns []string
	}{
		{
			name: "first wins with warnings",
			opt:  SourceOptions{Dups: DupWarn},
			want: []Entry{{"b@x", "one", 1}, {"a@x", "first", 2}, {"c@x", "c  continued", 5}},
			warns: []string{
				path + `:4: duplicate entry: "a@x"`,
				path + `:7: duplicate entry: "b@x"`,
				path + `:8: duplicate entry: "a@x"`,
			},
		},
		{
			// postmap -w adds every record; the reader answers with the first.
			name: "every record, silently",
			opt:  SourceOptions{Dups: DupIgnore},
			want: []Entry{{"b@x", "one", 1}, {"a@x", "first", 2}, {"a@x", "second", 4}, {"c@x", "c  continued", 5}, {"b@x", "two", 7}, {"a@x", "third", 8}},
		},
		{
			// postmap -r deletes the old record and appends the new one: the survivors
			// are ordered by their last definition.
			name: "last wins in the order postmap stores it",
			opt:  SourceOptions{Dups: DupReplace},
			want: []Entry{{"c@x", "c  continued", 5}, {"b@x", "two", 7}, {"a@x", "third", 8}},
		},
		{
			name: "no folding",
			opt:  SourceOptions{NoFold: true},
			want: []Entry{{"B@x", "one", 1}, {"a@x", "first", 2}, {"A@X", "second", 4}, {"c@x", "c  continued", 5}, {"b@x", "two", 7}},
			warns: []string{
				path + `:8: duplicate entry: "a@x"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warns []string
			var progress [][2]int
			opt := tc.opt
			opt.Warn = func(s string) { warns = append(warns, s) }
			opt.Progress = func(line, lines int) { progress = append(progress, [2]int{line, lines}) }
			src, err := ReadSource(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, src.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warns, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			// 8 physical lines, the last without a newline.
			if src.Lines != 8 || src.Info.Mode().Perm() != 0o640 {
				t.Errorf("Lines %d, mode %v; want 8, 0640", src.Lines, src.Info.Mode().Perm())
			}
			want := [][2]int{{1, 8}, {2, 8}, {4, 8}, {5, 8}, {7, 8}, {8, 8}, {8, 8}}
			if diff := cmp.Diff(want, progress); diff != "" {
				t.Errorf("progress (-want +got):\n%s", diff)
			}
		})
	}
}

// The lines postmap skips are skipped with the same warnings the hash: reader gives.
func TestReadSourceWarnings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, []byte("novalue\n\"open x\nok v\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warns []string
	src, err := ReadSource(path, SourceOptions{Warn: func(s string) { warns = append(warns, s) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		path + ":1: expected format: key whitespace value",
		path + `:2: unbalanced '"' in '"open x' -- ignoring this line`,
	}
	if diff := cmp.Diff(want, warns); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Entry{{"ok", "v", 3}}, src.Entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestReadSourceErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := ReadSource(filepath.Join(dir, "missing"), SourceOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := ReadSource(dir, SourceOptions{}); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v, want ErrSyntax, \"is a directory\"", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := ReadSource(empty, SourceOptions{})
	if err != nil || len(src.Entries) != 0 || src.Lines != 0 {
		t.Errorf("empty file: %+v, %v; want no entries, 0 lines", src, err)
	}
}

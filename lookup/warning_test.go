package lookup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWarningFields: a warning carries its file, line, kind and key in fields, and its
// text (what Warn receives) is the same as before there were fields.
func TestWarningFields(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t")
	text := "  orphan\na@x 1\nA@x 2\nb@x 3\nnovalue\na@x 4\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	// texthash: keys are not folded, so A@x is a key of its own; a@x at line 6 is the
	// duplicate that makes the table unusable.
	var got []Warning
	var texts []string
	var entries []Entry
	tab, err := Open("texthash:"+path, Options{OnWarning: func(w Warning) { got = append(got, w) }, Entries: func(e Entry) { entries = append(entries, e) }})
	if err != nil {
		t.Fatal(err)
	}
	tab.Close()
	if _, err := Open("texthash:"+path, Options{Warn: func(s string) { texts = append(texts, s) }}); err != nil {
		t.Fatal(err)
	}
	want := []Warning{
		{File: path, Line: 1, Msg: `logical line must not start with whitespace: "  orphan"`},
		{File: path, Line: 5, Msg: "expected format: key whitespace value"},
		{File: path, Line: 6, Kind: WarnDuplicate, Key: "a@x", Msg: `duplicate entry: "a@x": table unusable`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("texthash warnings (-want +got):\n%s", d)
	}
	wantTexts := []string{path + `:1: logical line must not start with whitespace: "  orphan"`, path + ":5: expected format: key whitespace value",
		path + `:6: duplicate entry: "a@x": table unusable`}
	if d := cmp.Diff(wantTexts, texts); d != "" {
		t.Errorf("texthash warning texts (-want +got):\n%s", d)
	}
	wantEntries := []Entry{{"a@x", "1", 2}, {"A@x", "2", 3}, {"b@x", "3", 4}, {"a@x", "4", 6}}
	if d := cmp.Diff(wantEntries, entries); d != "" {
		t.Errorf("texthash Entries (-want +got):\n%s", d)
	}

	// postmap's view folds: A@x repeats a@x at line 3. Entries are as written, all of them.
	got, entries = nil, nil
	src, err := ReadSource(path, SourceOptions{OnWarning: func(w Warning) { got = append(got, w) }, Entries: func(e Entry) { entries = append(entries, e) }})
	if err != nil {
		t.Fatal(err)
	}
	want = []Warning{
		{File: path, Line: 1, Msg: `logical line must not start with whitespace: "  orphan"`},
		{File: path, Line: 3, Kind: WarnDuplicate, Key: "a@x", Msg: `duplicate entry: "a@x"`},
		{File: path, Line: 5, Msg: "expected format: key whitespace value"},
		{File: path, Line: 6, Kind: WarnDuplicate, Key: "a@x", Msg: `duplicate entry: "a@x"`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ReadSource warnings (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantEntries, entries); d != "" {
		t.Errorf("ReadSource Entries (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Entry{{"a@x", "1", 2}, {"b@x", "3", 4}}, src.Entries); d != "" {
		t.Errorf("ReadSource's own entries (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		w    Warning
		want string
	}{
		{Warning{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Warning{File: "f", Msg: "m"}, "f: m"},
		{Warning{Msg: "postmap: warning: m"}, "postmap: warning: m"},
	} {
		if s := tc.w.String(); s != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.w, s, tc.want)
		}
	}
}

// TestOpened: a table the caller already has is used as it is, never opened again, and
// closing it there leaves it open for its owner.
func TestOpened(t *testing.T) {
	// An lmdb table, whose Close really closes its file: a borrower's Close passed on
	// would break the owner's lookups.
	run, _ := postmapForLMDB(t, "lmdb")
	dir := t.TempDir()
	path := filepath.Join(dir, "t")
	if err := os.WriteFile(path, []byte("a@x 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(nil, "lmdb:"+path); err != nil {
		t.Fatal(err)
	}
	own, err := Open("lmdb:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := os.Remove(path + ".lmdb"); err != nil {
		t.Fatal(err)
	}
	asked := []string{}
	opt := Options{Opened: func(spec string) Table {
		asked = append(asked, spec)
		if spec == "lmdb:"+path {
			return own
		}
		return nil
	}}
	again, err := Open("lmdb:"+path, opt)
	if err != nil {
		t.Fatalf("the file is gone, so it was opened again: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if v, hit, err := own.Lookup(context.Background(), "a@x"); v != "1" || !hit || err != nil {
		t.Errorf("owner's table after the borrower closed it: %q, %v, %v", v, hit, err)
	}
	// Any other spec is opened as usual.
	if st, err := Open("static:v", opt); err != nil || st.Name() != "static:v" {
		t.Errorf("static:v = %v, %v", st, err)
	}
	if d := cmp.Diff([]string{"lmdb:" + path, "static:v"}, asked); d != "" {
		t.Errorf("Opened asked for (-want +got):\n%s", d)
	}
}

package lookup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vdeliver/lookup/bdb"
	"vdeliver/lookup/cdb"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec, typ, name string
		err             bool
	}{
		{spec: "hash:/etc/postfix/vmailbox", typ: "hash", name: "/etc/postfix/vmailbox"},
		{spec: "static:{ a b }", typ: "static", name: "{ a b }"},
		{spec: "proxy:hash:/x", typ: "proxy", name: "hash:/x"},
		{spec: "static:", typ: "static", name: ""},
		{spec: "/etc/postfix/vmailbox", err: true},
		{spec: ":x", err: true},
		{spec: "ha sh:/x", err: true},
	}
	for _, tc := range tests {
		typ, name, err := ParseSpec(tc.spec)
		if tc.err {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("ParseSpec(%q) error = %v, want ErrSyntax", tc.spec, err)
			}
			continue
		}
		if err != nil || typ != tc.typ || name != tc.name {
			t.Errorf("ParseSpec(%q) = %q, %q, %v; want %q, %q", tc.spec, typ, name, err, tc.typ, tc.name)
		}
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"inline:{a=1, b=2}, hash:/x", []string{"inline:{a=1, b=2}", "hash:/x"}},
		{"a,b c\td\n e", []string{"a", "b", "c", "d", "e"}},
		{"static:{ x { y, z } }  ,texthash:/t", []string{"static:{ x { y, z } }", "texthash:/t"}},
		{"static:{ unbalanced, x", []string{"static:{ unbalanced, x"}},
	}
	for _, tc := range tests {
		if got := SplitList(tc.in); !cmp.Equal(got, tc.want) {
			t.Errorf("SplitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// fakeTable answers from a map or with an error; used only to prove Maps' ordering rules
// independently of any file format.
type fakeTable struct {
	name  string
	fixed bool
	m     map[string]string
	err   error
	asked *[]string
}

func (f *fakeTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	*f.asked = append(*f.asked, f.name)
	if f.err != nil {
		return "", false, f.err
	}
	v, ok := f.m[key]
	return v, ok, nil
}
func (f *fakeTable) Name() string { return f.name }
func (f *fakeTable) Fixed() bool  { return f.fixed }
func (f *fakeTable) Close() error { return nil }

func TestMapsFind(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		key       string
		fixedOnly bool
		wantV     string
		wantFound bool
		wantErr   error
		wantAsked []string
	}{
		{name: "first hit wins", key: "both", wantV: "from-re", wantFound: true, wantAsked: []string{"re"}},
		{name: "fixedOnly skips patterns", key: "both", fixedOnly: true, wantV: "from-hash", wantFound: true, wantAsked: []string{"hash"}},
		{name: "miss asks all", key: "nobody", wantAsked: []string{"re", "hash", "empty", "broken"}, wantErr: boom},
		{name: "empty value is an error", key: "e", wantErr: ErrEmptyValue, wantAsked: []string{"re", "hash", "empty"}},
		{name: "error stops the search", key: "after-error", wantErr: boom, wantAsked: []string{"re", "hash", "empty", "broken"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			m := &Maps{tables: []Table{
				&fakeTable{name: "re", m: map[string]string{"both": "from-re"}, asked: &asked},
				&fakeTable{name: "hash", fixed: true, m: map[string]string{"both": "from-hash"}, asked: &asked},
				&fakeTable{name: "empty", fixed: true, m: map[string]string{"e": ""}, asked: &asked},
				&fakeTable{name: "broken", fixed: true, err: boom, asked: &asked},
				&fakeTable{name: "never", fixed: true, m: map[string]string{"after-error": "x"}, asked: &asked},
			}}
			v, found, err := m.Find(context.Background(), tc.key, tc.fixedOnly)
			if v != tc.wantV || found != tc.wantFound || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Find(%q) = %q, %v, %v; want %q, %v, %v", tc.key, v, found, err, tc.wantV, tc.wantFound, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantAsked, asked); diff != "" {
				t.Errorf("tables asked (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenMaps(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vmailbox")
	if err := os.WriteFile(src, []byte("joe@example.com example.com/joe/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMaps("texthash:"+src+", inline:{@example.com=catchall/} static:{ }", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := len(m.Tables()); n != 3 {
		t.Fatalf("%d tables, want 3", n)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		key     string
		want    string
		wantErr error
	}{
		{key: "joe@example.com", want: "example.com/joe/"},
		{key: "@example.com", want: "catchall/"},
		{key: "other", wantErr: ErrEmptyValue}, // static:{ } answers "" for everything
	} {
		v, _, err := m.Find(ctx, tc.key, true)
		if v != tc.want || !errors.Is(err, tc.wantErr) {
			t.Errorf("Find(%q) = %q, %v; want %q, %v", tc.key, v, err, tc.want, tc.wantErr)
		}
	}
	empty, err := OpenMaps("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := empty.Find(ctx, "x", false); found || err != nil {
		t.Errorf("empty Maps: found=%v err=%v", found, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		spec string
		want error
	}{
		{spec: "hash:" + filepath.Join(dir, "missing"), want: os.ErrNotExist},
		{spec: "texthash:" + filepath.Join(dir, "missing"), want: os.ErrNotExist},
		{spec: "regexp:" + filepath.Join(dir, "missing"), want: os.ErrNotExist},
		{spec: "cdb:" + filepath.Join(dir, "missing"), want: os.ErrNotExist},
		{spec: "tcp:localhost:4711", want: ErrUnsupported},
		{spec: "proxy:socketmap:inet:localhost:9", want: ErrUnsupported},
		{spec: "memcache:/etc/x.cf", want: ErrUnsupported},
		{spec: "nocolon", want: ErrSyntax},
		{spec: "proxy:nocolon", want: ErrSyntax},
		{spec: "texthash:" + dir, want: ErrSyntax},
		{spec: "hash:" + filepath.Join(dir, "sub"), want: bdb.ErrFormat},
		{spec: "btree:" + filepath.Join(dir, "text"), want: bdb.ErrFormat},
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "text.db"), []byte("a@example.com a/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		tab, err := Open(tc.spec, Options{})
		if tab != nil || !errors.Is(err, tc.want) {
			t.Errorf("Open(%q) = %v, %v; want error wrapping %v", tc.spec, tab, err, tc.want)
		}
	}
	// With OpenMaps, a failure closes what was opened and returns no Maps.
	if m, err := OpenMaps("static:x, tcp:localhost:1", Options{}); m != nil || !errors.Is(err, ErrUnsupported) {
		t.Errorf("OpenMaps = %v, %v", m, err)
	}
}

func TestUnsupportedWithoutPostmap(t *testing.T) {
	old := findPostmap
	t.Cleanup(func() { findPostmap = old })
	findPostmap = func() (string, error) { return "", exec.ErrNotFound }
	_, err := Open("sqlite:/etc/postfix/vmailbox.cf", Options{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "sqlite") {
		t.Errorf("Open(sqlite:) without postmap = %v, want ErrUnsupported naming sqlite", err)
	}
}

func TestProxyOpensInner(t *testing.T) {
	tab, err := Open("proxy:static:5000", Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, found, err := tab.Lookup(context.Background(), "x")
	if v != "5000" || !found || err != nil || tab.Name() != "proxy:static:5000" || !tab.Fixed() {
		t.Errorf("proxy:static:5000: %q %v %v name %q", v, found, err, tab.Name())
	}
}

// copyDB puts one of the bdb package's postmap-built files at path.db, next to a source
// text path.
func copyDB(t *testing.T, file, path string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("bdb", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".db", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("bob@example.com example.com/bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// As dict_db.c: a warning when the source was edited after the .db was built, unless
// within the last 100 seconds (postmap may be running).
func TestStaleDBWarning(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vmailbox")
	copyDB(t, "postmap-btree.db", src)
	var warnings []string
	var kinds []WarningKind
	opt := Options{OnWarning: func(w Warning) { warnings, kinds = append(warnings, w.String()), append(kinds, w.Kind) }}
	setTimes := func(srcAge, dbAge time.Duration) {
		t.Helper()
		for f, age := range map[string]time.Duration{src: srcAge, src + ".db": dbAge} {
			at := time.Now().Add(-age)
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		srcAge, dbAge time.Duration
		warn          bool
	}{
		{time.Hour, 0, false},
		{time.Hour, 2 * time.Hour, true},
		{10 * time.Second, time.Hour, false},
	} {
		warnings = nil
		setTimes(tc.srcAge, tc.dbAge)
		tab, err := Open("btree:"+src, opt)
		if err != nil {
			t.Fatal(err)
		}
		tab.Close()
		var want []string
		if tc.warn {
			want = []string{src + ": " + src + ".db is older than its source; run \"postmap btree:" + src + "\""}
		}
		if diff := cmp.Diff(want, warnings); diff != "" {
			t.Errorf("source %v old, .db %v old: warnings (-want +got):\n%s", tc.srcAge, tc.dbAge, diff)
		}
		if tc.warn && (len(kinds) != 1 || kinds[0] != WarnStaleDB) {
			t.Errorf("stale .db warning of kind %v, want WarnStaleDB", kinds)
		}
		kinds = nil
	}
}

// hash: and btree: read the .db, not the source text, with keys and values written
// with or without the trailing NUL, and never fold the key.
func TestDB(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, tc := range []struct{ typ, file string }{
		{"hash", "postmap-hash.db"}, {"btree", "postmap-btree.db"}, {"hash", "be-hash.db"},
		{"hash", "postmap-nonul-hash.db"}, {"btree", "postmap-nonul-btree.db"},
	} {
		path := filepath.Join(dir, tc.file)
		copyDB(t, tc.file, path)
		// Not in the .db: the source is not read.
		if err := os.WriteFile(path, []byte("source@example.com source/\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tab, err := Open(tc.typ+":"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct{ key, want string }{
			{"bob@example.com", "example.com/bob"},
			{"user@example.com", "example.com/user/"},
			{"@example.net", "example.net/catchall/"},
			{"big@example.com", strings.Repeat("v", 6000)},
			{"User@Example.COM", ""},
			{"source@example.com", ""},
			{"bob@example.com\x00", ""},
		} {
			v, found, err := tab.Lookup(ctx, q.key)
			if err != nil || found != (q.want != "") || v != q.want {
				t.Errorf("%s %s: Lookup(%q) = %.30q, %v, %v; want %.30q", tc.typ, tc.file, q.key, v, found, err, q.want)
			}
		}
		tab.Close()
	}
	_, err := Open("hash:"+filepath.Join(dir, "vmailbox"), Options{})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasSuffix(err.Error(), `; run "postmap hash:`+filepath.Join(dir, "vmailbox")+`"`) {
		t.Errorf("missing .db: %v; want ErrNotExist and the postmap to run", err)
	}
}

// TestCDB is docs/behaviour.md §14.48 at the table level: keys written with and without
// a trailing NUL are both found, and the form that worked is remembered.
func TestCDB(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		nul  bool
	}{{"plain", false}, {"nul", true}} {
		path := filepath.Join(dir, tc.file)
		w, err := cdb.Create(path + ".cdb")
		if err != nil {
			t.Fatal(err)
		}
		suffix := ""
		if tc.nul {
			suffix = "\x00"
		}
		for _, kv := range [][2]string{{"joe@example.com", "example.com/joe/"}, {"@example.com", "catchall/"}} {
			if err := w.Add([]byte(kv[0]+suffix), []byte(kv[1]+suffix)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		tab, err := Open("cdb:"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct{ key, want string }{{"joe@example.com", "example.com/joe/"}, {"@example.com", "catchall/"}, {"nobody@example.com", ""}} {
			v, found, err := tab.Lookup(context.Background(), q.key)
			if v != q.want || found != (q.want != "") || err != nil {
				t.Errorf("%s: Lookup(%q) = %q, %v, %v; want %q", tc.file, q.key, v, found, err, q.want)
			}
		}
		want := int32(tryNoNul)
		if tc.nul {
			want = tryNul
		}
		if got := tab.(*cdbTable).try.Load(); got != want {
			t.Errorf("%s: remembered form %d, want %d", tc.file, got, want)
		}
		if err := tab.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestPostmapFallback reads a table type vdeliver has no reader for (cidr:) through the
// real postmap: hit, miss, and a table postmap cannot open.
func TestPostmapFallback(t *testing.T) {
	_, cfg := realPostmap(t)
	dir := t.TempDir()
	cidr := filepath.Join(dir, "clients")
	if err := os.WriteFile(cidr, []byte("10.0.0.0/8 internal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := Options{ConfigDir: cfg}
	tab, err := Open("proxy:cidr:"+cidr, opt)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Fixed() {
		t.Error("cidr: is a pattern table")
	}
	ctx := context.Background()
	if v, found, err := tab.Lookup(ctx, "10.1.2.3"); v != "internal" || !found || err != nil {
		t.Errorf("hit: %q %v %v", v, found, err)
	}
	if v, found, err := tab.Lookup(ctx, "192.0.2.1"); v != "" || found || err != nil {
		t.Errorf("miss: %q %v %v", v, found, err)
	}
	if _, err := Open("cidr:"+filepath.Join(dir, "missing"), opt); err == nil {
		t.Error("missing cidr file opened")
	}
	// No query at open: a type postmap does not know fails at the first lookup.
	unknown, err := Open("nosuchtype:"+cidr, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := unknown.Lookup(ctx, "10.1.2.3"); !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrNoModule) ||
		!strings.HasPrefix(err.Error(), "postmap -q: ") || !strings.HasSuffix(err.Error(), "unsupported dictionary type: nosuchtype: unsupported table type") {
		t.Errorf("unknown type: %v, want ErrUnsupported and ErrNoModule, postmap's words", err)
	}
	// A failure that is not about the type is not a missing module.
	if _, err := Open("cidr:"+filepath.Join(dir, "missing"), opt); errors.Is(err, ErrNoModule) {
		t.Errorf("missing cidr file: %v matches ErrNoModule", err)
	}
	fail, err := Open("unionmap:{static:x}", opt)
	if err != nil {
		t.Fatal(err)
	}
	if !fail.Fixed() {
		t.Error("unionmap of a fixed table is fixed")
	}
}

func TestPCREParanoidAndErrors(t *testing.T) {
	tests := []struct {
		name, table string
		wantErr     bool
	}{
		{name: "negated $n", table: "!/(a)/ $1\n", wantErr: true},
		{name: "index beyond groups", table: "/(a)/ $2\n", wantErr: true},
		{name: "non-numeric", table: "/(a)/ $foo\n", wantErr: true},
		{name: "truncated", table: "/(a)/ ${1\n", wantErr: true},
		{name: "bare dollar", table: "/(a)/ a$\n", wantErr: true},
		{name: "no delimiter", table: "/abc\n", wantErr: true},
		{name: "possessive", table: "/a++/ x\n", wantErr: true},
		{name: "atomic", table: "/(?>a)/ x\n", wantErr: true},
		{name: "backref", table: "/(a)\\1/ x\n", wantErr: true},
		{name: "unknown keyword", table: "foo /a/\n", wantErr: true},
		{name: "endif alone", table: "endif\n", wantErr: true},
		{name: "fine", table: "/(a)/ ${1}$(1)$$\n"},
	}
	for _, tc := range tests {
		_, err := parseRegexpTable("pcre:t", "t", tc.table, true, &Options{})
		if tc.wantErr != (err != nil) || (err != nil && (!errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "t:1: "))) {
			t.Errorf("%s: err = %v, want error=%v with t:1:", tc.name, err, tc.wantErr)
		}
	}
}

// A database library's message spans lines; Postfix's logger turns each line break and
// tab into '?'. The warning vdeliver logs reads as a sentence, with no "??".
func TestPostmapWarningWithoutQuestionMarks(t *testing.T) {
	bin, cfg := realPostmap(t)
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "postconf"), "-c", cfg, "-m").Output(); err != nil || !strings.Contains(string(out), "pgsql") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but Postfix cannot read pgsql: tables (make deps installs postfix-pgsql): %v", err)
		}
		t.Skip("postfix-pgsql is not installed")
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "pg.cf")
	// Port 1 on loopback: nothing listens there, so the connection is refused at once.
	if err := os.WriteFile(cf, []byte("hosts = 127.0.0.1:1\nuser = x\npassword = y\ndbname = mail\nquery = SELECT 1 WHERE '%s' = ''\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	tab, err := Open("pgsql:"+cf, Options{ConfigDir: cfg, Warn: func(w string) { warnings = append(warnings, w) }})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if _, _, err := tab.Lookup(context.Background(), "a@example.com"); err == nil {
		t.Fatal("a lookup in an unreachable database succeeded")
	}
	found := false
	for _, w := range warnings {
		if strings.Contains(w, "??") {
			t.Errorf("warning with ??: %q", w)
		}
		if strings.Contains(w, "Connection refused Is the server running") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning about the refused connection in %q", warnings)
	}
}

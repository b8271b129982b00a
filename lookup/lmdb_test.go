package lookup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postmapForLMDB returns a function running Debian's postmap with -c and a scratch
// main.cf (the machine need not be configured for mail), for a test that compares with
// it. It skips when postmap or its lmdb support is missing, and fails instead under
// CI=true, where testdata/deps.sh installs them.
func postmapForLMDB(t testing.TB, typ string) (run func(stdin []byte, args ...string) ([]byte, error), conf string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (Debian: apt-get install postfix postfix-" + typ + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := "/usr/sbin/postmap"
	if _, err := os.Stat(bin); err != nil {
		unavailable("postmap not installed: %v", err)
	}
	conf = t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run = func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append([]string{"-c", conf}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("postmap %q: %w: %s", args, err, stderr.Bytes())
		}
		return out, err
	}
	types, err := exec.Command("/usr/sbin/postconf", "-c", conf, "-m").Output()
	if err != nil {
		unavailable("postconf -m: %v", err)
	}
	if !strings.Contains("\n"+string(types), "\n"+typ+"\n") {
		unavailable("Postfix has no %s support", typ)
	}
	return run, conf
}

// genLMDBSource writes an n-entry postmap source to path and returns its keys as written and
// some keys that are in no entry. Keys mix case and 8-bit bytes; about 2% repeat an
// earlier key (in another case, with another value: postmap keeps the first); a few
// values are long enough to need LMDB overflow pages.
func genLMDBSource(t testing.TB, path string, n int, rng *rand.Rand) (keys, absent []string) {
	t.Helper()
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@-_+=/"
	randKey := func() string {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			if rng.IntN(20) == 0 {
				b[i] = byte(0x80 + rng.IntN(0x80))
			} else {
				b[i] = chars[rng.IntN(len(chars))]
			}
		}
		return string(b)
	}
	longEvery := max(n/100, 3) // overflow values: ~1% of small tables, 100 in a million
	if n >= 100_000 {
		longEvery = n / 100
	}
	var src bufio.Writer
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	src.Reset(f)
	seen := map[string]bool{}
	for i := range n {
		var k string
		switch {
		case i == 0:
			// One line postmap surely keeps: with smtputf8_enable it skips every line
			// that is not UTF-8, and a small table can be all such lines.
			k = "Plain@Example.COM"
		case rng.IntN(50) == 0:
			k = keys[rng.IntN(len(keys))]
			k = strings.ToUpper(k[:1]) + k[1:]
		default:
			k = randKey()
		}
		if strings.ContainsAny(k[:1], "#") {
			k = "x" + k
		}
		keys = append(keys, k)
		seen[strings.ToLower(k)] = true
		v := fmt.Sprintf("value%d/%s/", i, strings.ReplaceAll(randKey(), "=", "%"))
		if i%longEvery == 1 {
			v += strings.Repeat("L", 2000+rng.IntN(30000))
		}
		fmt.Fprintf(&src, "%s\t%s\n", k, v)
	}
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for len(absent) < min(n, 10_000) {
		var k string
		switch rng.IntN(3) {
		case 0:
			k = randKey()
		case 1:
			k = keys[rng.IntN(len(keys))] + "x"
		default:
			k = keys[rng.IntN(len(keys))]
			k = k[:len(k)-1]
		}
		if k != "" && !seen[strings.ToLower(k)] && !strings.ContainsAny(k, " \t") {
			absent = append(absent, k)
		}
	}
	return keys, absent
}

// lmdbPostmapAnswers asks "postmap -f -q - lmdb:path" every key at once (one process): -f
// keeps each key as given, as virtual(8) asks its tables.
func lmdbPostmapAnswers(t testing.TB, run func([]byte, ...string) ([]byte, error), spec string, keys []string) map[string]string {
	t.Helper()
	var in bytes.Buffer
	for _, k := range keys {
		in.WriteString(k + "\n")
	}
	out, err := run(in.Bytes(), "-f", "-q", "-", spec)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatal(err)
	}
	return parseLMDBDump(t, out)
}

// parseLMDBDump reads postmap's "key<TAB>value" lines.
func parseLMDBDump(t testing.TB, out []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("postmap output line without a tab: %q", line)
		}
		m[k] = v
	}
	return m
}

func lmdbSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LMDB_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("LMDB_SEED=%d", seed)
	return seed
}

// Every key of a generated table, and keys in no entry, get the same answer from
// lookup's lmdb: reader as from Postfix's own postmap -q on the same file.
func TestLMDBMatchesPostmap(t *testing.T) {
	for _, tc := range []struct {
		n     int
		flags []string
	}{
		{10, nil},
		{10, []string{"-n"}}, // keys and values without the trailing NUL
		{10_000, nil},
		{10_000, []string{"-n"}},
	} {
		t.Run(fmt.Sprintf("%d%s", tc.n, strings.Join(tc.flags, "")), func(t *testing.T) {
			t.Parallel()
			run, _ := postmapForLMDB(t, "lmdb")
			rng := rand.New(rand.NewPCG(lmdbSeed(t), 1))
			path := filepath.Join(t.TempDir(), "vmailbox")
			keys, absent := genLMDBSource(t, path, tc.n, rng)
			if _, err := run(nil, append(tc.flags, "lmdb:"+path)...); err != nil {
				t.Fatal(err)
			}
			var queries []string
			for _, k := range keys {
				queries = append(queries, k, strings.ToLower(k))
			}
			queries = append(queries, absent...)
			want := lmdbPostmapAnswers(t, run, "lmdb:"+path, queries)
			tab, err := Open("lmdb:"+path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tab.Close()
			hits := compareLMDBLookups(t, tab, queries, want)
			if hits == 0 || hits == len(queries) {
				t.Fatalf("%d hits of %d queries: the test checks nothing", hits, len(queries))
			}
		})
	}
	if os.Getenv("VDELIVER_LMDB_MILLION") == "1" {
		t.Run("1000000", lmdbMillionMatchesPostmap)
	}
}

// compareLMDBLookups asks tab every query and compares with postmap's answers; it returns
// the number of hits.
func compareLMDBLookups(t testing.TB, tab Table, queries []string, want map[string]string) int {
	t.Helper()
	hits, bad := 0, 0
	for _, q := range queries {
		v, found, err := tab.Lookup(context.Background(), q)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", q, err)
		}
		wv, wfound := want[q]
		if found != wfound || v != wv {
			bad++
			if bad <= 10 {
				t.Errorf("Lookup(%q) = %.60q, %v; postmap says %.60q, %v", q, v, found, wv, wfound)
			}
		}
		if found {
			hits++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d queries differ from postmap", bad, len(queries))
	}
	return hits
}

// A million entries: every entry that "postmap -s" lists, and 10,000 keys in no entry
// asked through postmap -q, get postmap's answers. It takes 45 s of CPU and 70-140 s on
// two shared cores (load average 11-20): generating the source 13-21 s, postmap building
// the table 20-39 s and dumping it 7-16 s, the million lookups 30-63 s. Too long for
// every run: it runs when VDELIVER_LMDB_MILLION=1 (make tables-1m, part of make test),
// as the subtest 1000000 of TestLMDBMatchesPostmap.
func lmdbMillionMatchesPostmap(t *testing.T) {
	t.Parallel()
	run, _ := postmapForLMDB(t, "lmdb")
	rng := rand.New(rand.NewPCG(lmdbSeed(t), 2))
	path := filepath.Join(t.TempDir(), "vmailbox")
	start := time.Now()
	_, absent := genLMDBSource(t, path, 1_000_000, rng)
	t.Logf("generated in %v", time.Since(start))
	start = time.Now()
	if _, err := run(nil, "lmdb:"+path); err != nil {
		t.Fatal(err)
	}
	t.Logf("postmap built it in %v", time.Since(start))
	start = time.Now()
	dump, err := run(nil, "-s", "lmdb:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("postmap -s dumped it in %v", time.Since(start))
	defer func(start time.Time) { t.Logf("compared in %v", time.Since(start)) }(time.Now())
	entries := parseLMDBDump(t, dump)
	if len(entries) < 900_000 {
		t.Fatalf("postmap -s lists %d entries", len(entries))
	}
	tab, err := Open("lmdb:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	if hits := compareLMDBLookups(t, tab, keys, entries); hits != len(keys) {
		t.Fatalf("%d hits for %d entries", hits, len(keys))
	}
	if hits := compareLMDBLookups(t, tab, absent, lmdbPostmapAnswers(t, run, "lmdb:"+path, absent)); hits != 0 {
		t.Fatalf("%d hits for absent keys", hits)
	}
}

// What one delivery pays for an lmdb: table of 100,000 entries: open, one lookup, close;
// natively, and through "postmap -q" as before lmdb: was read natively.
func BenchmarkLMDBOpenLookup100k(b *testing.B) {
	run, conf := postmapForLMDB(b, "lmdb")
	path := filepath.Join(b.TempDir(), "vmailbox")
	var src strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&src, "user%d@example%d.com example%d.com/user%d/\n", i, i%50, i%50, i)
	}
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := run(nil, "lmdb:"+path); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		open func() (Table, error)
	}{
		{"native", func() (Table, error) { return Open("lmdb:"+path, Options{}) }},
		{"postmap", func() (Table, error) {
			opt := Options{ConfigDir: conf}
			return openPostmap("lmdb:"+path, "lmdb", path, "lmdb:"+path, &opt)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				tab, err := tc.open()
				if err != nil {
					b.Fatal(err)
				}
				v, found, err := tab.Lookup(ctx, "user99999@example49.com")
				if err != nil || !found || v != "example49.com/user99999/" {
					b.Fatalf("lookup: %q %v %v", v, found, err)
				}
				tab.Close()
			}
		})
	}
}

// The empty key: liblmdb refuses a zero-length key, so once the key+NUL form has missed,
// Postfix's lookup fails ("fatal: error reading ... MDB_BAD_VALSIZE"); so does Lookup.
func TestLMDBEmptyKey(t *testing.T) {
	run, _ := postmapForLMDB(t, "lmdb")
	path := filepath.Join(t.TempDir(), "t")
	if err := os.WriteFile(path, []byte("a b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{nil, {"-n"}} {
		if _, err := run(nil, append(flags, "lmdb:"+path)...); err != nil {
			t.Fatal(err)
		}
		_, perr := run(nil, "-f", "-q", "", "lmdb:"+path)
		tab, err := Open("lmdb:"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		v, found, err := tab.Lookup(context.Background(), "")
		tab.Close()
		if perr == nil || !strings.Contains(perr.Error(), "MDB_BAD_VALSIZE") {
			t.Fatalf("postmap %v -q '': %v", flags, perr)
		}
		if err == nil || !strings.Contains(err.Error(), "MDB_BAD_VALSIZE") {
			t.Errorf("%v: Lookup(\"\") = %q, %v, %v; want an error as postmap's", flags, v, found, err)
		}
	}
}

// Postfix's dict_lmdb warns when the source is newer than the .lmdb, unless the source
// changed in the last 100 seconds; so does Open.
func TestLMDBOlderThanSource(t *testing.T) {
	run, _ := postmapForLMDB(t, "lmdb")
	path := filepath.Join(t.TempDir(), "vmailbox")
	if err := os.WriteFile(path, []byte("a b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(nil, "lmdb:"+path); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name      string
		src, lmdb time.Duration // ages
		warn      bool
	}{
		{"source edited after postmap", 200 * time.Second, 300 * time.Second, true},
		{"source edited seconds ago", 50 * time.Second, 300 * time.Second, false},
		{"postmap after the edit", 300 * time.Second, 200 * time.Second, false},
		{"same second", 300 * time.Second, 300 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chtimes(path, now, now.Add(-tc.src)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path+".lmdb", now, now.Add(-tc.lmdb)); err != nil {
				t.Fatal(err)
			}
			var warnings []string
			tab, err := Open("lmdb:"+path, Options{Warn: func(s string) { warnings = append(warnings, s) }})
			if err != nil {
				t.Fatal(err)
			}
			tab.Close()
			want := []string(nil)
			if tc.warn {
				want = []string{"database " + path + ".lmdb is older than source file " + path}
			}
			if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
				t.Errorf("warnings %q; want %q", warnings, want)
			}
		})
	}
}

// postmap rewrites an .lmdb in place, in a new transaction that reuses the pages of the
// old one. A table kept open sees the new contents at its next lookup: every lookup
// reads the current meta pages, and the branch pages it keeps belong to the old snapshot
// and are dropped.
func TestLMDBRewrittenWhileOpen(t *testing.T) {
	run, _ := postmapForLMDB(t, "lmdb")
	path := filepath.Join(t.TempDir(), "vmailbox")
	write := func(gen, n int) {
		t.Helper()
		var src strings.Builder
		for i := range n {
			// Values grow with the generation, so leaves split elsewhere and the
			// branch pages differ.
			fmt.Fprintf(&src, "user%d@example.com gen%d/user%d/%s\n", i, gen, i, strings.Repeat("x", 30*gen))
		}
		if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := run(nil, "lmdb:"+path); err != nil {
			t.Fatal(err)
		}
	}
	check := func(tab Table, gen, n, upTo int) {
		t.Helper()
		for i := range upTo {
			v, found, err := tab.Lookup(context.Background(), fmt.Sprintf("user%d@example.com", i))
			want := fmt.Sprintf("gen%d/user%d/%s", gen, i, strings.Repeat("x", 30*gen))
			if i >= n {
				want = ""
			}
			if err != nil || found != (i < n) || v != want {
				t.Fatalf("generation %d, user%d: %q, %v, %v; want %q", gen, i, v, found, err, want)
			}
		}
	}
	// Debian's postmap 3.7 first reuses freed pages in the fourth generation (the root
	// moves back among generation 1's pages), and again in the fifth.
	sizes := []int{20_000, 15_000, 25_000, 20_000, 22_000}
	write(1, sizes[0])
	tab, err := Open("lmdb:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	for gen, n := range sizes {
		if gen > 0 {
			write(gen+1, n)
		}
		check(tab, gen+1, n, 25_000)
	}
}

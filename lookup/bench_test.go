package lookup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSource writes an n-entry source table as an administrator would, with a comment
// every 100 lines; keys in lower case, as texthash: needs them.
func writeSource(b *testing.B, n int) string {
	b.Helper()
	var s strings.Builder
	for i := range n {
		if i%100 == 0 {
			fmt.Fprintf(&s, "# block %d\n", i/100)
		}
		fmt.Fprintf(&s, "user%d@example%d.com\texample%d.com/user%d/\n", i, i%50, i%50, i)
	}
	path := filepath.Join(b.TempDir(), "vmailbox")
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkTexthashOpenLookup100k is what one delivery pays for a 100,000-entry
// texthash: table, read from its source: open (read + parse) and one lookup.
func BenchmarkTexthashOpenLookup100k(b *testing.B) {
	path := writeSource(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tab, err := Open("texthash:"+path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		v, found, err := tab.Lookup(ctx, "user99999@example49.com")
		if err != nil || !found || v != "example49.com/user99999/" {
			b.Fatalf("lookup: %q %v %v", v, found, err)
		}
		tab.Close()
	}
}

// BenchmarkMapsFind is the per-key cost of a search as deliver runs it: the five keys of
// docs/behaviour.md §2 through a regexp table, a 100,000-entry texthash table and a
// static catch-all.
func BenchmarkMapsFind(b *testing.B) {
	path := writeSource(b, 100_000)
	re := filepath.Join(b.TempDir(), "re")
	if err := os.WriteFile(re, []byte("/^postmaster@/\tadmin/\n/^abuse@/\tadmin/\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := OpenMaps("regexp:"+re+", texthash:"+path+", static:fallback/", Options{Paranoid: true})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	keys := []struct {
		key   string
		fixed bool
	}{{"user7+x@example7.com", false}, {"user7@example7.com", true}, {"user7+x", true}, {"user7", true}, {"@example7.com", true}}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			if _, found, err := m.Find(ctx, k.key, k.fixed); err != nil || !found {
				b.Fatalf("%s: %v %v", k.key, found, err)
			}
		}
	}
}

package lmdb

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The 1,000,000-entry table is built by Postfix's postmap at most once per test binary,
// and only by the benchmarks that need it.
var (
	millionOnce sync.Once
	millionPath string
	millionErr  error
)

const millionSize = 1_000_000

func millionKey(i int) string   { return fmt.Sprintf("user%d@example%d.org", i, i%100) }
func millionValue(i int) string { return fmt.Sprintf("example%d.org/user%d/Maildir/", i%100, i) }

func million(b *testing.B) string {
	b.Helper()
	millionOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lmdb-bench-")
		if err != nil {
			millionErr = err
			return
		}
		millionPath = filepath.Join(dir, "vmailbox")
		millionErr = buildMillion(dir, millionPath)
	})
	if millionErr != nil {
		b.Skip(millionErr)
	}
	return millionPath + ".lmdb"
}

func buildMillion(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range millionSize {
		fmt.Fprintf(w, "%s %s\n", millionKey(i), millionValue(i))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), nil, 0o644); err != nil {
		return err
	}
	out, err := exec.Command("/usr/sbin/postmap", "-c", dir, "lmdb:"+path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("postmap (Debian: apt-get install postfix postfix-lmdb): %v: %s", err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if millionPath != "" {
		os.RemoveAll(filepath.Dir(millionPath))
	}
	os.Exit(code)
}

// One lookup in an open 1,000,000-entry table (tree depth 4), as postmap stores keys:
// with the trailing NUL.
func BenchmarkGet1M(b *testing.B) {
	r, err := Open(million(b))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var keys [][]byte
	var values []string
	for i := 0; i < millionSize; i += millionSize / 4096 {
		j := (i * 7919) % millionSize
		keys = append(keys, append([]byte(millionKey(j)), 0))
		values = append(values, millionValue(j)+"\x00")
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % len(keys)
		v, found, err := r.Get(keys[k])
		if err != nil || !found || string(v) != values[k] {
			b.Fatalf("Get(%q) = %q, %v, %v", keys[k], v, found, err)
		}
	}
}

// Open and Close: what a delivery pays before its first lookup.
func BenchmarkOpen1M(b *testing.B) {
	path := million(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

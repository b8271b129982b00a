package cdb

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The 1,000,000-entry fixture is built at most once per test binary, and
// only by the benchmarks that need it; TestMain removes it.
var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixturePath string
	fixtureErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

const fixtureSize = 1000000

// fixtureKey appends the key of entry i (key0@example.org, ...) to buf;
// its value is fixtureValue(i).
func fixtureKey(buf []byte, i int) []byte {
	buf = append(buf, "key"...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	return append(buf, "@example.org"...)
}

func fixtureValue(buf []byte, i int) []byte {
	buf = append(buf, "example.org/user"...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	return append(buf, "/Maildir/"...)
}

// writeMillion builds the 1,000,000-entry table at path.
func writeMillion(path string) error {
	w, err := Create(path)
	if err != nil {
		return err
	}
	defer w.Abort()
	var k, v []byte
	for i := range fixtureSize {
		k, v = fixtureKey(k[:0], i), fixtureValue(v[:0], i)
		if err := w.Add(k, v); err != nil {
			return err
		}
	}
	return w.Commit()
}

func million(b *testing.B) string {
	b.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "cdb-bench-")
		if fixtureErr == nil {
			fixturePath = filepath.Join(fixtureDir, "million.cdb")
			fixtureErr = writeMillion(fixturePath)
		}
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixturePath
}

// sampleKeys returns 4096 keys spread over the fixture, with their values.
func sampleKeys() (keys, values [][]byte) {
	for i := 0; i < fixtureSize; i += fixtureSize / 4096 {
		j := (i * 7919) % fixtureSize
		keys = append(keys, fixtureKey(nil, j))
		values = append(values, fixtureValue(nil, j))
	}
	return keys, values
}

// One lookup in a 1,000,000-entry table already open (target: < 10 µs).
func BenchmarkGet1M(b *testing.B) {
	r, err := Open(million(b))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	keys, values := sampleKeys()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % len(keys)
		v, found, err := r.Get(keys[k])
		if err != nil || !found || string(v) != string(values[k]) {
			b.Fatalf("Get(%q) = %q, %v, %v", keys[k], v, found, err)
		}
	}
}

// Open, one lookup, Close: what a delivery agent started per message pays.
func BenchmarkOpenGet1M(b *testing.B) {
	path := million(b)
	keys, values := sampleKeys()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % len(keys)
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		v, found, err := r.Get(keys[k])
		if err != nil || !found || string(v) != string(values[k]) {
			b.Fatalf("Get(%q) = %q, %v, %v", keys[k], v, found, err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// Building a 1,000,000-entry table (target: < 10 s, < 300 MB). B/op is
// everything the Writer allocates; the data itself streams to disk.
func BenchmarkBuild1M(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		path := filepath.Join(dir, "million.cdb")
		if err := writeMillion(path); err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "million.cdb")); err == nil {
		b.ReportMetric(float64(fi.Size()), "file-bytes")
	}
}

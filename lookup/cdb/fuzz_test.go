package cdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader treats arbitrary bytes as a cdb file. Properties: Open and Get
// fail only with ErrFormat (the file is regular, so no OS error), never
// panic; an answer is real: the file holds the key immediately followed by
// the value, as a record does, so a hash match alone never answers; asking
// twice gives the same answer.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"testdata/postmap.cdb", "testdata/postmap-nul.cdb"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte("user@example.com"))
		f.Add(b, []byte("user@example.com\x00"))
		f.Add(b[:len(b)-3], []byte("uid"))
	}
	for _, recs := range [][]kv{
		nil,
		{{"a", "bc"}},
		{{"ba", "1"}, {"c@", "2"}, {"ba", "3"}, {"", ""}},
	} {
		b, err := os.ReadFile(build(f, recs))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte("ba"))
		f.Add(b, []byte("c@"))
		f.Add(b, []byte(""))
	}
	f.Add(make([]byte, headerSize), []byte("x"))
	// One file per fuzzing process, rewritten by each run: a directory per
	// run would cost more than the lookup under test.
	path := filepath.Join(f.TempDir(), "f.cdb")
	f.Fuzz(func(t *testing.T, data, key []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("Open: %v, want nil or ErrFormat", err)
			}
			return
		}
		defer r.Close()
		v, found, err := r.Get(key)
		if err != nil {
			if !errors.Is(err, ErrFormat) || found || v != nil {
				t.Fatalf("Get = %q, %v, %v; an error must be ErrFormat with no answer", v, found, err)
			}
		} else if found && !bytes.Contains(data[headerSize:], append(bytes.Clone(key), v...)) {
			t.Fatalf("Get(%q) = %q, which no record of the file holds", key, v)
		} else if !found && v != nil {
			t.Fatalf("a miss returned a value %q", v)
		}
		v2, found2, err2 := r.Get(key)
		if !bytes.Equal(v, v2) || found != found2 || (err == nil) != (err2 == nil) {
			t.Fatalf("second Get differs: %q, %v, %v then %q, %v, %v", v, found, err, v2, found2, err2)
		}
	})
}

// FuzzRoundTrip writes any records and reads them back. Properties: each
// key answers with the value first added under it; a key never added
// misses; nothing fails.
func FuzzRoundTrip(f *testing.F) {
	// Durability is not the property here; without fsync the fuzzer runs
	// many times faster. Safe: fuzz targets run alone, like any non-parallel test.
	fsync = func(*os.File) error { return nil }
	f.Cleanup(func() { fsync = (*os.File).Sync })
	f.Add([]byte(""))
	f.Add([]byte("\x01a\x01b"))
	f.Add([]byte("\x02ba\x011\x02c@\x012\x02ba\x013"))
	f.Add([]byte("\x00\x00\x00\x00\x01\x00\x00"))
	f.Add([]byte("\x05alice\x06alice/\x05Alice\x03xyz\x06alice\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Encoding: klen, key, vlen, value, repeated. Short lengths keep
		// duplicate and colliding keys likely.
		var recs []kv
		for len(data) > 0 {
			kl := min(int(data[0])%8, len(data)-1)
			k := string(data[1 : 1+kl])
			data = data[1+kl:]
			v := ""
			if len(data) > 0 {
				vl := min(int(data[0])%32, len(data)-1)
				v = string(data[1 : 1+vl])
				data = data[1+vl:]
			}
			recs = append(recs, kv{k, v})
		}
		r := open(t, build(t, recs))
		first := map[string]string{}
		for _, e := range recs {
			if _, ok := first[e.k]; !ok {
				first[e.k] = e.v
			}
		}
		for k, v := range first {
			mustGet(t, r, k, v, true)
			if _, ok := first[k+"\x00"]; !ok {
				mustGet(t, r, k+"\x00", "", false)
			}
		}
	})
}

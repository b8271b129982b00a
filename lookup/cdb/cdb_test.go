package cdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// kv is one record, in the order it is added.
type kv struct{ k, v string }

// build writes recs into a new cdb file in a fresh directory and returns its path.
func build(t testing.TB, recs []kv) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.cdb")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, r := range recs {
		if err := w.Add([]byte(r.k), []byte(r.v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// open opens path and closes it when the test ends.
func open(t testing.TB, path string) *Reader {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// mustGet asserts that key answers (want, wantFound) without error.
func mustGet(t testing.TB, r *Reader, key, want string, wantFound bool) {
	t.Helper()
	got, found, err := r.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if found != wantFound || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", key, got, found, want, wantFound)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want uint32
	}{
		{"", 5381},
		{"a", 5381*33 ^ 'a'},
		{"ab", (5381*33^'a')*33 ^ 'b'},
		// Colliding pair used by TestHashCollision.
		{"ba", 0x00596ec6},
		{"c@", 0x00596ec6},
	}
	for _, tc := range tests {
		if got := hash([]byte(tc.key)); got != tc.want {
			t.Errorf("hash(%q) = %#08x, want %#08x", tc.key, got, tc.want)
		}
	}
	// docs/behaviour.md §9.4, checked against postmap's file: this key is in table 179.
	if got := hash([]byte("user@example.com")) & 255; got != 179 {
		t.Errorf("table of user@example.com = %d, want 179", got)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	var many []kv
	for i := range 10000 {
		many = append(many, kv{fmt.Sprintf("key%d@example.org", i), fmt.Sprintf("example.org/user%d/", i)})
	}
	var binary []kv
	for c := range 256 {
		binary = append(binary, kv{string([]byte{byte(c)}), string([]byte{byte(c), 0, byte(255 - c)})})
	}
	tests := []struct {
		name   string
		recs   []kv
		want   []kv     // expected answers; defaults to recs
		absent []string // keys that must miss
	}{
		{name: "no records", absent: []string{"", "a", "\x00"}},
		{name: "many keys", recs: many, absent: []string{"key10000@example.org", "KEY1@example.org", "key1@example.org\x00"}},
		{name: "empty key", recs: []kv{{"", "value of nothing"}, {"a", "1"}}, absent: []string{"\x00", "b"}},
		{name: "empty value", recs: []kv{{"a", ""}, {"b", "x"}}, absent: []string{"c"}},
		{name: "single bytes", recs: binary, absent: []string{"\x00\x00", "\xff\xff"}},
		{name: "binary keys", recs: []kv{{"a\x00b", "nul inside"}, {"\xff\xfe\x00", "high bytes"}, {"line\nbreak", "\r\n"}},
			absent: []string{"a", "a\x00", "\xff\xfe"}},
		// Postfix files may hold key+NUL or key; they are different keys here.
		{name: "trailing NUL", recs: []kv{{"alice\x00", "with\x00"}, {"bob", "without"}},
			absent: []string{"alice", "bob\x00"}},
		{name: "duplicates", recs: []kv{{"d", "first"}, {"e", "e"}, {"d", "second"}, {"d", "third"}},
			want: []kv{{"d", "first"}, {"e", "e"}}},
		{name: "hash collision", recs: []kv{{"c@", "second key"}, {"ba", "first key"}},
			absent: []string{"bb", "c"}},
		{name: "long value", recs: []kv{{"k", string(bytes.Repeat([]byte("0123456789"), 10000))}}},
		{name: "long key", recs: []kv{{string(bytes.Repeat([]byte("k"), 70000)), "v"}},
			absent: []string{string(bytes.Repeat([]byte("k"), 69999))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := open(t, build(t, tc.recs))
			want := tc.want
			if want == nil {
				want = tc.recs
			}
			for _, e := range want {
				mustGet(t, r, e.k, e.v, true)
			}
			for _, k := range tc.absent {
				mustGet(t, r, k, "", false)
			}
		})
	}
}

// An empty table is the header alone: every table empty at offset 2048.
func TestEmptyFileBytes(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile(build(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, headerSize)
	for i := 0; i < headerSize; i += 8 {
		binary.LittleEndian.PutUint32(want[i:], headerSize)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("empty cdb differs:\n got % x\nwant % x", got[:16], want[:16])
	}
}

// One record, spelled out by hand from the format description.
func TestOneRecordBytes(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile(build(t, []kv{{"a", "bc"}}))
	if err != nil {
		t.Fatal(err)
	}
	h := hash([]byte("a")) // 0x0002b5c4: table 0xc4, first slot (h>>8)%2 = 1
	want := make([]byte, 0, headerSize+11+16)
	for tbl := range 256 {
		pos, slots := uint32(headerSize+11), uint32(0)
		if tbl > int(h&255) {
			pos += 16
		}
		if tbl == int(h&255) {
			slots = 2
		}
		want = binary.LittleEndian.AppendUint32(want, pos)
		want = binary.LittleEndian.AppendUint32(want, slots)
	}
	want = append(want, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b', 'c')
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0) // slot 0: empty
	want = binary.LittleEndian.AppendUint32(want, h)
	want = binary.LittleEndian.AppendUint32(want, headerSize)
	if h != 0x0002b5c4 {
		t.Fatalf("hash(a) = %#x, the expected bytes assume 0x2b5c4", h)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file differs:\n got % x\nwant % x", got[headerSize:], want[headerSize:])
	}
}

// The key is compared after a hash match: a record whose key was altered
// on disk, its slot still holding the original key's hash, is a miss for
// the original key, never a hit with another record's data.
func TestWrongKeyBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(rec []byte) // the record of "ba" -> "value of ba"
		hits   []kv             // still found afterwards
	}{
		// "c@" has the same hash as "ba", so only the bytes tell them apart.
		{"same length, other bytes", func(rec []byte) { copy(rec[8:], "c@") },
			[]kv{{"c@", "value of ba"}}},
		{"other length", func(rec []byte) { putU32(rec, 0, 1) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := build(t, []kv{{"ba", "value of ba"}, {"alice", "alice/"}})
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(data[headerSize+8:headerSize+10]) != "ba" {
				t.Fatalf("record layout unexpected: % x", data[headerSize:headerSize+16])
			}
			tc.mutate(data[headerSize:])
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			r := open(t, path)
			mustGet(t, r, "ba", "", false)
			for _, e := range append(tc.hits, kv{"alice", "alice/"}) {
				mustGet(t, r, e.k, e.v, true)
			}
		})
	}
}

// Errors name the file and the rule it breaks, for the log of whoever
// must repair the table.
func TestErrorText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte
		key  string // when Open succeeds, Get(key) must fail
		want string // with %s for the path
	}{
		{"short", make([]byte, 100), "",
			"cdb: %s: malformed file: 100 bytes, shorter than the 2048-byte header"},
		{"zero header", make([]byte, headerSize), "",
			"cdb: %s: malformed file: table 0 at offset 0, outside [2048, 2048]"},
		{"table past end", func() []byte {
			b := make([]byte, headerSize)
			for i := 0; i < headerSize; i += 8 {
				putU32(b, i, headerSize)
			}
			putU32(b, 8*7+4, 1)
			return b
		}(), "", "cdb: %s: malformed file: table 7 of 1 slots at offset 2048, outside [2048, 2048]"},
		{"record in header", func() []byte {
			h := hash([]byte("k"))
			b := make([]byte, headerSize)
			for i := 0; i < headerSize; i += 8 {
				putU32(b, i, headerSize)
			}
			putU32(b, int(8*(h&255)+4), 1)
			b = binary.LittleEndian.AppendUint32(b, h)
			return binary.LittleEndian.AppendUint32(b, 16)
		}(), "k", "cdb: %s: malformed file: record offset 16 outside the records [2048, 2048)"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, tc.name+".cdb")
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err == nil {
			_, _, err = r.Get([]byte(tc.key))
			r.Close()
		}
		if want := fmt.Sprintf(tc.want, path); err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant %s", tc.name, err, want)
		}
	}
}

// corrupt describes one damaged file: start from base, apply mutate.
type corrupt struct {
	name   string
	mutate func(b []byte) []byte
	// openErr: Open must fail with ErrFormat; otherwise Get(key) must.
	openErr bool
	key     string
}

func putU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

func TestMalformed(t *testing.T) {
	t.Parallel()
	recs := []kv{{"alice", "alice/"}, {"bob", "bob/"}, {"carol", "carol/"}}
	base, err := os.ReadFile(build(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	dend := int(binary.LittleEndian.Uint32(base))
	hAlice := hash([]byte("alice"))
	tAlice := int(hAlice & 255)
	tpos := int(binary.LittleEndian.Uint32(base[8*tAlice:]))
	slotAlice := tpos + 8*int((hAlice>>8)%2) // alice is alone in its table of 2 slots
	if binary.LittleEndian.Uint32(base[slotAlice+4:]) != headerSize {
		t.Fatalf("alice's slot not where expected")
	}
	tests := []corrupt{
		{name: "empty file", mutate: func(b []byte) []byte { return nil }, openErr: true},
		{name: "short header", mutate: func(b []byte) []byte { return b[:2047] }, openErr: true},
		{name: "header only", mutate: func(b []byte) []byte { return b[:headerSize] }, openErr: true},
		{name: "cut in records", mutate: func(b []byte) []byte { return b[:headerSize+10] }, openErr: true},
		{name: "cut in tables", mutate: func(b []byte) []byte { return b[:len(b)-1] }, openErr: true},
		{name: "records end before header", mutate: func(b []byte) []byte { putU32(b, 0, 100); return b }, openErr: true},
		{name: "records end past file", mutate: func(b []byte) []byte { putU32(b, 0, uint32(len(b)+1)); return b }, openErr: true},
		{name: "table inside records", mutate: func(b []byte) []byte { putU32(b, 8*tAlice, headerSize); return b }, openErr: true},
		{name: "table past file", mutate: func(b []byte) []byte { putU32(b, 8*tAlice, uint32(len(b))); return b }, openErr: true},
		{name: "slot count overflows", mutate: func(b []byte) []byte { putU32(b, 8*tAlice+4, 0xffffffff); return b }, openErr: true},
		{name: "record in header", key: "alice", mutate: func(b []byte) []byte { putU32(b, slotAlice+4, 8); return b }},
		{name: "record in tables", key: "alice", mutate: func(b []byte) []byte { putU32(b, slotAlice+4, uint32(dend)); return b }},
		{name: "record header past records", key: "alice", mutate: func(b []byte) []byte { putU32(b, slotAlice+4, uint32(dend-4)); return b }},
		{name: "key past records", key: "alice", mutate: func(b []byte) []byte {
			// 12 bytes before the tables: room for the lengths, not for a 5-byte key.
			putU32(b, slotAlice+4, uint32(dend-12))
			putU32(b, dend-12, 5)
			putU32(b, dend-8, 0)
			return b
		}},
		{name: "data past records", key: "alice", mutate: func(b []byte) []byte {
			// The last record ("carol" -> "carol/") ends at the tables;
			// make it alice's and claim one byte of data more than there is.
			last := dend - (8 + 5 + 6)
			putU32(b, slotAlice+4, uint32(last))
			copy(b[last+8:], "alice")
			putU32(b, last+4, 7)
			return b
		}},
		{name: "huge data length", key: "alice", mutate: func(b []byte) []byte { putU32(b, headerSize+4, 0xfffffff0); return b }},
		{name: "empty key, huge data length", key: "", mutate: func(b []byte) []byte {
			// A one-slot table for the empty key, appended at the end,
			// pointing at the first record made to say klen 0, dlen 4 GiB-1.
			h := hash(nil)
			tt := int(h & 255)
			putU32(b, 8*tt, uint32(len(b)))
			putU32(b, 8*tt+4, 1)
			b = binary.LittleEndian.AppendUint32(b, h)
			b = binary.LittleEndian.AppendUint32(b, headerSize)
			putU32(b, headerSize, 0)
			putU32(b, headerSize+4, 0xffffffff)
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.cdb")
			if err := os.WriteFile(path, tc.mutate(bytes.Clone(base)), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if tc.openErr {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Open = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			v, found, err := r.Get([]byte(tc.key))
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrFormat) || found || v != nil {
				t.Fatalf("Get(%q) = %q, %v, %v; want ErrFormat", tc.key, v, found, err)
			}
			// A length field must never size an allocation. The margin
			// covers the test's own small allocations.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("Get allocated %d bytes on a %d-byte file", n, len(base))
			}
		})
	}
}

// A table with no empty slot ends the probe after one pass (crafted
// files only; writers leave half the slots empty).
func TestFullTable(t *testing.T) {
	t.Parallel()
	path := build(t, []kv{{"ba", "1"}})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tt := int(hash([]byte("ba")) & 255)
	tp := int(binary.LittleEndian.Uint32(b[8*tt:]))
	// Fill both slots with a hash nobody asks for and a valid record offset.
	for s := range 2 {
		putU32(b, tp+8*s, 0x12345600|uint32(tt))
		putU32(b, tp+8*s+4, headerSize)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mustGet(t, open(t, path), "ba", "", false)
}

// A file of 4 GiB cannot be addressed by 32-bit offsets. Sparse, so cheap.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.cdb")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<32); err != nil {
		t.Skipf("cannot make a sparse 4 GiB file here: %v", err)
	}
	if _, err := Open(path); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open = %v, want ErrFormat", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.cdb")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "missing.cdb"), fs.ErrNotExist},
		{"directory", dir, ErrFormat},
		// Must return at once, not wait for a writer.
		{"fifo", fifo, ErrFormat},
		{"device", "/dev/null", ErrFormat},
	}
	for _, tc := range tests {
		r, err := Open(tc.path)
		if !errors.Is(err, tc.want) || r != nil {
			t.Errorf("%s: Open = %v, %v; want %v", tc.name, r, err, tc.want)
		}
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	r, err := Open(build(t, []kv{{"a", "b"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "absent"} {
		if _, _, err := r.Get([]byte(key)); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Get(%q) after Close = %v, want os.ErrClosed", key, err)
		}
	}
	if err := r.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
}

// A file replaced under an open Reader keeps answering from the old inode
// (postmap renames, it does not rewrite); one truncated in place gives
// ErrFormat, never a crash.
func TestTruncatedAfterOpen(t *testing.T) {
	t.Parallel()
	path := build(t, []kv{{"alice", "alice/"}})
	r := open(t, path)
	if err := os.Truncate(path, headerSize+4); err != nil {
		t.Fatal(err)
	}
	if v, found, err := r.Get([]byte("alice")); !errors.Is(err, ErrFormat) {
		t.Fatalf("Get = %q, %v, %v; want ErrFormat", v, found, err)
	}
}

// Get is safe from several goroutines (run with -race).
func TestConcurrentGet(t *testing.T) {
	t.Parallel()
	var recs []kv
	for i := range 1000 {
		recs = append(recs, kv{fmt.Sprint("k", i), fmt.Sprint("v", i)})
	}
	r := open(t, build(t, recs))
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := g; i < len(recs); i += 4 {
				v, found, err := r.Get([]byte(recs[i].k))
				if err == nil && (!found || string(v) != recs[i].v) {
					err = fmt.Errorf("Get(%q) = %q, %v", recs[i].k, v, found)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// A record whose data is longer than any table value is a format error, not an
// allocation of the size the file claims.
func TestValueTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.cdb")
	w, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("ok"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("big"), make([]byte, maxValue+1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, ok, err := r.Get([]byte("ok")); err != nil || !ok || string(v) != "v" {
		t.Fatalf("Get(ok) = %q, %v, %v", v, ok, err)
	}
	if _, _, err := r.Get([]byte("big")); !errors.Is(err, ErrFormat) {
		t.Fatalf("Get(big) error = %v, want ErrFormat", err)
	}
}

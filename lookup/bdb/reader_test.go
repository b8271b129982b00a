package bdb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sourceRecords parses testdata/postmap.src as postmap stores it: keys folded
// to lower case, the first of duplicate keys kept, with a trailing NUL when nul.
func sourceRecords(t testing.TB, nul bool) map[string]string {
	t.Helper()
	src, err := os.ReadFile("testdata/postmap.src")
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		if nul {
			k, v = k+"\x00", v+"\x00"
		}
		if _, dup := recs[k]; !dup {
			recs[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func mustOpen(t testing.TB, path string, kind Kind) *Reader {
	t.Helper()
	r, err := Open(path, kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The committed files (testdata/gen.sh) in both kinds and byte orders, with
// and without the trailing NUL, with and without page checksums, answer every key of their source, with the
// long key and the long value stored off-page, and no other form of a key.
func TestPostmapFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		kind Kind
		nul  bool
	}{
		{"postmap-hash.db", Hash, true},
		{"postmap-btree.db", Btree, true},
		{"be-hash.db", Hash, true},
		{"be-btree.db", Btree, true},
		{"chksum-hash.db", Hash, true},
		{"chksum-btree.db", Btree, true},
		{"postmap-nonul-hash.db", Hash, false},
		{"postmap-nonul-btree.db", Btree, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			r := mustOpen(t, filepath.Join("testdata", tc.file), tc.kind)
			recs := sourceRecords(t, tc.nul)
			if len(recs) != 305 {
				t.Fatalf("%d records in the source, want 305", len(recs))
			}
			ctx := context.Background()
			for k, want := range recs {
				v, ok, err := r.Get(ctx, []byte(k))
				if err != nil || !ok || string(v) != want {
					t.Fatalf("Get(%.40q) = %.40q, %v, %v; want %.40q", k, v, ok, err, want)
				}
			}
			other := "\x00"
			if tc.nul {
				other = ""
			}
			for _, k := range []string{"user@example.com" + other, "User@Example.COM\x00", "nobody@example.org\x00", "", "\x00",
				"long-" + strings.Repeat("k", 1500) + "@example.co\x00", "long-" + strings.Repeat("k", 1501) + "@example.com\x00"} {
				if v, ok, err := r.Get(ctx, []byte(k)); ok || err != nil {
					t.Errorf("Get(%.40q) = %.40q, %v, %v; want a miss", k, v, ok, err)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hash, err := os.ReadFile("testdata/postmap-hash.db")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	patch := func(off int, v uint32) []byte {
		b := bytes.Clone(hash[:4096])
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		kind       Kind
		want       error
		text       string
	}{
		{"missing", filepath.Join(dir, "missing"), Hash, fs.ErrNotExist, "no such file"},
		{"directory", dir, Hash, ErrFormat, "not a regular file"},
		{"fifo", filepath.Join(dir, "fifo"), Hash, ErrFormat, "not a regular file"},
		{"empty", write("empty", nil), Hash, ErrFormat, "0 bytes, shorter than a metadata page"},
		{"text", write("text", bytes.Repeat([]byte("alice@example.com alice/\n"), 40)), Hash, ErrFormat, "no hash or btree magic number"},
		{"kind", "testdata/postmap-btree.db", Hash, ErrFormat, "a btree file, not hash"},
		{"kind2", "testdata/be-hash.db", Btree, ErrFormat, "a hash file, not btree"},
		{"version", write("version", patch(16, 6)), Hash, ErrFormat, "hash version 6"},
		{"pagesize", write("pagesize", patch(20, 1000)), Hash, ErrFormat, "page size 1000"},
		{"hashfunc", write("hashfunc", patch(92, 12345)), Hash, ErrFormat, "hash function other than"},
		{"subdb", write("subdb", patch(48, hashSubDB)), Hash, ErrFormat, "several databases"},
		{"encrypted", write("encrypted", func() []byte { b := bytes.Clone(hash[:4096]); b[24] = 1; return b }()), Hash, ErrFormat, "encrypted"},
	} {
		r, err := Open(tc.path, tc.kind)
		if r != nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: Open = %v, %v; want an error wrapping %v with %q", tc.name, r, err, tc.want, tc.text)
		}
	}
}

// A file cut short, or with a page that points at itself, is an error at
// lookup, never a miss or a hang.
func TestCorruptPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, kind := range []Kind{Hash, Btree} {
		name := "testdata/postmap-" + kind.String() + ".db"
		good, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		recs := sourceRecords(t, true)
		// Truncated after the metadata page: every lookup fails.
		r := newReader(good[:4096], kind)
		if _, ok, err := r.Get(ctx, []byte("bob@example.com\x00")); ok || !errors.Is(err, ErrFormat) {
			t.Errorf("%s truncated: Get = %v, %v; want ErrFormat", kind, ok, err)
		}
		// Every page's next pointer at itself: chains loop.
		loop := bytes.Clone(good)
		for pg := 1; pg < len(loop)/4096; pg++ {
			binary.LittleEndian.PutUint32(loop[pg*4096+16:], uint32(pg))
		}
		r = newReader(loop, kind)
		errs := 0
		for k := range recs {
			start := time.Now()
			_, _, err := r.Get(ctx, []byte(k))
			if err != nil {
				errs++
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("%s looped: Get(%.30q) = %v; want ErrFormat", kind, k, err)
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("%s looped: Get(%.30q) took %v", kind, k, d)
			}
		}
		if errs == 0 {
			t.Errorf("%s looped: no lookup noticed the cycles", kind)
		}
	}
}

// Get waits while postmap holds its exclusive lock, and gives up with
// ErrLocked when the context ends first.
func TestLock(t *testing.T) {
	t.Parallel()
	r := mustOpen(t, "testdata/postmap-hash.db", Hash)
	f, err := os.Open("testdata/postmap-hash.db")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := r.Get(ctx, []byte("bob@example.com\x00")); !errors.Is(err, ErrLocked) {
		t.Fatalf("Get under an exclusive lock = %v; want ErrLocked", err)
	}
	fd := int(f.Fd())
	unlocked := make(chan struct{})
	go func() {
		defer close(unlocked)
		time.Sleep(50 * time.Millisecond)
		syscall.Flock(fd, syscall.LOCK_UN)
	}()
	defer func() { <-unlocked }() // before f.Close
	v, ok, err := r.Get(context.Background(), []byte("bob@example.com\x00"))
	if string(v) != "example.com/bob\x00" || !ok || err != nil {
		t.Fatalf("Get after unlock = %q, %v, %v", v, ok, err)
	}
}

// Two lookups of one Reader at once (parallel LMTP sessions): while the first still
// reads, the second finishing must not drop the shared lock under it, or postmap could
// rewrite the file in the middle of the first.
func TestLockHeldForEveryLookup(t *testing.T) {
	r := mustOpen(t, "testdata/postmap-hash.db", Hash)
	inside, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	testHookLocked = func() {
		if first.CompareAndSwap(true, false) {
			close(inside)
			<-release
		}
	}
	defer func() { testHookLocked = nil }()
	key := []byte("bob@example.com\x00")
	aDone := make(chan error, 1)
	go func() { _, _, err := r.Get(context.Background(), key); aDone <- err }()
	<-inside
	bDone := make(chan error, 1)
	go func() { _, _, err := r.Get(context.Background(), key); bDone <- err }()
	var bErr error
	bFinished := false
	select {
	case bErr = <-bDone:
		bFinished = true
	case <-time.After(200 * time.Millisecond):
	}
	// postmap's side: an exclusive lock must not be granted while the first reads.
	f, err := os.Open("testdata/postmap-hash.db")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		t.Error("postmap's exclusive lock was granted while a lookup was reading")
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if !bFinished {
		bErr = <-bDone
	}
	if bErr != nil {
		t.Fatal(bErr)
	}
}

func TestHashFunc(t *testing.T) {
	t.Parallel()
	// h_charkey of every file Berkeley DB 5.3 writes with its default hash.
	if h := hashFunc([]byte(charKey)); h != 0x5e688dd1 {
		t.Errorf("hashFunc(charKey) = %#x, want 0x5e688dd1", h)
	}
	for n, want := range map[uint64]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 8: 3, 9: 4, 1 << 31: 31, 1<<31 + 1: 32} {
		if got := log2(n); got != want {
			t.Errorf("log2(%d) = %d, want %d", n, got, want)
		}
	}
}

// A bucket page that Berkeley DB allocated and never wrote (all zeros) is an
// empty bucket: postmap leaves one when no key hashes there.
func TestEmptyBucket(t *testing.T) {
	t.Parallel()
	r := mustOpen(t, "testdata/empty-bucket-hash.db", Hash)
	ctx := context.Background()
	for k, want := range map[string]string{"nul@x\x00": "before\x00", "äb@x\x00": "umlaut\x00"} {
		if v, ok, err := r.Get(ctx, []byte(k)); string(v) != want || !ok || err != nil {
			t.Errorf("Get(%q) = %q, %v, %v; want %q", k, v, ok, err, want)
		}
	}
	misses := 0
	for i := range 100 {
		k := []byte("absent" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "\x00")
		if hashFunc(k)&1 != 0 {
			continue // bucket 1, the written one
		}
		misses++
		if v, ok, err := r.Get(ctx, k); ok || err != nil {
			t.Errorf("Get(%q) in the empty bucket = %q, %v, %v; want a miss", k, v, ok, err)
		}
	}
	if misses == 0 {
		t.Fatal("no key for bucket 0")
	}
}

package lmdb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The files in testdata were written by Debian 12's postmap 3.7.11 (liblmdb 0.9.24),
// "postmap -c DIR lmdb:testdata/NAME", from NAME.src:
//
//	small.lmdb  4 entries, one value of 6,000 bytes on 2 overflow pages; tree depth 1
//	deep.lmdb   400 entries; depth 2: a branch page over leaf pages
//	empty.lmdb  no entries: the main DB's root is "no page"
//
// postmap folds keys to lower case and stores keys and values with a trailing NUL.

// source reads a NAME.src as postmap stored it.
func source(t testing.TB, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		m[strings.ToLower(k)+"\x00"] = v + "\x00"
	}
	return m
}

func open(t testing.TB, path string) *Reader {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mustGet(t testing.TB, r *Reader, key, want string, wantFound bool) {
	t.Helper()
	v, found, err := r.Get([]byte(key))
	if err != nil || found != wantFound || string(v) != want {
		t.Errorf("Get(%q) = %.40q, %v, %v; want %.40q, %v", key, v, found, err, want, wantFound)
	}
}

func TestPostmapFiles(t *testing.T) {
	for _, name := range []string{"small", "deep", "empty"} {
		t.Run(name, func(t *testing.T) {
			entries := source(t, "testdata/"+name+".src")
			r := open(t, "testdata/"+name+".lmdb")
			for k, v := range entries {
				mustGet(t, r, k, v, true)
				// The key without its NUL, and keys sorting just before and after it.
				mustGet(t, r, strings.TrimSuffix(k, "\x00"), "", false)
				mustGet(t, r, k+"\x00", "", false)
				mustGet(t, r, k[:len(k)-2]+"\x00", "", false)
			}
			for _, k := range []string{"", "\x00", "a", "Alice@Example.com\x00", "zzzz\x00", "\xff\xff\x00"} {
				mustGet(t, r, k, "", false)
			}
		})
	}
	// The overflow value really is on overflow pages: longer than a page.
	if v := source(t, "testdata/small.src")["long@example.com\x00"]; len(v) <= 4096 {
		t.Fatalf("long value of %d bytes fits in a page", len(v))
	}
}

// Offsets in small.lmdb (page size 4096; meta page 1 is current, txnid 1; the root is
// the leaf page 2, the long value is on pages 3 and 4, the last).
const (
	meta1      = 4096
	mainFlags  = 16 + 24 + dbSize + 4 // in a meta page
	mainRoot   = 16 + 24 + dbSize + 40
	lastPg     = 16 + 24 + 2*dbSize
	txnidOff   = lastPg + 8
	psizeOff   = 16 + 24
	versionOff = 16 + 4
)

// mutated copies file into a temp directory with change applied and returns its path.
func mutated(t *testing.T, file string, change func(b []byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.lmdb")
	if err := os.WriteFile(path, change(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// smallLayout checks that small.lmdb is laid out as the constants above say, so that a
// rebuilt testdata file cannot make the hostile cases miss what they aim at.
func smallLayout(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/small.lmdb")
	if err != nil {
		t.Fatal(err)
	}
	if le64(b[meta1+txnidOff:]) != 1 || le64(b[txnidOff:]) != 0 || le64(b[meta1+mainRoot:]) != 2 ||
		le16(b[2*4096+10:]) != pLeaf || le16(b[3*4096+10:]) != pOverflow || len(b) != 5*4096 {
		t.Fatal("testdata/small.lmdb is not laid out as this test expects")
	}
	return b
}

// Each bad file gives an error wrapping ErrFormat or ErrUnsupported, from Open or from
// the Get of a key that is in the file, and never a panic or a wrong answer.
func TestHostileFiles(t *testing.T) {
	smallLayout(t)
	leaf := 2 * 4096
	node0 := func(b []byte) int { return leaf + int(le16(b[leaf+16:])) } // first node
	// longNode finds the node of long@example.com.
	longNode := func(b []byte) int {
		for i := range int(le16(b[leaf+12:])-16) / 2 {
			off := leaf + int(le16(b[leaf+16+2*i:]))
			if bytes.HasPrefix(b[off+8:], []byte("long@")) {
				return off
			}
		}
		panic("no long@ node")
	}
	for _, tc := range []struct {
		name   string
		file   string
		change func(b []byte) []byte
		key    string // looked up after a successful Open
		want   error
		text   string
	}{
		{"bad magic", "small", func(b []byte) []byte { b[16] ^= 1; return b }, "", ErrFormat, "no LMDB magic"},
		{"bad magic page 1", "small", func(b []byte) []byte { b[meta1+16] ^= 1; return b }, "", ErrFormat, "meta page 1"},
		{"big-endian", "small", func(b []byte) []byte { binary.BigEndian.PutUint32(b[16:], magic); return b }, "", ErrUnsupported, "big-endian"},
		{"32-bit", "small", func(b []byte) []byte { put32(b, 16, 0); put32(b, 12, magic); return b }, "", ErrUnsupported, "32-bit"},
		{"32-bit big-endian", "small", func(b []byte) []byte { put32(b, 16, 0); binary.BigEndian.PutUint32(b[12:], magic); return b }, "", ErrUnsupported, "32-bit liblmdb on a big-endian"},
		{"dev version", "small", func(b []byte) []byte { put32(b, meta1+versionOff, 999); return b }, "", ErrUnsupported, "version 999"},
		{"not a meta page", "small", func(b []byte) []byte { put16(b, 10, pLeaf); return b }, "", ErrFormat, "flags"},
		{"page size 1000", "small", func(b []byte) []byte { put32(b, psizeOff, 1000); return b }, "", ErrFormat, "page size 1000"},
		{"page size 64K", "small", func(b []byte) []byte { put32(b, psizeOff, 65536); return b }, "", ErrFormat, "page size 65536"},
		{"dupsort main DB", "small", func(b []byte) []byte { put16(b, meta1+mainFlags, 0x04); return b }, "", ErrUnsupported, "flags 0x4"},
		{"root past last page", "small", func(b []byte) []byte { put64(b, meta1+mainRoot, 9); return b }, "", ErrFormat, "root page 9"},
		{"root is a meta page", "small", func(b []byte) []byte { put64(b, meta1+mainRoot, 1); return b }, "", ErrFormat, "root page 1"},
		{"last page huge", "small", func(b []byte) []byte { put64(b, meta1+lastPg, 1<<62); return b }, "", ErrFormat, "last page"},
		{"root past end of file", "small", func(b []byte) []byte {
			put64(b, meta1+lastPg, 1000)
			put64(b, meta1+mainRoot, 999)
			return b
		}, "bob@example.com\x00", ErrFormat, "file ends"},
		{"truncated", "small", func(b []byte) []byte { return b[:2*4096+100] }, "bob@example.com\x00", ErrFormat, "file ends"},
		{"page number mismatch", "small", func(b []byte) []byte { put64(b, leaf, 7); return b }, "bob@example.com\x00", ErrFormat, "says it is page 7"},
		{"overflow flags on tree page", "small", func(b []byte) []byte { put16(b, leaf+10, pOverflow); return b }, "bob@example.com\x00", ErrFormat, "not a branch or leaf"},
		{"lower past upper", "small", func(b []byte) []byte { put16(b, leaf+12, le16(b[leaf+14:])+2); return b }, "bob@example.com\x00", ErrFormat, "free space"},
		{"upper past page", "small", func(b []byte) []byte { put16(b, leaf+14, 5000); return b }, "bob@example.com\x00", ErrFormat, "free space"},
		{"odd lower", "small", func(b []byte) []byte { put16(b, leaf+12, le16(b[leaf+12:])+1); return b }, "bob@example.com\x00", ErrFormat, "free space"},
		{"node offset in header", "small", func(b []byte) []byte { put16(b, leaf+16, 4); return b }, "bob@example.com\x00", ErrFormat, "node 0 at offset 4"},
		{"node offset at page end", "small", func(b []byte) []byte { put16(b, leaf+16, 4092); return b }, "bob@example.com\x00", ErrFormat, "node 0 at offset 4092"},
		{"key size past page", "small", func(b []byte) []byte { put16(b, node0(b)+6, 0xffff); return b }, "bob@example.com\x00", ErrFormat, "past the page end"},
		{"data size past page", "small", func(b []byte) []byte { put16(b, node0(b)+2, 0xffff); return b }, "bob@example.com\x00", ErrFormat, "past the page end"},
		{"duplicates node", "small", func(b []byte) []byte { put16(b, node0(b)+4, fDupData); return b }, "bob@example.com\x00", ErrUnsupported, "duplicates"},
		{"sub-database node", "small", func(b []byte) []byte { put16(b, node0(b)+4, fSubData); return b }, "bob@example.com\x00", ErrUnsupported, "sub-database"},
		{"overflow page out of range", "small", func(b []byte) []byte {
			n := longNode(b)
			put64(b, n+8+int(le16(b[n+6:])), 77)
			return b
		}, "long@example.com\x00", ErrFormat, "overflow page 77"},
		{"overflow page is the leaf", "small", func(b []byte) []byte {
			n := longNode(b)
			put64(b, n+8+int(le16(b[n+6:])), 2)
			return b
		}, "long@example.com\x00", ErrFormat, "not an overflow page"},
		{"overflow run too short", "small", func(b []byte) []byte { put32(b, 3*4096+12, 1); return b }, "long@example.com\x00", ErrFormat, "cannot hold"},
		{"overflow run past last page", "small", func(b []byte) []byte { put32(b, 3*4096+12, 9); return b }, "long@example.com\x00", ErrFormat, "past the last page"},
		{"overflow value past file end", "small", func(b []byte) []byte { return b[:4*4096+10] }, "long@example.com\x00", ErrFormat, "past the end of the file"},
		{"overflow value too large", "small", func(b []byte) []byte {
			n := longNode(b)
			put16(b, n+2, 0x200) // size 0x200_0000 + low bits: 32 MiB
			return b
		}, "long@example.com\x00", ErrFormat, "more than"},
		{"branch loop", "deep", func(b []byte) []byte {
			// The root branch page's every child is the root itself.
			root := int(le64(b[4096+mainRoot:])) * 4096
			for i := range int(le16(b[root+12:])-16) / 2 {
				off := root + int(le16(b[root+16+2*i:]))
				put16(b, off, uint16(root/4096))
				put16(b, off+2, 0)
				put16(b, off+4, 0)
			}
			return b
		}, "user200@example.com\x00", ErrFormat, "deeper than 32"},
		{"branch child is a meta page", "deep", func(b []byte) []byte {
			root := int(le64(b[4096+mainRoot:])) * 4096
			off := root + int(le16(b[root+16:]))
			put16(b, off, 1)
			return b
		}, "user000@example.com\x00", ErrFormat, "points to page 1"},
		{"empty branch", "deep", func(b []byte) []byte {
			root := int(le64(b[4096+mainRoot:])) * 4096
			put16(b, root+12, 16)
			return b
		}, "user000@example.com\x00", ErrFormat, "no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := mutated(t, "testdata/"+tc.file+".lmdb", tc.change)
			r, err := Open(path)
			if err == nil {
				defer r.Close()
				if tc.key == "" {
					t.Fatal("Open succeeded")
				}
				var v []byte
				var found bool
				v, found, err = r.Get([]byte(tc.key))
				if err == nil {
					t.Fatalf("Get(%q) = %.40q, %v, nil; want an error", tc.key, v, found)
				}
			} else if tc.key != "" {
				t.Fatalf("Open: %v; want it to succeed and Get to fail", err)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q; want %v with %q and the path", err, tc.want, tc.text)
			}
		})
	}
}

// As liblmdb, the meta page with the higher transaction id is current, page 0 on a tie.
func TestMetaChoice(t *testing.T) {
	smallLayout(t)
	// Page 0 (txnid 0) describes the empty tree; page 1 (txnid 1) the entries.
	for _, tc := range []struct {
		name        string
		txn0, txn1  uint64
		wantEntries bool
	}{
		{"page 1 newer", 0, 1, true},
		{"page 0 newer", 2, 1, false},
		{"tie", 5, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := mutated(t, "testdata/small.lmdb", func(b []byte) []byte {
				put64(b, txnidOff, tc.txn0)
				put64(b, meta1+txnidOff, tc.txn1)
				return b
			})
			want := ""
			if tc.wantEntries {
				want = "example.com/bob/\x00"
			}
			mustGet(t, open(t, path), "bob@example.com\x00", want, tc.wantEntries)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.lmdb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.lmdb")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fifo); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrFormat) {
		t.Errorf("directory: %v", err)
	}
	short := filepath.Join(dir, "short.lmdb")
	if err := os.WriteFile(short, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(short); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "file ends") {
		t.Errorf("5-byte file: %v", err)
	}
}

// Get waits while another process holds the exclusive fcntl lock postmap holds while it
// rewrites the file, as Postfix's readers do, and answers once it is released.
func TestGetWaitsForWriterLock(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 (the other locker) missing")
	}
	path := mutated(t, "testdata/small.lmdb", func(b []byte) []byte { return b })
	r := open(t, path)
	locker := exec.Command("python3", "-c", `
import fcntl, sys
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
`, path)
	stdin, err := locker.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := locker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := locker.Start(); err != nil {
		t.Fatal(err)
	}
	defer locker.Wait()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		stdin.Close()
		t.Fatalf("locker: %q %v", line, err)
	}
	done := make(chan error, 1)
	go func() {
		v, found, err := r.Get([]byte("bob@example.com\x00"))
		if err == nil && (!found || string(v) != "example.com/bob/\x00") {
			err = errors.New("wrong answer " + string(v))
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Get returned while the file was locked: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	stdin.Close() // the locker exits, its lock goes
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package lmdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readTestdata(f *testing.F, name string) []byte {
	b, err := os.ReadFile("testdata/" + name + ".lmdb")
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// classified reports an error a hostile file may give: never an OS error on a regular
// file, only ErrFormat or ErrUnsupported.
func classified(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, ErrUnsupported)
}

// FuzzMeta: parseMeta never panics, and what it accepts is usable: a page size that is a
// power of two in range, a root that is "no page" or a page number in [2, last page],
// and a last page whose offset fits in an int64.
func FuzzMeta(f *testing.F) {
	for _, name := range []string{"small", "deep", "empty"} {
		b := readTestdata(f, name)
		f.Add(b[:pageHeader+metaSize])
		f.Add(b[4096 : 4096+pageHeader+metaSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeta(b)
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0 {
			t.Fatalf("accepted page size %d", m.pageSize)
		}
		if m.mainRoot != invalidPage && (m.mainRoot < 2 || m.mainRoot > m.lastPage) {
			t.Fatalf("accepted root %d with last page %d", m.mainRoot, m.lastPage)
		}
		if off := (m.lastPage + 1) * uint64(m.pageSize); off/uint64(m.pageSize) != m.lastPage+1 || off > 1<<63-1 {
			t.Fatalf("last page %d overflows an offset", m.lastPage)
		}
	})
}

// checkTreePage asserts what a parsed branch or leaf page promises: every node's key and
// data lie inside the page, a search lands on a node, and a leaf search that says
// "found" found a node with exactly that key.
func checkTreePage(t *testing.T, b []byte, pgno uint64, key []byte, wantLeaf bool) {
	p, err := parsePage(b, pgno)
	if err != nil {
		if !classified(err) {
			t.Fatalf("unclassified error %v", err)
		}
		return
	}
	if p.leaf != wantLeaf {
		return // the other target's page kind
	}
	for i := range p.n {
		k := p.key(i)
		if p.leaf {
			d := p.data(i)
			if len(d) > len(b) {
				t.Fatalf("node %d: %d bytes of data in a %d-byte page", i, len(d), len(b))
			}
		} else {
			_ = p.child(i)
		}
		if len(k) > len(b) {
			t.Fatalf("node %d: %d-byte key in a %d-byte page", i, len(k), len(b))
		}
	}
	i, exact := p.search(key)
	if i < -1 || i >= p.n || (!p.leaf && i < 0 && p.n > 1) {
		t.Fatalf("search gave node %d of %d", i, p.n)
	}
	if exact && !bytes.Equal(p.key(i), key) {
		t.Fatalf("search found node %d with key %q for %q", i, p.key(i), key)
	}
}

// FuzzBranchPage: parsePage on branch pages (seeded with deep.lmdb's root).
func FuzzBranchPage(f *testing.F) {
	b := readTestdata(f, "deep")
	root := le64(b[4096+16+24+dbSize+40:])
	f.Add(b[root*4096:(root+1)*4096], root, []byte("user200@example.com\x00"))
	f.Add(b[root*4096:(root+1)*4096], root, []byte(""))
	f.Fuzz(func(t *testing.T, page []byte, pgno uint64, key []byte) {
		checkTreePage(t, page, pgno, key, false)
	})
}

// FuzzLeafPage: parsePage on leaf pages (seeded with small.lmdb's and deep.lmdb's).
func FuzzLeafPage(f *testing.F) {
	small := readTestdata(f, "small")
	f.Add(small[2*4096:3*4096], uint64(2), []byte("bob@example.com\x00"))
	f.Add(small[2*4096:3*4096], uint64(2), []byte("long@example.com\x00"))
	deep := readTestdata(f, "deep")
	f.Add(deep[2*4096:3*4096], uint64(2), []byte("user001@example.com\x00"))
	f.Fuzz(func(t *testing.T, page []byte, pgno uint64, key []byte) {
		checkTreePage(t, page, pgno, key, true)
	})
}

// FuzzOverflowPage: parseOverflow accepts only a run of pages that holds the value.
func FuzzOverflowPage(f *testing.F) {
	small := readTestdata(f, "small")
	f.Add(small[3*4096:3*4096+pageHeader], uint64(3), uint32(6000), uint32(4096))
	f.Fuzz(func(t *testing.T, hdr []byte, pgno uint64, size, pageSize uint32) {
		if pageSize < minPageSize || pageSize > maxPageSize {
			return // parseMeta admits no other page size
		}
		pages, err := parseOverflow(hdr, pgno, size, pageSize)
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if pages == 0 || pages*uint64(pageSize) < uint64(size)+pageHeader {
			t.Fatalf("accepted %d pages for %d bytes", pages, size)
		}
	})
}

// FuzzFile treats arbitrary bytes as an LMDB file. Properties: Open and Get fail only
// with ErrFormat or ErrUnsupported, never panic, and answer the same when asked twice;
// a value is at most MaxValue bytes.
func FuzzFile(f *testing.F) {
	for _, name := range []string{"small", "deep", "empty"} {
		b := readTestdata(f, name)
		f.Add(b, []byte("bob@example.com\x00"))
		f.Add(b, []byte("long@example.com\x00"))
		f.Add(b, []byte("user100@example.com\x00"))
		f.Add(b[:len(b)-4096], []byte("user399@example.com\x00"))
	}
	path := filepath.Join(f.TempDir(), "t.lmdb")
	f.Fuzz(func(t *testing.T, file, key []byte) {
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			if !classified(err) {
				t.Fatalf("Open: unclassified error %v", err)
			}
			return
		}
		defer r.Close()
		v1, found1, err1 := r.Get(key)
		v2, found2, err2 := r.Get(key)
		if (err1 == nil) != (err2 == nil) || found1 != found2 || !bytes.Equal(v1, v2) {
			t.Fatalf("two answers: %q %v %v, then %q %v %v", v1, found1, err1, v2, found2, err2)
		}
		if err1 != nil && !classified(err1) {
			t.Fatalf("Get: unclassified error %v", err1)
		}
		if len(v1) > MaxValue || (!found1 && v1 != nil) {
			t.Fatalf("Get = %d bytes, %v", len(v1), found1)
		}
	})
}

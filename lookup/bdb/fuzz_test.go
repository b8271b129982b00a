package bdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// The fuzz targets build files with small pages: many pages per input.
const fuzzPage = 512

// metaPage is a metadata page of a file of the given kind with one hash bucket (on
// page 1) or its btree root on page 1, and last_pgno last.
func metaPage(kind Kind, order binary.ByteOrder, last uint32) []byte {
	b := make([]byte, fuzzPage)
	order.PutUint32(b[20:], fuzzPage)
	order.PutUint32(b[32:], last)
	if kind == Hash {
		order.PutUint32(b[12:], hashMagic)
		order.PutUint32(b[16:], 9)
		b[25] = pHashMeta
		order.PutUint32(b[92:], hashFunc([]byte(charKey)))
		order.PutUint32(b[96:], 1) // spares[0]: bucket 0 on page 1
	} else {
		order.PutUint32(b[12:], btreeMagic)
		order.PutUint32(b[16:], 9)
		b[25] = pBtreeMeta
		order.PutUint32(b[88:], 1)
	}
	return b
}

// itemPage is a page holding items back to back from its end, item 0 last.
func itemPage(order binary.ByteOrder, pgno, next uint32, typ, level uint8, items ...[]byte) []byte {
	b := make([]byte, fuzzPage)
	order.PutUint32(b[8:], pgno)
	order.PutUint32(b[16:], next)
	order.PutUint16(b[20:], uint16(len(items)))
	b[24], b[25] = level, typ
	end := fuzzPage
	for i, it := range items {
		end -= len(it)
		copy(b[end:], it)
		order.PutUint16(b[pageHeader+2*i:], uint16(end))
	}
	order.PutUint16(b[22:], uint16(end))
	return b
}

func overflowPage(order binary.ByteOrder, pgno, next uint32, data []byte) []byte {
	b := make([]byte, fuzzPage)
	order.PutUint32(b[8:], pgno)
	order.PutUint32(b[16:], next)
	order.PutUint16(b[20:], 1)
	order.PutUint16(b[22:], uint16(len(data)))
	b[25] = pOverflow
	copy(b[pageHeader:], data)
	return b
}

func offPageItem(order binary.ByteOrder, typ uint8, pgno, tlen uint32) []byte {
	b := make([]byte, 12)
	b[0] = typ // hash: type first; btree: length first, type at 2 (set by the caller)
	order.PutUint32(b[4:], pgno)
	order.PutUint32(b[8:], tlen)
	return b
}

func hashKD(s string) []byte { return append([]byte{hKeyData}, s...) }

func btreeKD(order binary.ByteOrder, s string) []byte {
	b := make([]byte, 3, 3+len(s)+3)
	order.PutUint16(b, uint16(len(s)))
	b[2] = bKeyData
	b = append(b, s...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// checkGet asks r for key twice. Properties: an error wraps ErrFormat (the file is in
// memory: no OS error) and comes with no answer; a value is no larger than the file;
// the same question gets the same answer.
func checkGet(t *testing.T, r *Reader, size int, key []byte) ([]byte, bool, error) {
	t.Helper()
	v, found, err := r.Get(context.Background(), key)
	if err != nil && (!errors.Is(err, ErrFormat) || found || v != nil) {
		t.Fatalf("Get = %q, %v, %v; an error must wrap ErrFormat, with no answer", v, found, err)
	}
	if len(v) > size {
		t.Fatalf("a value of %d bytes from a file of %d", len(v), size)
	}
	v2, found2, err2 := r.Get(context.Background(), key)
	if !bytes.Equal(v, v2) || found != found2 || (err == nil) != (err2 == nil) {
		t.Fatalf("asked twice: (%q, %v, %v) then (%q, %v, %v)", v, found, err, v2, found2, err2)
	}
	return v, found, err
}

// FuzzMeta: any bytes as a metadata page. Properties: an error wraps ErrFormat; an
// accepted page has a power-of-two page size from 512 to 65536, the kind its magic
// number names, Berkeley DB's hash function (hash) or a root page (btree).
func FuzzMeta(f *testing.F) {
	for _, name := range []string{"postmap-hash.db", "postmap-btree.db", "be-hash.db", "be-btree.db"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:metaRead])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMeta(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) || m != nil {
				t.Fatalf("parseMeta = %v, %v", m, err)
			}
			return
		}
		if m.pageSize < 512 || m.pageSize > 65536 || m.pageSize&(m.pageSize-1) != 0 {
			t.Fatalf("page size %d accepted", m.pageSize)
		}
		magic := m.order.Uint32(data[12:])
		switch {
		case m.kind == Hash && magic == hashMagic:
			if m.order.Uint32(data[92:]) != hashFunc([]byte(charKey)) {
				t.Fatal("another hash function accepted")
			}
		case m.kind == Btree && magic == btreeMagic:
			if m.root == 0 {
				t.Fatal("btree root 0 accepted")
			}
		default:
			t.Fatalf("kind %v with magic %#x", m.kind, magic)
		}
	})
}

// FuzzHashPage: any bytes as the pages of a hash file whose metadata is sound, page 1
// holding its one bucket. Properties: checkGet's; a hit's key and value both appear in
// the file when they are short enough to be stored on the page.
func FuzzHashPage(f *testing.F) {
	le := binary.LittleEndian
	f.Add(itemPage(le, 1, 0, pHash, 0, hashKD("a@x\x00"), hashKD("v\x00"), hashKD("b@x"), hashKD("w")), []byte("a@x\x00"), false)
	f.Add(itemPage(binary.BigEndian, 1, 2, pHash, 0, hashKD("a"), hashKD("v")), []byte("b"), true)
	f.Add(append(itemPage(le, 1, 2, pHash, 0, hashKD("a"), offPageItem(le, hOffPage, 2, 3)), overflowPage(le, 2, 0, []byte("val"))...), []byte("a"), false)
	f.Add(itemPage(le, 1, 0, pHash, 0, offPageItem(le, hOffPage, 1, 1), hashKD("v")), []byte("x"), false)
	f.Add(itemPage(le, 1, 0, pHash, 0, hashKD("k"), []byte{hDuplicate, 1, 0, 'd', 1, 0}), []byte("k"), false)
	f.Add(make([]byte, fuzzPage), []byte("k"), false)
	f.Fuzz(func(t *testing.T, pages, key []byte, big bool) {
		var order binary.ByteOrder = binary.LittleEndian
		if big {
			order = binary.BigEndian
		}
		n := (len(pages) + fuzzPage - 1) / fuzzPage
		file := append(metaPage(Hash, order, uint32(max(n, 1))), pages...)
		file = append(file, make([]byte, (n+1)*fuzzPage-len(file))...)
		v, found, _ := checkGet(t, newReader(file, Hash), len(file), key)
		if found && len(key) < fuzzPage/4 && len(v) < fuzzPage/4 && (!bytes.Contains(file, key) || !bytes.Contains(file, v)) {
			t.Fatalf("Get(%q) = %q: not in the file", key, v)
		}
	})
}

// FuzzBtreePage: any bytes as the pages of a btree file whose metadata is sound, its
// root on page 1. Properties: checkGet's, and a short hit's key and value are in the
// file.
func FuzzBtreePage(f *testing.F) {
	le := binary.LittleEndian
	leaf := itemPage(le, 1, 0, pLBtree, 1, btreeKD(le, "a"), btreeKD(le, "1"), btreeKD(le, "b"), btreeKD(le, "2"))
	f.Add(leaf, []byte("b"), false)
	f.Add(leaf, []byte("c"), false)
	internal := func(order binary.ByteOrder, key string, child uint32) []byte {
		b := make([]byte, 12, 12+len(key))
		order.PutUint16(b, uint16(len(key)))
		b[2] = bKeyData
		order.PutUint32(b[4:], child)
		return append(b, key...)
	}
	root := itemPage(le, 1, 0, pIBtree, 2, internal(le, "", 2), internal(le, "m", 3))
	f.Add(append(append(bytes.Clone(root), itemPage(le, 2, 0, pLBtree, 1, btreeKD(le, "a"), btreeKD(le, "1"))...),
		itemPage(le, 3, 0, pLBtree, 1, btreeKD(le, "x"), btreeKD(le, "2"))...), []byte("x"), false)
	f.Add(append(bytes.Clone(root), root...), []byte("z"), false)
	be := binary.BigEndian
	f.Add(itemPage(be, 1, 0, pLBtree, 1, btreeKD(be, "k"), btreeKD(be, "v")), []byte("k"), true)
	f.Fuzz(func(t *testing.T, pages, key []byte, big bool) {
		var order binary.ByteOrder = binary.LittleEndian
		if big {
			order = binary.BigEndian
		}
		n := (len(pages) + fuzzPage - 1) / fuzzPage
		file := append(metaPage(Btree, order, uint32(max(n, 1))), pages...)
		file = append(file, make([]byte, (n+1)*fuzzPage-len(file))...)
		v, found, _ := checkGet(t, newReader(file, Btree), len(file), key)
		if found && len(key) < fuzzPage/4 && len(v) < fuzzPage/4 && (!bytes.Contains(file, key) || !bytes.Contains(file, v)) {
			t.Fatalf("Get(%q) = %q: not in the file", key, v)
		}
	})
}

// FuzzOverflow: a sound hash bucket whose key "k" has an off-page value of tlen bytes
// starting on page 2, and any bytes as the overflow chain. Properties: checkGet's; a
// hit is exactly tlen bytes long, each found in the file.
func FuzzOverflow(f *testing.F) {
	le := binary.LittleEndian
	f.Add(uint32(5), overflowPage(le, 2, 0, []byte("hello")))
	f.Add(uint32(600), append(overflowPage(le, 2, 3, bytes.Repeat([]byte("a"), 486)), overflowPage(le, 3, 0, bytes.Repeat([]byte("b"), 114))...))
	f.Add(uint32(10), overflowPage(le, 2, 2, []byte("loop")))
	f.Add(uint32(1<<31), overflowPage(le, 2, 0, []byte("x")))
	f.Fuzz(func(t *testing.T, tlen uint32, chain []byte) {
		n := (len(chain) + fuzzPage - 1) / fuzzPage
		bucket := itemPage(le, 1, 0, pHash, 0, hashKD("k"), offPageItem(le, hOffPage, 2, tlen))
		file := append(metaPage(Hash, le, uint32(n+1)), bucket...)
		file = append(file, chain...)
		file = append(file, make([]byte, (n+2)*fuzzPage-len(file))...)
		v, found, _ := checkGet(t, newReader(file, Hash), len(file), []byte("k"))
		if found && uint32(len(v)) != tlen {
			t.Fatalf("value of %d bytes, the item says %d", len(v), tlen)
		}
		for _, c := range v {
			if bytes.IndexByte(file, c) < 0 {
				t.Fatalf("byte %q of the value is nowhere in the file", c)
			}
		}
	})
}

// The fuzz targets' page builders make pages the reader accepts, so that fuzzing
// starts from sound files and mutates them.
func TestBuiltPages(t *testing.T) {
	t.Parallel()
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		hash := append(metaPage(Hash, order, 2), itemPage(order, 1, 2, pHash, 0, hashKD("a"), hashKD("1"), hashKD("b"), offPageItem(order, hOffPage, 3, 600))...)
		dup := []byte{hDuplicate, 0, 0, 'd', 0, 0}
		order.PutUint16(dup[1:], 1)
		order.PutUint16(dup[4:], 1)
		hash = append(hash, itemPage(order, 2, 0, pHash, 0, hashKD("c"), dup)...)
		order.PutUint32(hash[32:], 4)
		hash = append(hash, overflowPage(order, 3, 4, bytes.Repeat([]byte("x"), 486))...)
		hash = append(hash, overflowPage(order, 4, 0, bytes.Repeat([]byte("y"), 114))...)
		leaf := itemPage(order, 1, 0, pLBtree, 1, btreeKD(order, "a"), btreeKD(order, "1"), btreeKD(order, "b"), btreeKD(order, "2"))
		btree := append(metaPage(Btree, order, 1), leaf...)
		for _, tc := range []struct {
			file []byte
			kind Kind
			key  string
			want string
		}{
			{hash, Hash, "a", "1"},
			{hash, Hash, "b", strings.Repeat("x", 486) + strings.Repeat("y", 114)},
			{hash, Hash, "c", "d"},
			{hash, Hash, "z", ""},
			{btree, Btree, "a", "1"},
			{btree, Btree, "b", "2"},
			{btree, Btree, "ab", ""},
		} {
			v, found, err := newReader(tc.file, tc.kind).Get(context.Background(), []byte(tc.key))
			if err != nil || found != (tc.want != "") || string(v) != tc.want {
				t.Errorf("%v %s: Get(%q) = %.20q, %v, %v; want %.20q", order, tc.kind, tc.key, v, found, err, tc.want)
			}
		}
	}
}

package bdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Kind is a file's access method.
type Kind int

const (
	Hash  Kind = 1 // postmap hash:
	Btree Kind = 2 // postmap btree:
)

func (k Kind) String() string {
	switch k {
	case Hash:
		return "hash"
	case Btree:
		return "btree"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ErrFormat is wrapped by every error about the content of a file: not a
// Berkeley DB file, a kind or feature this package does not read, or a
// corrupt or truncated file.
var ErrFormat = errors.New("bad Berkeley DB file")

// ErrLocked is wrapped by the error of a Get that gave up waiting for the
// shared lock, because a writer (postmap rebuilding the file) held it too long.
var ErrLocked = errors.New("file locked by a writer")

const (
	hashMagic  = 0x061561
	btreeMagic = 0x053162

	metaRead = 512 // the metadata fields used here end at byte 224; pages are at least 512 bytes

	pageHeader   = 26
	chksumHeader = 32 // a 2-byte pad and a 4-byte checksum follow the header

	pHashUnsorted = 2
	pIBtree       = 3
	pLBtree       = 5
	pOverflow     = 7
	pHashMeta     = 8
	pBtreeMeta    = 9
	pHash         = 13

	hKeyData   = 1
	hDuplicate = 2
	hOffPage   = 3
	hOffDup    = 4

	bKeyData   = 1
	bDuplicate = 2
	bOverflow  = 3
	bDelete    = 0x80

	// Metadata flags: several databases in one file; recno, fixed-length
	// records, compression. None is ever set by postmap.
	hashSubDB      = 0x02
	btreeRecno     = 0x002
	btreeFixedLen  = 0x008
	btreeSubDB     = 0x020
	btreeCompress  = 0x080
	metaChecksum   = 0x01
	metaPartitions = 0x02 | 0x04
)

// lockWait bounds how long a Get waits for postmap to finish rewriting the
// file; a deliverer then defers and tries again later.
const lockWait = 30 * time.Second

// Reader answers lookups in one Berkeley DB file, reading only the pages
// each lookup needs. Get may be called from several goroutines at once;
// Close must not run concurrently with Get.
type Reader struct {
	f    *os.File     // nil for an in-memory file (tests)
	ra   io.ReaderAt  // f, or the in-memory file
	stat func() int64 // current size of the file, -1 on error
	// size is the file's size when last looked at: Get asks again only when
	// the metadata page claims more pages than that.
	size atomic.Int64
	// pageSize is the page size last seen: Get reads a btree's metadata page
	// and page 1, its root, in one pread when it has not changed.
	pageSize atomic.Int64
	pool     sync.Pool // of *[]byte: page buffers
	path     string
	kind     Kind
	// serial makes one lookup at a time hold the shared flock. A flock belongs to the
	// open file, not to a goroutine: when two lookups of one Reader (parallel LMTP
	// sessions) held it, the first to finish would unlock it under the second, and
	// postmap could rewrite the file while the second still reads it.
	serial sync.Mutex
}

// Open opens the file at path, which must be a Berkeley DB file of the given
// kind, and checks its metadata page. It reads nothing else.
//
// It returns an error wrapping the OS error if the file cannot be opened or
// read, ErrLocked if a writer holds it for longer than 30 seconds, and an
// error wrapping ErrFormat if it is not a regular file, not a Berkeley DB
// file of that kind, or uses a feature this package does not read.
func Open(path string, kind Kind) (*Reader, error) {
	// O_NONBLOCK: a FIFO planted at the table's path must give an error, not
	// hang the delivery until Postfix kills it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file (%s): %w", path, fi.Mode().Type(), ErrFormat)
	}
	r := &Reader{f: f, ra: f, path: path, kind: kind, stat: func() int64 {
		fi, err := f.Stat()
		if err != nil {
			return -1
		}
		return fi.Size()
	}}
	r.size.Store(fi.Size())
	unlock, err := r.lock(context.Background())
	if err != nil {
		f.Close()
		return nil, err
	}
	v, err := r.view()
	unlock()
	if err == nil {
		v.release()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// newReader reads an in-memory file, without locking.
func newReader(data []byte, kind Kind) *Reader {
	r := &Reader{ra: bytes.NewReader(data), path: "test.db", kind: kind, stat: func() int64 { return int64(len(data)) }}
	r.size.Store(int64(len(data)))
	return r
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Get returns the value stored under key, byte for byte (a trailing NUL
// included if the file has one), and whether the key is there.
//
// It returns an error wrapping the OS error if the file cannot be read,
// ErrLocked if a writer holds the file for longer than 30 seconds or ctx ends
// first, and an error wrapping ErrFormat if the pages on the way are corrupt.
// A corrupt file is never reported as a missing key.
func (r *Reader) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	i, v, err := r.GetFirst(ctx, key)
	return v, i == 0, err
}

// GetFirst looks the keys up in order under one lock and returns the index and
// value of the first one present, or -1 when none is. It fails as Get does.
func (r *Reader) GetFirst(ctx context.Context, keys ...[]byte) (int, []byte, error) {
	r.serial.Lock()
	defer r.serial.Unlock()
	unlock, err := r.lock(ctx)
	if err != nil {
		return -1, nil, err
	}
	defer unlock()
	if testHookLocked != nil {
		testHookLocked()
	}
	v, err := r.view()
	if err != nil {
		return -1, nil, err
	}
	defer v.release()
	for i, key := range keys {
		var val []byte
		var found bool
		if v.m.kind == Hash {
			val, found, err = v.hashGet(key)
		} else {
			val, found, err = v.btreeGet(key)
		}
		if err != nil {
			return -1, nil, err
		}
		if found {
			return i, val, nil
		}
	}
	return -1, nil, nil
}

// testHookLocked, when set by a test, runs inside a lookup while it holds the lock.
var testHookLocked func()

// lock takes a shared flock(2), as Postfix's dict_db does around each lookup,
// waiting while postmap holds its exclusive one.
func (r *Reader) lock(ctx context.Context) (func(), error) {
	if r.f == nil {
		return func() {}, nil
	}
	fd := int(r.f.Fd())
	deadline := time.Now().Add(lockWait)
	pause := time.Millisecond
	for {
		err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(fd, syscall.LOCK_UN) }, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			return nil, fmt.Errorf("%s: lock: %w", r.path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: still locked after %v: %w", r.path, lockWait, ErrLocked)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: waiting for the lock: %w: %w", r.path, ctx.Err(), ErrLocked)
		case <-t.C:
		}
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// meta is what a lookup needs from the metadata page.
type meta struct {
	order    binary.ByteOrder
	kind     Kind
	pageSize uint32
	overhead int // page header, with the checksum area if any
	lastPgno uint32

	// hash
	maxBucket, highMask, lowMask uint32
	spares                       [32]uint32

	// btree
	root uint32
}

// charKey is the string whose hash the metadata page records, with the NUL
// that C's sizeof counts.
const charKey = "%$sniglet^&\x00"

// hashFunc is Berkeley DB's default hash function, __ham_func5 (an FNV-1
// variant starting from 0).
func hashFunc(b []byte) uint32 {
	var h uint32
	for _, c := range b {
		h *= 16777619
		h ^= uint32(c)
	}
	return h
}

// parseMeta checks and decodes the first bytes (at least metaRead) of a
// metadata page.
func parseMeta(b []byte) (*meta, error) {
	if len(b) < metaRead {
		return nil, fmt.Errorf("%d bytes, shorter than a metadata page: %w", len(b), ErrFormat)
	}
	m := &meta{}
	switch magic := b[12:16]; {
	case binary.LittleEndian.Uint32(magic) == hashMagic || binary.LittleEndian.Uint32(magic) == btreeMagic:
		m.order = binary.LittleEndian
	case binary.BigEndian.Uint32(magic) == hashMagic || binary.BigEndian.Uint32(magic) == btreeMagic:
		m.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("no hash or btree magic number: %w", ErrFormat)
	}
	u32 := func(off int) uint32 { return m.order.Uint32(b[off:]) }
	version, typ, flags := u32(16), b[25], u32(48)
	if u32(8) != 0 {
		return nil, fmt.Errorf("metadata page says it is page %d: %w", u32(8), ErrFormat)
	}
	if u32(12) == hashMagic {
		m.kind = Hash
		if typ != pHashMeta {
			return nil, fmt.Errorf("hash metadata page of type %d: %w", typ, ErrFormat)
		}
		// Versions 7 to 9 are what Berkeley DB 5.3 opens without an upgrade.
		if version < 7 || version > 9 {
			return nil, fmt.Errorf("hash version %d: %w", version, ErrFormat)
		}
		if flags&hashSubDB != 0 {
			return nil, fmt.Errorf("several databases in one file: %w", ErrFormat)
		}
	} else {
		m.kind = Btree
		if typ != pBtreeMeta {
			return nil, fmt.Errorf("btree metadata page of type %d: %w", typ, ErrFormat)
		}
		if version < 8 || version > 9 {
			return nil, fmt.Errorf("btree version %d: %w", version, ErrFormat)
		}
		if flags&(btreeRecno|btreeFixedLen) != 0 {
			return nil, fmt.Errorf("a recno file: %w", ErrFormat)
		}
		if flags&btreeSubDB != 0 {
			return nil, fmt.Errorf("several databases in one file: %w", ErrFormat)
		}
		if flags&btreeCompress != 0 {
			return nil, fmt.Errorf("a compressed btree: %w", ErrFormat)
		}
	}
	m.pageSize = u32(20)
	if m.pageSize < 512 || m.pageSize > 65536 || m.pageSize&(m.pageSize-1) != 0 {
		return nil, fmt.Errorf("page size %d: %w", m.pageSize, ErrFormat)
	}
	if b[24] != 0 {
		return nil, fmt.Errorf("an encrypted file: %w", ErrFormat)
	}
	if b[26]&metaPartitions != 0 || u32(36) > 1 {
		return nil, fmt.Errorf("a partitioned file: %w", ErrFormat)
	}
	m.overhead = pageHeader
	if b[26]&metaChecksum != 0 {
		m.overhead = chksumHeader
	}
	m.lastPgno = u32(32)
	if m.kind == Hash {
		m.maxBucket, m.highMask, m.lowMask = u32(72), u32(76), u32(80)
		if h := u32(92); h != hashFunc([]byte(charKey)) {
			return nil, fmt.Errorf("written with a hash function other than Berkeley DB's default (h_charkey %#x): %w", h, ErrFormat)
		}
		for i := range m.spares {
			m.spares[i] = u32(96 + 4*i)
		}
	} else {
		m.root = u32(88)
		if m.root == 0 {
			return nil, fmt.Errorf("btree root page 0: %w", ErrFormat)
		}
	}
	return m, nil
}

// view is one lookup's look at the file: its metadata as read under the lock
// and a budget of page reads.
type view struct {
	r      *Reader
	m      *meta
	size   int64
	budget int      // page reads left
	page1  []byte   // page 1, read with the metadata page, or nil
	bufs   [][]byte // buffers to give back to the pool
}

func (r *Reader) view() (*view, error) {
	ps := r.pageSize.Load()
	if r.kind != Btree {
		ps = 0 // a hash bucket is on page 1 seldom: reading it costs more than it saves
	}
	b := r.buffer(int(max(metaRead, 2*ps)))
	n, err := r.ra.ReadAt(b, 0)
	if n < metaRead {
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", r.path, err)
		}
		return nil, r.malformed("%d bytes, shorter than a metadata page", n)
	}
	m, err := parseMeta(b[:metaRead])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path, err)
	}
	var page1 []byte
	if int64(m.pageSize) == ps && n == len(b) {
		page1 = b[ps:]
	}
	r.pageSize.Store(int64(m.pageSize))
	if m.kind != r.kind {
		return nil, r.malformed("a %s file, not %s", m.kind, r.kind)
	}
	// The file's size bounds every loop and allocation. A sound file has
	// last_pgno+1 pages; only when it claims more (a file rebuilt larger since
	// it was last looked at, or a lie) is the size asked for again, which
	// saves a system call on every lookup.
	size := r.size.Load()
	if (int64(m.lastPgno)+1)*int64(m.pageSize) > size {
		if size = r.stat(); size < 0 {
			return nil, r.malformed("cannot stat the file")
		}
		r.size.Store(size)
	}
	pages := size / int64(m.pageSize)
	// A lookup in a sound file reads each page at most a few times (a tree
	// page once, an overflow page once per comparison with its key and once
	// as the value), so the budget stops every cycle of pages without
	// refusing any real file.
	return &view{r: r, m: m, size: size, budget: int(4*pages + 64), page1: page1, bufs: [][]byte{b}}, nil
}

// buffer returns a buffer of n bytes, from the pool when one is large enough.
// Its content is garbage: every use overwrites it with a read.
func (r *Reader) buffer(n int) []byte {
	if p, ok := r.pool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

// release returns the view's page buffers to the pool. Nothing returned by Get
// refers to them: values are copies.
func (v *view) release() {
	for _, b := range v.bufs {
		v.r.pool.Put(&b)
	}
	v.bufs = nil
}

func (r *Reader) malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", r.path, fmt.Sprintf(format, args...), ErrFormat)
}

// page is one page read, with its header decoded.
type page struct {
	b       []byte
	pgno    uint32
	next    uint32
	entries int
	hf      int // hf_offset: on an overflow page, the bytes it holds
	level   uint8
	typ     uint8
}

// read returns page pgno, which must be of one of the given types.
func (v *view) read(pgno uint32, types ...uint8) (*page, error) {
	b, err := v.readRaw(pgno)
	if err != nil {
		return nil, err
	}
	p, err := parsePage(v.m, b, pgno, types...)
	if err != nil {
		return nil, v.wrap(err)
	}
	return p, nil
}

// readRaw returns the bytes of page pgno.
func (v *view) readRaw(pgno uint32) ([]byte, error) {
	m := v.m
	if pgno == 0 || pgno > m.lastPgno {
		return nil, v.r.malformed("page %d outside the file's pages 1-%d", pgno, m.lastPgno)
	}
	if v.budget--; v.budget < 0 {
		return nil, v.r.malformed("more pages visited than the file has: a cycle of pages")
	}
	if pgno == 1 && v.page1 != nil {
		return v.page1, nil
	}
	b := v.r.buffer(int(m.pageSize))
	v.bufs = append(v.bufs, b)
	if n, err := v.r.ra.ReadAt(b, int64(pgno)*int64(m.pageSize)); n < len(b) {
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", v.r.path, err)
		}
		return nil, v.r.malformed("page %d beyond the end of the file", pgno)
	}
	return b, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parsePage decodes and checks the header of page pgno: its number, its type,
// and that its index array fits.
func parsePage(m *meta, b []byte, pgno uint32, types ...uint8) (*page, error) {
	p := &page{
		b:       b,
		pgno:    m.order.Uint32(b[8:]),
		next:    m.order.Uint32(b[16:]),
		entries: int(m.order.Uint16(b[20:])),
		hf:      int(m.order.Uint16(b[22:])),
		level:   b[24],
		typ:     b[25],
	}
	if p.pgno != pgno {
		return nil, fmt.Errorf("page %d says it is page %d: %w", pgno, p.pgno, ErrFormat)
	}
	ok := false
	for _, t := range types {
		ok = ok || p.typ == t
	}
	if !ok {
		return nil, fmt.Errorf("page %d has type %d, want %v: %w", pgno, p.typ, types, ErrFormat)
	}
	if p.typ != pOverflow && m.overhead+2*p.entries > len(b) {
		return nil, fmt.Errorf("page %d: %d entries do not fit: %w", pgno, p.entries, ErrFormat)
	}
	return p, nil
}

// inp is the offset of item i, checked to lie in the item area.
func (p *page) inp(m *meta, i int) (int, error) {
	off := int(m.order.Uint16(p.b[m.overhead+2*i:]))
	if off < m.overhead+2*p.entries || off >= len(p.b) {
		return 0, fmt.Errorf("page %d: item %d at offset %d, outside the item area: %w", p.pgno, i, off, ErrFormat)
	}
	return off, nil
}

// hashItem returns item i of a hash page: its bytes run up to the start of
// item i-1 (or the page end).
func (p *page) hashItem(m *meta, i int) ([]byte, error) {
	start, err := p.inp(m, i)
	if err != nil {
		return nil, err
	}
	end := len(p.b)
	if i > 0 {
		if end, err = p.inp(m, i-1); err != nil {
			return nil, err
		}
	}
	if end <= start {
		return nil, fmt.Errorf("page %d: item %d overlaps item %d: %w", p.pgno, i, i-1, ErrFormat)
	}
	return p.b[start:end], nil
}

// offPage decodes an off-page reference: the first page and total length, at
// bytes 4 and 8 of the item in both hash and btree pages.
func offPage(m *meta, p *page, item []byte) (uint32, uint32, error) {
	if len(item) < 12 {
		return 0, 0, fmt.Errorf("page %d: off-page item of %d bytes: %w", p.pgno, len(item), ErrFormat)
	}
	return m.order.Uint32(item[4:]), m.order.Uint32(item[8:]), nil
}

// hashGet looks key up in a hash file.
func (v *view) hashGet(key []byte) ([]byte, bool, error) {
	m := v.m
	bucket := hashFunc(key) & m.highMask
	if bucket > m.maxBucket {
		bucket &= m.lowMask
	}
	l := log2(uint64(bucket) + 1)
	if l >= len(m.spares) {
		return nil, false, v.r.malformed("bucket %d beyond the spares table", bucket)
	}
	pg := uint64(bucket) + uint64(m.spares[l])
	if pg > uint64(m.lastPgno) {
		return nil, false, v.r.malformed("bucket %d on page %d, beyond the last page %d", bucket, pg, m.lastPgno)
	}
	for pgno, first := uint32(pg), true; pgno != 0; first = false {
		b, err := v.readRaw(pgno)
		if err != nil {
			return nil, false, err
		}
		// A bucket that never held an item may be a page Berkeley DB allocated
		// but never wrote: all zeros, an empty bucket. postmap leaves one when a
		// table's few keys all hash to other buckets.
		if first && allZero(b) {
			return nil, false, nil
		}
		p, err := parsePage(m, b, pgno, pHash, pHashUnsorted)
		if err != nil {
			return nil, false, v.wrap(err)
		}
		if p.entries%2 != 0 {
			return nil, false, v.r.malformed("hash page %d has an odd number of items (%d)", pgno, p.entries)
		}
		for i := 0; i < p.entries; i += 2 {
			k, err := p.hashItem(m, i)
			if err != nil {
				return nil, false, v.wrap(err)
			}
			var same bool
			switch k[0] {
			case hKeyData:
				same = bytes.Equal(k[1:], key)
			case hOffPage:
				first, tlen, err := offPage(m, p, k)
				if err != nil {
					return nil, false, v.wrap(err)
				}
				if tlen == uint32(len(key)) {
					c, err := v.compareOverflow(key, first, tlen)
					if err != nil {
						return nil, false, err
					}
					same = c == 0
				}
			default:
				return nil, false, v.r.malformed("hash page %d: key item of type %d", pgno, k[0])
			}
			if !same {
				continue
			}
			d, err := p.hashItem(m, i+1)
			if err != nil {
				return nil, false, v.wrap(err)
			}
			switch d[0] {
			case hKeyData:
				return bytes.Clone(d[1:]), true, nil
			case hOffPage:
				first, tlen, err := offPage(m, p, d)
				if err != nil {
					return nil, false, v.wrap(err)
				}
				val, err := v.readOverflow(first, tlen)
				return val, err == nil, err
			case hDuplicate:
				// The first of the duplicates is the answer, as a plain get gives.
				if len(d) < 3 {
					return nil, false, v.r.malformed("hash page %d: empty duplicate set", pgno)
				}
				n := int(m.order.Uint16(d[1:]))
				if 3+n > len(d) {
					return nil, false, v.r.malformed("hash page %d: duplicate of %d bytes in a set of %d", pgno, n, len(d)-1)
				}
				return bytes.Clone(d[3 : 3+n]), true, nil
			case hOffDup:
				return nil, false, v.r.malformed("hash page %d: off-page duplicates are not supported", pgno)
			default:
				return nil, false, v.r.malformed("hash page %d: data item of type %d", pgno, d[0])
			}
		}
		pgno = p.next
	}
	return nil, false, nil
}

// log2 is Berkeley DB's __db_log2: the smallest l with 2^l >= n.
func log2(n uint64) int {
	l := 0
	for uint64(1)<<l < n {
		l++
	}
	return l
}

func (v *view) wrap(err error) error { return fmt.Errorf("%s: %w", v.r.path, err) }

// readOverflow returns the tlen bytes of the overflow chain starting at first.
func (v *view) readOverflow(first, tlen uint32) ([]byte, error) {
	if int64(tlen) > v.size {
		return nil, v.r.malformed("off-page item of %d bytes in a file of %d", tlen, v.size)
	}
	out := make([]byte, 0, tlen)
	err := v.walkOverflow(first, tlen, func(chunk []byte) bool {
		out = append(out, chunk...)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// compareOverflow compares key with the tlen-byte item of the overflow chain
// starting at first, as bytes.Compare(key, item), reading no further than the
// first difference.
func (v *view) compareOverflow(key []byte, first, tlen uint32) (int, error) {
	rest, c := key, 0
	err := v.walkOverflow(first, tlen, func(chunk []byte) bool {
		n := min(len(rest), len(chunk))
		if c = bytes.Compare(rest[:n], chunk[:n]); c != 0 {
			return false
		}
		rest = rest[n:]
		if n < len(chunk) {
			c = -1 // key ended first
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if c == 0 && len(rest) > 0 {
		c = 1 // item ended first
	}
	return c, nil
}

// walkOverflow hands the chain's pages' contents to fn in order until fn
// returns false or tlen bytes have been seen. The chain must hold exactly
// tlen bytes.
func (v *view) walkOverflow(pgno, tlen uint32, fn func([]byte) bool) error {
	m := v.m
	seen := uint32(0)
	for seen < tlen {
		if pgno == 0 {
			return v.r.malformed("off-page item ends after %d of %d bytes", seen, tlen)
		}
		p, err := v.read(pgno, pOverflow)
		if err != nil {
			return err
		}
		if p.hf == 0 || p.hf > len(p.b)-m.overhead || uint32(p.hf) > tlen-seen {
			return v.r.malformed("overflow page %d holds %d bytes; %d of %d left", pgno, p.hf, tlen-seen, tlen)
		}
		seen += uint32(p.hf)
		if !fn(p.b[m.overhead : m.overhead+p.hf]) {
			return nil
		}
		pgno = p.next
	}
	return nil
}

// btreeGet looks key up in a btree file.
func (v *view) btreeGet(key []byte) ([]byte, bool, error) {
	m := v.m
	pgno := m.root
	want := 0 // level the next page must have; 0: the root, any
	for {
		p, err := v.read(pgno, pIBtree, pLBtree)
		if err != nil {
			return nil, false, err
		}
		if want != 0 && int(p.level) != want {
			return nil, false, v.r.malformed("btree page %d at level %d, want %d", pgno, p.level, want)
		}
		if p.typ == pLBtree {
			if p.level != 1 {
				return nil, false, v.r.malformed("btree leaf page %d at level %d", pgno, p.level)
			}
			return v.leafGet(p, key)
		}
		if p.level < 2 || p.entries == 0 {
			return nil, false, v.r.malformed("btree internal page %d at level %d with %d items", pgno, p.level, p.entries)
		}
		// The last item whose key is not greater than key; item 0 counts as
		// smaller than every key.
		lo, hi := 1, p.entries // items [lo, hi) are undecided; all before lo are <= key
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			c, err := v.compareInternal(p, mid, key)
			if err != nil {
				return nil, false, err
			}
			if c >= 0 {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		off, err := p.inp(m, lo-1)
		if err != nil {
			return nil, false, v.wrap(err)
		}
		if off+12 > len(p.b) {
			return nil, false, v.r.malformed("btree page %d: item %d overruns the page", pgno, lo-1)
		}
		pgno = m.order.Uint32(p.b[off+4:])
		want = int(p.level) - 1
	}
}

// compareInternal compares key with the key of item i of an internal page.
func (v *view) compareInternal(p *page, i int, key []byte) (int, error) {
	m := v.m
	off, err := p.inp(m, i)
	if err != nil {
		return 0, v.wrap(err)
	}
	if off+12 > len(p.b) {
		return 0, v.r.malformed("btree page %d: item %d overruns the page", p.pgno, i)
	}
	n, typ := int(m.order.Uint16(p.b[off:])), p.b[off+2]&^bDelete
	if off+12+n > len(p.b) {
		return 0, v.r.malformed("btree page %d: item %d of %d bytes overruns the page", p.pgno, i, n)
	}
	data := p.b[off+12 : off+12+n]
	switch typ {
	case bKeyData:
		return bytes.Compare(key, data), nil
	case bOverflow:
		first, tlen, err := offPage(m, p, data)
		if err != nil {
			return 0, v.wrap(err)
		}
		return v.compareOverflow(key, first, tlen)
	}
	return 0, v.r.malformed("btree page %d: internal item of type %d", p.pgno, typ)
}

// leafItem returns item i of a leaf page: its type and either its bytes or,
// for an off-page item, the 12-byte reference.
func (v *view) leafItem(p *page, i int) (uint8, []byte, error) {
	m := v.m
	off, err := p.inp(m, i)
	if err != nil {
		return 0, nil, v.wrap(err)
	}
	if off+3 > len(p.b) {
		return 0, nil, v.r.malformed("btree page %d: item %d overruns the page", p.pgno, i)
	}
	typ := p.b[off+2]
	if typ&^bDelete == bKeyData {
		n := int(m.order.Uint16(p.b[off:]))
		if off+3+n > len(p.b) {
			return 0, nil, v.r.malformed("btree page %d: item %d of %d bytes overruns the page", p.pgno, i, n)
		}
		return typ, p.b[off+3 : off+3+n], nil
	}
	if off+12 > len(p.b) {
		return 0, nil, v.r.malformed("btree page %d: item %d overruns the page", p.pgno, i)
	}
	return typ, p.b[off : off+12], nil
}

func (v *view) compareLeaf(p *page, i int, key []byte) (int, error) {
	typ, data, err := v.leafItem(p, i)
	if err != nil {
		return 0, err
	}
	switch typ &^ bDelete {
	case bKeyData:
		return bytes.Compare(key, data), nil
	case bOverflow:
		first, tlen, err := offPage(v.m, p, data)
		if err != nil {
			return 0, v.wrap(err)
		}
		return v.compareOverflow(key, first, tlen)
	}
	return 0, v.r.malformed("btree page %d: key item of type %d", p.pgno, typ)
}

// leafGet looks key up among the key, value pairs of a leaf page.
func (v *view) leafGet(p *page, key []byte) ([]byte, bool, error) {
	m := v.m
	if p.entries%2 != 0 {
		return nil, false, v.r.malformed("btree leaf page %d has an odd number of items (%d)", p.pgno, p.entries)
	}
	lo, hi := 0, p.entries/2 // pairs
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c, err := v.compareLeaf(p, 2*mid, key)
		if err != nil {
			return nil, false, err
		}
		switch {
		case c > 0:
			lo = mid + 1
		case c < 0:
			hi = mid
		default:
			i := 2 * mid
			// On-page duplicates share the key's offset; the first is the answer.
			for i >= 2 && m.order.Uint16(p.b[m.overhead+2*(i-2):]) == m.order.Uint16(p.b[m.overhead+2*i:]) {
				i -= 2
			}
			if typ, _, err := v.leafItem(p, i); err != nil {
				return nil, false, err
			} else if typ&bDelete != 0 {
				return nil, false, nil
			}
			typ, data, err := v.leafItem(p, i+1)
			if err != nil {
				return nil, false, err
			}
			switch typ &^ bDelete {
			case bKeyData:
				return bytes.Clone(data), true, nil
			case bOverflow:
				first, tlen, err := offPage(m, p, data)
				if err != nil {
					return nil, false, v.wrap(err)
				}
				val, err := v.readOverflow(first, tlen)
				return val, err == nil, err
			case bDuplicate:
				return nil, false, v.r.malformed("btree page %d: off-page duplicates are not supported", p.pgno)
			}
			return nil, false, v.r.malformed("btree page %d: data item of type %d", p.pgno, typ)
		}
	}
	return nil, false, nil
}

package lmdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrFormat reports a file that is not a well-formed LMDB file: a bad meta page, a
	// page number outside the file, a page or node that does not fit, a tree too deep.
	ErrFormat = errors.New("lmdb: malformed file")
	// ErrUnsupported reports a well-formed file this reader does not read: another
	// machine's layout (32-bit, big-endian), another data version, or a main DB with
	// flags Postfix never sets.
	ErrUnsupported = errors.New("lmdb: unsupported file")
)

// MaxValue is the largest value Get returns. Postfix table values are addresses and
// paths; a larger one is refused rather than allocated.
const MaxValue = 16 << 20

const (
	pageHeader = 16
	metaSize   = 136 // MDB_meta after the page header
	nodeHeader = 8
	dbSize     = 48

	magic       = 0xBEEFC0DE
	dataVersion = 1

	pBranch   = 0x01
	pLeaf     = 0x02
	pOverflow = 0x04
	pMeta     = 0x08
	pLeaf2    = 0x20
	pSubP     = 0x40
	pTypeMask = pBranch | pLeaf | pOverflow | pMeta | pLeaf2 | pSubP

	fBigData = 0x01
	fSubData = 0x02
	fDupData = 0x04

	invalidPage = math.MaxUint64

	// maxDepth is liblmdb's CURSOR_STACK: no tree it writes is deeper.
	maxDepth = 32

	minPageSize = 512
	maxPageSize = 32768
)

// meta is what a reader needs from the current meta page.
type meta struct {
	pageSize uint32
	mainRoot uint64
	lastPage uint64
	txnid    uint64
}

// parseMeta checks one meta page as liblmdb's mdb_env_read_header does and returns its
// fields. b holds at least the page header and the meta record of the page.
func parseMeta(b []byte) (meta, error) {
	var m meta
	if len(b) < pageHeader+metaSize {
		return m, fmt.Errorf("%w: meta page shorter than %d bytes", ErrFormat, pageHeader+metaSize)
	}
	mm := b[pageHeader:]
	if le32(mm) != magic {
		switch {
		case binary.BigEndian.Uint32(mm) == magic:
			return m, fmt.Errorf("%w: written on a big-endian machine", ErrUnsupported)
		case le32(b[12:]) == magic:
			return m, fmt.Errorf("%w: written by a 32-bit liblmdb", ErrUnsupported)
		case binary.BigEndian.Uint32(b[12:]) == magic:
			return m, fmt.Errorf("%w: written by a 32-bit liblmdb on a big-endian machine", ErrUnsupported)
		}
		return m, fmt.Errorf("%w: no LMDB magic number", ErrFormat)
	}
	if f := le16(b[10:]); f&pTypeMask != pMeta {
		return m, fmt.Errorf("%w: meta page has flags %#x", ErrFormat, f)
	}
	if v := le32(mm[4:]); v != dataVersion {
		return m, fmt.Errorf("%w: data version %d, not %d (liblmdb 0.9)", ErrUnsupported, v, dataVersion)
	}
	free, main := mm[24:24+dbSize], mm[24+dbSize:24+2*dbSize]
	m.pageSize = le32(free)
	if m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return m, fmt.Errorf("%w: page size %d", ErrFormat, m.pageSize)
	}
	if f := le16(main[4:]); f != 0 {
		return m, fmt.Errorf("%w: main DB has flags %#x (Postfix sets none)", ErrUnsupported, f)
	}
	m.mainRoot = le64(main[40:])
	m.lastPage = le64(mm[24+2*dbSize:])
	m.txnid = le64(mm[24+2*dbSize+8:])
	if m.lastPage < 1 || m.lastPage > math.MaxInt64/uint64(m.pageSize)-1 {
		return m, fmt.Errorf("%w: last page %d", ErrFormat, m.lastPage)
	}
	if m.mainRoot != invalidPage && (m.mainRoot < 2 || m.mainRoot > m.lastPage) {
		return m, fmt.Errorf("%w: main DB root page %d outside [2, %d]", ErrFormat, m.mainRoot, m.lastPage)
	}
	return m, nil
}

// page is a checked branch or leaf page.
type page struct {
	b    []byte // the whole page
	leaf bool
	n    int // number of nodes
}

// parsePage checks that b (one whole page) is a branch or leaf page numbered pgno whose
// header and node offsets fit in it.
func parsePage(b []byte, pgno uint64) (page, error) {
	p := page{b: b}
	if len(b) < pageHeader {
		return p, fmt.Errorf("%w: page %d shorter than its header", ErrFormat, pgno)
	}
	if got := le64(b); got != pgno {
		return p, fmt.Errorf("%w: page %d says it is page %d", ErrFormat, pgno, got)
	}
	switch f := le16(b[10:]) & pTypeMask; f {
	case pBranch:
	case pLeaf:
		p.leaf = true
	default:
		return p, fmt.Errorf("%w: page %d has flags %#x, not a branch or leaf page", ErrFormat, pgno, le16(b[10:]))
	}
	lower, upper := int(le16(b[12:])), int(le16(b[14:]))
	if lower < pageHeader || lower > upper || upper > len(b) || (lower-pageHeader)%2 != 0 {
		return p, fmt.Errorf("%w: page %d: free space [%d, %d) outside the page", ErrFormat, pgno, lower, upper)
	}
	p.n = (lower - pageHeader) / 2
	if !p.leaf && p.n == 0 {
		return p, fmt.Errorf("%w: branch page %d has no keys", ErrFormat, pgno)
	}
	for i := range p.n {
		off := int(le16(b[pageHeader+2*i:]))
		if off < upper || off+nodeHeader > len(b) {
			return p, fmt.Errorf("%w: page %d: node %d at offset %d outside [%d, %d)", ErrFormat, pgno, i, off, upper, len(b))
		}
		ksize := int(le16(b[off+6:]))
		end := off + nodeHeader + ksize
		if p.leaf {
			switch flags := le16(b[off+4:]); {
			case flags&(fSubData|fDupData) != 0:
				return p, fmt.Errorf("%w: page %d: node %d holds a sub-database or duplicates (flags %#x)", ErrUnsupported, pgno, i, flags)
			case flags&fBigData != 0:
				end += 8
			default:
				end += int(p.dataSize(off))
			}
		}
		if end > len(b) {
			return p, fmt.Errorf("%w: page %d: node %d ends at %d, past the page end %d", ErrFormat, pgno, i, end, len(b))
		}
	}
	return p, nil
}

func (p page) off(i int) int { return int(le16(p.b[pageHeader+2*i:])) }
func (p page) key(i int) []byte {
	off := p.off(i)
	return p.b[off+nodeHeader : off+nodeHeader+int(le16(p.b[off+6:]))]
}
func (p page) flags(i int) uint16 { return le16(p.b[p.off(i)+4:]) }

func (p page) dataSize(off int) uint32 {
	return uint32(le16(p.b[off:])) | uint32(le16(p.b[off+2:]))<<16
}

// child is the page number a branch node points to.
func (p page) child(i int) uint64 {
	off := p.off(i)
	return uint64(le16(p.b[off:])) | uint64(le16(p.b[off+2:]))<<16 | uint64(le16(p.b[off+4:]))<<32
}

// data is a leaf node's inline data, or for an overflow value its 8-byte page number.
func (p page) data(i int) []byte {
	off := p.off(i)
	start := off + nodeHeader + int(le16(p.b[off+6:]))
	if p.flags(i)&fBigData != 0 {
		return p.b[start : start+8]
	}
	return p.b[start : start+int(p.dataSize(off))]
}

// search returns for a leaf page the index of key and whether it is there; for a branch
// page the index of the child to follow: the last node whose key is not greater than
// key, node 0 standing for "less than everything".
func (p page) search(key []byte) (int, bool) {
	lo, hi := 0, p.n // invariant: nodes before lo are < key, nodes from hi on are > key
	if !p.leaf {
		lo = 1
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(p.key(mid), key); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return lo - 1, false
}

// parseOverflow checks the header of the overflow page pgno, from which a value of size
// bytes is to be read, and returns the number of pages in its run.
func parseOverflow(b []byte, pgno uint64, size uint32, pageSize uint32) (uint64, error) {
	if len(b) < pageHeader {
		return 0, fmt.Errorf("%w: overflow page %d shorter than its header", ErrFormat, pgno)
	}
	if got := le64(b); got != pgno {
		return 0, fmt.Errorf("%w: page %d says it is page %d", ErrFormat, pgno, got)
	}
	if f := le16(b[10:]); f&pTypeMask != pOverflow {
		return 0, fmt.Errorf("%w: page %d has flags %#x, not an overflow page", ErrFormat, pgno, f)
	}
	pages := uint64(le32(b[12:]))
	if pages == 0 || uint64(pageHeader)+uint64(size) > pages*uint64(pageSize) {
		return 0, fmt.Errorf("%w: overflow page %d: %d pages cannot hold %d bytes", ErrFormat, pgno, pages, size)
	}
	return pages, nil
}

// Reader answers lookups in one LMDB file. Close must not run concurrently with Get.
type Reader struct {
	f    *os.File
	path string
	// mu serialises Get: the shared lock belongs to the open file description, so
	// two Gets on one Reader would release each other's lock.
	mu      sync.Mutex
	buf     []byte
	metaBuf []byte
	// pageSize is page 0's, from the last meta read: both meta pages come in one read.
	pageSize uint32
	// branches caches the branch pages of the snapshot cached names (nothing when
	// cached.txnid is 0): liblmdb never writes over a page of the last committed
	// snapshot, so they stay valid while the meta pages name that snapshot.
	cached   meta
	branches map[uint64]page
	modTime  time.Time
}

// maxCachedBytes bounds the branch cache: 4 MiB, 1024 pages of 4 KiB, every branch page
// of a table with about two million entries (postmap's 1,000,000-entry table with short
// keys has 408).
const maxCachedBytes = 4 << 20

// Open opens the LMDB file at path and checks its meta pages. It does not read the tree.
//
// It returns an error wrapping the OS error if the file cannot be opened or read, and
// one wrapping ErrFormat or ErrUnsupported if it is not a regular file or its meta pages
// are not those of a 64-bit little-endian liblmdb 0.9 file with a Postfix main DB.
func Open(path string) (*Reader, error) {
	// O_NONBLOCK: a FIFO planted at the table's path must give an error, not hang.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("lmdb: %w", err)
	}
	r := &Reader{f: f, path: path}
	if err := r.init(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) init() error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("lmdb: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return r.wrap(fmt.Errorf("%w: not a regular file (%s)", ErrFormat, fi.Mode().Type()))
	}
	r.modTime = fi.ModTime()
	if err := r.lock(); err != nil {
		return err
	}
	defer r.unlock()
	_, err = r.meta()
	return err
}

// Get returns the value stored under key, found false if there is none. The value is
// a fresh copy. An error means the file could not be read or is malformed; it is never
// a miss.
func (r *Reader) Get(key []byte) (value []byte, found bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.lock(); err != nil {
		return nil, false, err
	}
	defer r.unlock()
	m, err := r.meta()
	if err != nil {
		return nil, false, err
	}
	v, found, err := r.get(m, key)
	if err != nil {
		return nil, false, r.wrap(err)
	}
	return v, found, nil
}

func (r *Reader) get(m meta, key []byte) ([]byte, bool, error) {
	if m.mainRoot == invalidPage {
		return nil, false, nil
	}
	if m != r.cached || r.branches == nil {
		r.cached, r.branches = m, map[uint64]page{}
	}
	if cap(r.buf) < int(m.pageSize) {
		r.buf = make([]byte, m.pageSize)
	}
	buf := r.buf[:m.pageSize]
	pgno := m.mainRoot
	for depth := 0; ; depth++ {
		if depth == maxDepth {
			return nil, false, fmt.Errorf("%w: tree deeper than %d levels", ErrFormat, maxDepth)
		}
		p, ok := r.branches[pgno]
		if !ok {
			if err := r.readPage(buf, m, pgno); err != nil {
				return nil, false, err
			}
			var err error
			if p, err = parsePage(buf, pgno); err != nil {
				return nil, false, err
			}
			if !p.leaf && len(r.branches) < maxCachedBytes/len(buf) {
				p.b = bytes.Clone(p.b)
				r.branches[pgno] = p
			}
		}
		i, exact := p.search(key)
		if !p.leaf {
			child := p.child(max(i, 0))
			if child < 2 || child > m.lastPage {
				return nil, false, fmt.Errorf("%w: branch page %d points to page %d outside [2, %d]", ErrFormat, pgno, child, m.lastPage)
			}
			pgno = child
			continue
		}
		if !exact {
			return nil, false, nil
		}
		if p.flags(i)&fBigData == 0 {
			return bytes.Clone(p.data(i)), true, nil
		}
		v, err := r.overflow(m, le64(p.data(i)), p.dataSize(p.off(i)))
		return v, err == nil, err
	}
}

// overflow reads a value of size bytes from the overflow pages starting at pgno.
func (r *Reader) overflow(m meta, pgno uint64, size uint32) ([]byte, error) {
	if pgno < 2 || pgno > m.lastPage {
		return nil, fmt.Errorf("%w: overflow page %d outside [2, %d]", ErrFormat, pgno, m.lastPage)
	}
	if size > MaxValue {
		return nil, fmt.Errorf("%w: value of %d bytes, more than %d", ErrFormat, size, MaxValue)
	}
	var hdr [pageHeader]byte
	off := int64(pgno) * int64(m.pageSize)
	if err := r.readAt(hdr[:], off); err != nil {
		return nil, err
	}
	pages, err := parseOverflow(hdr[:], pgno, size, m.pageSize)
	if err != nil {
		return nil, err
	}
	if pages-1 > m.lastPage-pgno {
		return nil, fmt.Errorf("%w: overflow page %d: %d pages run past the last page %d", ErrFormat, pgno, pages, m.lastPage)
	}
	// The file may be shorter than the meta claims: check before allocating.
	fi, err := r.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("lmdb: %w", err)
	}
	if off+pageHeader+int64(size) > fi.Size() {
		return nil, fmt.Errorf("%w: overflow value at page %d runs past the end of the file", ErrFormat, pgno)
	}
	v := make([]byte, size)
	if err := r.readAt(v, off+pageHeader); err != nil {
		return nil, err
	}
	return v, nil
}

// meta reads both meta pages and returns the current one. Both come in one pread when
// the page size is the one last seen (at first, 4096, Linux's).
func (r *Reader) meta() (meta, error) {
	psize := int(r.pageSize)
	if psize == 0 {
		psize = 4096
	}
	const size = pageHeader + metaSize
	if cap(r.metaBuf) < psize+size {
		r.metaBuf = make([]byte, psize+size)
	}
	b := r.metaBuf[:psize+size]
	// A short read is fine as long as page 0's meta is whole: a file with smaller
	// pages may be shorter than the guess.
	n, err := r.f.ReadAt(b, 0)
	if n < size {
		if err == io.EOF {
			return meta{}, r.wrap(fmt.Errorf("%w: file ends inside the first meta page (%d bytes)", ErrFormat, n))
		}
		return meta{}, fmt.Errorf("lmdb: %w", err)
	}
	m0, err := parseMeta(b[:size])
	if err != nil {
		return meta{}, r.wrap(fmt.Errorf("meta page 0: %w", err))
	}
	// liblmdb reads page 1 at the page size page 0 gives, and keeps that page size.
	r.pageSize = m0.pageSize
	off := int(m0.pageSize)
	if off+size <= n {
		b = b[off : off+size]
	} else {
		b = b[:size]
		if err := r.readAt(b, int64(off)); err != nil {
			return meta{}, r.wrap(err)
		}
	}
	m1, err := parseMeta(b)
	if err != nil {
		return meta{}, r.wrap(fmt.Errorf("meta page 1: %w", err))
	}
	if m1.txnid > m0.txnid {
		m1.pageSize = m0.pageSize
		return m1, nil
	}
	return m0, nil
}

func (r *Reader) readPage(buf []byte, m meta, pgno uint64) error {
	return r.readAt(buf, int64(pgno)*int64(m.pageSize))
}

func (r *Reader) readAt(buf []byte, off int64) error {
	n, err := r.f.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == io.EOF {
		return fmt.Errorf("%w: file ends inside %d bytes at offset %d", ErrFormat, len(buf), off)
	}
	return fmt.Errorf("lmdb: %w", err)
}

// lock takes the shared lock Postfix's readers take (fcntl, whole file), waiting while
// postmap holds its exclusive one.
func (r *Reader) lock() error { return r.setLock(unix.F_RDLCK) }

func (r *Reader) unlock() { r.setLock(unix.F_UNLCK) }

func (r *Reader) setLock(typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	for {
		err := unix.FcntlFlock(r.f.Fd(), unix.F_OFD_SETLKW, &lk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("lmdb: %s: lock: %w", r.path, err)
		}
		return nil
	}
}

func (r *Reader) wrap(err error) error {
	if errors.Is(err, ErrFormat) || errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	return err
}

// ModTime is the file's modification time when it was opened.
func (r *Reader) ModTime() time.Time { return r.modTime }

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

package cdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Reader answers lookups in one cdb file, reading only what each lookup
// needs. Get may be called from several goroutines at once; Close must not
// run concurrently with Get.
type Reader struct {
	f      *os.File
	path   string
	size   uint64
	dend   uint64 // end of the records: where table 0 starts
	header [headerSize]byte
}

// slotChunk is how many hash slots one pread fetches. With tables half full
// a probe usually ends within two slots; 8 keeps the buffer on the stack.
const slotChunk = 8

// maxValue bounds the data of one record: a file (sparse, up to 4 GiB) must not decide
// how much memory a lookup asks for. No value a table gives vdeliver (a path, an id, an
// address list) comes near it.
const maxValue = 16 << 20

// valuePeek is how many bytes past the key one pread fetches, so that a
// short value (a mailbox path, a uid) comes in the same system call as the
// key it belongs to.
const valuePeek = 256

// Open opens the cdb file at path, reads its 2048-byte header and checks
// that every hash table lies inside the file. It does not read the records.
//
// It returns an error wrapping the OS error if the file cannot be opened or
// read, and an error wrapping ErrFormat if it is not a regular file, is
// shorter than the header, is 4 GiB or larger, or its header points outside
// the file.
func Open(path string) (*Reader, error) {
	// O_NONBLOCK: a FIFO planted at the table's path must give an error,
	// not hang the delivery until Postfix kills it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("cdb: %w", err)
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
		return fmt.Errorf("cdb: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return r.malformed("not a regular file (%s)", fi.Mode().Type())
	}
	size := fi.Size()
	if size < headerSize {
		return r.malformed("%d bytes, shorter than the %d-byte header", size, headerSize)
	}
	if size > maxFileSize {
		return r.malformed("%d bytes, larger than 32-bit offsets can address", size)
	}
	r.size = uint64(size)
	if err := r.readAt(r.header[:], 0); err != nil {
		return err
	}
	r.dend = uint64(le32(r.header[:]))
	if r.dend < headerSize || r.dend > r.size {
		return r.malformed("table 0 at offset %d, outside [%d, %d]", r.dend, headerSize, r.size)
	}
	for t := range 256 {
		pos, slots := r.table(uint32(t))
		if slots == 0 {
			// Never read, so its offset cannot mislead a lookup.
			continue
		}
		if pos < r.dend || pos+8*slots > r.size {
			return r.malformed("table %d of %d slots at offset %d, outside [%d, %d]",
				t, slots, pos, r.dend, r.size)
		}
	}
	return nil
}

// Get returns the value of the first record added under key. A key that is
// not in the file gives found == false and a nil error.
//
// It returns an error wrapping ErrFormat if a slot or record it reads points
// outside the file's record area (the file is corrupt or was truncated after
// Open), an error wrapping the OS error if a read fails, and one wrapping
// os.ErrClosed after Close.
func (r *Reader) Get(key []byte) (value []byte, found bool, err error) {
	if r.f == nil {
		return nil, false, fmt.Errorf("cdb: get from %s: %w", r.path, os.ErrClosed)
	}
	h := hash(key)
	tpos, slots := r.table(h & 255)
	if slots == 0 {
		return nil, false, nil
	}
	var buf [slotChunk * 8]byte
	i := uint64(h>>8) % slots
	// Every slot is visited at most once: a full table without an empty
	// slot (possible only in a crafted file) ends the probe instead of
	// looping forever.
	for seen := uint64(0); seen < slots; {
		n := min(slotChunk, slots-i, slots-seen)
		chunk := buf[:8*n]
		if err := r.readAt(chunk, tpos+8*i); err != nil {
			return nil, false, err
		}
		for j := uint64(0); j < n; j++ {
			sh, rpos := le32(chunk[8*j:]), le32(chunk[8*j+4:])
			if rpos == 0 {
				return nil, false, nil
			}
			if sh != h {
				continue
			}
			value, found, err := r.record(uint64(rpos), key)
			if found || err != nil {
				return value, found, err
			}
		}
		seen += n
		if i += n; i == slots {
			i = 0
		}
	}
	return nil, false, nil
}

// record reads the record at pos and returns its data if its key is key.
func (r *Reader) record(pos uint64, key []byte) ([]byte, bool, error) {
	if pos < headerSize || pos+8 > r.dend {
		return nil, false, r.malformed("record offset %d outside the records [%d, %d)", pos, headerSize, r.dend)
	}
	// The buffer is bounded by the record area, never by a length the
	// file claims: a hostile file cannot make us allocate more than its size.
	avail := r.dend - pos
	buf := make([]byte, min(8+uint64(len(key))+valuePeek, avail))
	if err := r.readAt(buf, pos); err != nil {
		return nil, false, err
	}
	klen, dlen := uint64(le32(buf)), uint64(le32(buf[4:]))
	if klen != uint64(len(key)) {
		return nil, false, nil
	}
	if 8+klen > avail {
		return nil, false, r.malformed("key of record at offset %d runs past the records", pos)
	}
	// The hash matched; only the key bytes tell a collision from a hit.
	if !bytes.Equal(buf[8:8+klen], key) {
		return nil, false, nil
	}
	if 8+klen+dlen > avail {
		return nil, false, r.malformed("data of record at offset %d runs past the records", pos)
	}
	if dlen > maxValue {
		return nil, false, r.malformed("data of record at offset %d is %d bytes, more than %d", pos, dlen, maxValue)
	}
	value := make([]byte, dlen)
	have := copy(value, buf[8+klen:])
	if rest := value[have:]; len(rest) > 0 {
		if err := r.readAt(rest, pos+8+klen+uint64(have)); err != nil {
			return nil, false, err
		}
	}
	return value, true, nil
}

// Close closes the file. Close after Close returns an error wrapping
// os.ErrClosed.
func (r *Reader) Close() error {
	if r.f == nil {
		return fmt.Errorf("cdb: close %s: %w", r.path, os.ErrClosed)
	}
	err := r.f.Close()
	r.f = nil
	if err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	return nil
}

// table returns the offset and slot count of hash table t from the header.
func (r *Reader) table(t uint32) (pos, slots uint64) {
	e := r.header[8*t:]
	return uint64(le32(e)), uint64(le32(e[4:]))
}

// readAt fills buf from offset off; a file that ends early is malformed
// (it was checked at Open, so it shrank, or an offset in it lies).
func (r *Reader) readAt(buf []byte, off uint64) error {
	n, err := r.f.ReadAt(buf, int64(off))
	if n == len(buf) {
		return nil
	}
	if err == io.EOF {
		return r.malformed("file ends inside %d bytes at offset %d", len(buf), off)
	}
	return fmt.Errorf("cdb: %w", err)
}

func (r *Reader) malformed(format string, args ...any) error {
	return &formatError{path: r.path, detail: fmt.Sprintf(format, args...)}
}

// formatError carries the file and the broken rule; errors.Is matches it
// against ErrFormat.
type formatError struct {
	path, detail string
}

func (e *formatError) Error() string {
	return "cdb: " + e.path + ": malformed file: " + e.detail
}

func (e *formatError) Unwrap() error { return ErrFormat }

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

package cdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Writer builds a new cdb file next to its destination and puts it in place
// on Commit. A Writer is not safe for concurrent use.
type Writer struct {
	path string // destination
	tmp  string // temporary file in the same directory
	f    *os.File
	bw   *bufio.Writer
	pos  uint64 // file offset of the next record
	// recs holds 8 bytes per record, in the order added: all that Commit
	// needs to build the hash tables, so memory does not grow with the data.
	recs []slot
	err  error // first write error; the file is unusable after it
	done bool  // committed, failed to commit, or aborted
	lens [8]byte
}

// slot is one hash table entry, and the Writer's memory of one record.
type slot struct {
	hash, pos uint32
}

// fsync is the seam through which tests make fsync fail, the one fault a
// real file system will not produce on demand.
var fsync = (*os.File).Sync

// Create starts a new cdb file that Commit will rename to path. The records
// go to a temporary file, mode 0644, in path's directory, so the rename is
// atomic; nothing appears at path until Commit succeeds.
//
// It returns an error wrapping the OS error if the temporary file cannot be
// created or written.
func Create(path string) (*Writer, error) {
	// Dir gives "." for a bare name: CreateTemp("") would mean $TMPDIR,
	// possibly another file system, where the rename cannot be atomic.
	dir, base := filepath.Dir(path), filepath.Base(path)
	// A dot name keeps a half-built table out of directory listings and
	// globs such as *.cdb.
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("cdb: %w", err)
	}
	w := &Writer{path: path, tmp: f.Name(), f: f, bw: bufio.NewWriterSize(f, 64<<10), pos: headerSize}
	// CreateTemp makes 0600; postmap's tables are 0644 whatever the umask,
	// and the delivery agent reading this may run as another user.
	err = f.Chmod(0o644)
	if err == nil {
		// The header is written last, when the tables' offsets are known.
		_, err = w.bw.Write(make([]byte, headerSize))
	}
	if err != nil {
		w.discard()
		return nil, fmt.Errorf("cdb: %w", err)
	}
	return w, nil
}

// Add appends a record. Keys need not be unique: Get answers with the value
// of the first record added under a key, as tinycdb does.
//
// It returns an error if the finished file would be 4 GiB or larger (the
// record is not added and the Writer stays usable), an error wrapping the OS
// error if writing fails (the Writer is then unusable: Commit returns that
// error), and an error wrapping os.ErrClosed after Commit or Abort.
func (w *Writer) Add(key, value []byte) error {
	if w.done {
		return fmt.Errorf("cdb: add to %s: %w", w.path, os.ErrClosed)
	}
	if w.err != nil {
		return w.err
	}
	end := w.pos + 8 + uint64(len(key)) + uint64(len(value))
	// Each record also costs two 8-byte slots in the tables written last.
	if end+16*uint64(len(w.recs)+1) > maxFileSize {
		return fmt.Errorf("cdb: %s: a record of %d+%d bytes would make the file larger than 32-bit offsets can address",
			w.path, len(key), len(value))
	}
	// lens lives in the Writer: a local array would escape through the
	// io.Writer and cost one allocation per record.
	binary.LittleEndian.PutUint32(w.lens[:], uint32(len(key)))
	binary.LittleEndian.PutUint32(w.lens[4:], uint32(len(value)))
	for _, b := range [][]byte{w.lens[:], key, value} {
		if _, err := w.bw.Write(b); err != nil {
			w.err = fmt.Errorf("cdb: %w", err)
			return w.err
		}
	}
	w.recs = append(w.recs, slot{hash(key), uint32(w.pos)})
	w.pos = end
	return nil
}

// Commit writes the hash tables and the header, fsyncs the file, renames it
// over path and fsyncs the directory, so that once it returns nil the table
// survives a crash.
//
// On any error before the rename, the temporary file is removed and path is
// left as it was. If only the final directory fsync fails, the new file is
// already at path but may not survive a crash; the error says so. Commit
// after Commit or Abort returns an error wrapping os.ErrClosed.
func (w *Writer) Commit() (err error) {
	if w.done {
		return fmt.Errorf("cdb: commit %s: %w", w.path, os.ErrClosed)
	}
	w.done = true
	renamed := false
	defer func() {
		if err != nil && !renamed {
			w.discard()
		}
	}()
	if w.err != nil {
		return w.err
	}
	header, err := w.writeTables()
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		_, err = w.f.WriteAt(header, 0)
	}
	if err == nil {
		err = fsync(w.f)
	}
	if err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	renamed = true
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("cdb: %s is in place but may not survive a crash: %w", w.path, err)
	}
	return nil
}

// writeTables writes the 256 hash tables after the records, laid out as
// tinycdb's cdb_make_finish does, and returns the header that points at them.
func (w *Writer) writeTables() ([]byte, error) {
	// Group the records by table, keeping the order they were added in:
	// linear probing then puts the first of equal keys first.
	var start [257]int
	for _, r := range w.recs {
		start[r.hash&255+1]++
	}
	maxSlots := 0
	for t := range 256 {
		maxSlots = max(maxSlots, 2*start[t+1])
		start[t+1] += start[t]
	}
	byTable := make([]slot, len(w.recs))
	next := start
	for _, r := range w.recs {
		t := r.hash & 255
		byTable[next[t]] = r
		next[t]++
	}
	w.recs = nil

	header := make([]byte, headerSize)
	tab := make([]slot, maxSlots)
	buf := make([]byte, 8*maxSlots)
	for t := range 256 {
		recs := byTable[start[t]:start[t+1]]
		n := uint32(2 * len(recs))
		binary.LittleEndian.PutUint32(header[8*t:], uint32(w.pos))
		binary.LittleEndian.PutUint32(header[8*t+4:], n)
		if n == 0 {
			continue
		}
		ht := tab[:n]
		clear(ht)
		for _, r := range recs {
			// No record lives at offset 0 (the header does), so pos 0
			// marks a free slot, as it does for readers.
			i := (r.hash >> 8) % n
			for ht[i].pos != 0 {
				if i++; i == n {
					i = 0
				}
			}
			ht[i] = r
		}
		b := buf[:8*n]
		for i, s := range ht {
			binary.LittleEndian.PutUint32(b[8*i:], s.hash)
			binary.LittleEndian.PutUint32(b[8*i+4:], s.pos)
		}
		if _, err := w.bw.Write(b); err != nil {
			return nil, err
		}
		w.pos += uint64(len(b))
	}
	return header, nil
}

// Abort discards the temporary file; path is left as it was. Abort after
// Commit or Abort does nothing and returns nil, so it can be deferred.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.discard()
}

// discard closes and removes the temporary file.
func (w *Writer) discard() error {
	var errs []error
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			errs = append(errs, err)
		}
		w.f = nil
	}
	if err := os.Remove(w.tmp); err != nil {
		errs = append(errs, err)
	}
	w.recs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cdb: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable (the rename is an update of the
// directory, which fsync of the file does not cover).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

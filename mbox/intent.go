package mbox

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"syscall"

	"vdeliver/internal/beneath"
)

// The intent record: what a delivery is about to append, written and synced
// beside the mailbox before the first byte of the record reaches it, so that
// the next delivery can take back a fragment left by a process killed in the
// middle of its write(2). The package doc ("Torn writes") gives the rules.

// intentSuffix is appended to the mailbox path to name its intent record.
const intentSuffix = ".vdeliver-append"

// intentMagic is the first line of an intent record (format version 2; version 1, with
// SHA-256, was never released). A record that does not parse, another version's
// included, is removed without recovery, as a record torn by a crash is.
const intentMagic = "vdeliver-append 2\n"

// maxIntentHeader bounds the header line; ours is well under 200 bytes.
const maxIntentHeader = 512

// Fault seams for tests: the intent record's write and fsync.
var (
	writeIntentFile = func(f *os.File, b []byte) (int, error) { return f.Write(b) }
	syncIntentFile  = (*os.File).Sync
)

// appendMu serialises, within one process, the span from recovery to the
// removal of the intent record. fcntl locks belong to the process, so two
// goroutines delivering to one mailbox under fcntl alone both hold "the"
// lock; without this, one could take the other's write in progress for a
// fragment and truncate it. It is taken after the locks and never held while
// waiting for anything else, so it cannot deadlock with them.
var appendMu sync.Mutex

// intent is the header of an intent record.
type intent struct {
	dev, ino uint64 // the mailbox's device and inode
	size     int64  // the mailbox's size before the append
	length   int64  // the length of the record appended
	sum      uint32 // CRC-32C of the record
}

// intentSum is the checksum of an intent record's copy of the record. It only has to
// tell a copy cut short or garbled by a crash from a whole one (whoever could forge a
// record can write the mailbox itself), and the CRC-32C instruction makes it nearly free;
// a cryptographic hash would also link Go's FIPS module, whose start-up every delivery
// paid (about 0.35 ms of CPU, measured for issue 9).
// The table is made on first use (MakeTable caches it): built at package init it cost
// every delivery, Maildir ones too, a quarter of a millisecond.
func intentSum(rec []byte) uint32 {
	return crc32.Checksum(rec, crc32.MakeTable(crc32.Castagnoli))
}

// partsSum is intentSum of the concatenation of parts.
func partsSum(parts [][]byte) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli)
	var sum uint32
	for _, p := range parts {
		sum = crc32.Update(sum, tab, p)
	}
	return sum
}

func (in intent) header() []byte {
	return fmt.Appendf([]byte(intentMagic), "dev %d ino %d size %d length %d crc32c %08x\n",
		in.dev, in.ino, in.size, in.length, in.sum)
}

// parseIntent decodes a whole intent record: header, then exactly length
// bytes of record whose CRC-32C is sum. ok is false for anything else,
// including a record cut short because its writer died.
func parseIntent(b []byte) (in intent, rec []byte, ok bool) {
	rest, found := bytes.CutPrefix(b, []byte(intentMagic))
	if !found {
		return in, nil, false
	}
	nl := bytes.IndexByte(rest[:min(len(rest), maxIntentHeader)], '\n')
	if nl < 0 {
		return in, nil, false
	}
	n, err := fmt.Sscanf(string(rest[:nl]), "dev %d ino %d size %d length %d crc32c %x",
		&in.dev, &in.ino, &in.size, &in.length, &in.sum)
	if err != nil || n != 5 || in.size < 0 || in.length <= 0 {
		return in, nil, false
	}
	// The header must be exactly what header() writes, so that no two
	// spellings of one record exist.
	if !bytes.Equal(in.header(), b[:len(intentMagic)+nl+1]) {
		return in, nil, false
	}
	rec = rest[nl+1:]
	if int64(len(rec)) != in.length || intentSum(rec) != in.sum {
		return in, nil, false
	}
	return in, rec, true
}

// recoverAppend is run with every lock held, before oldSize is taken. If the
// intent record of path says that a delivery to this very file (st) was cut
// short — the file is longer than before that delivery but shorter than its
// whole record, and every byte after the old size is the record's own — it
// truncates the file back to the old size and syncs it. In every case it
// then removes the record, unless it is not ours (another owner, not a
// regular file) or the truncation failed, so that the next delivery can try
// again. f is the locked write descriptor of the mailbox. It returns the
// file's status afterwards; errors are not reported: recovery is best
// effort, and failing it leaves the file as virtual(8) would.
func recoverAppend(root *beneath.Root, path string, f *os.File, st *syscall.Stat_t) (*syscall.Stat_t, error) {
	name := path + intentSuffix
	// The root follows a symlink that stays beneath it, so the name
	// is lstat'ed first and compared with what was opened (safe_open): a
	// symlink or a hard link named like our record must not make us judge
	// the mailbox by another file.
	lfi, err := root.Lstat(name)
	if err != nil || !lfi.Mode().IsRegular() {
		return st, nil
	}
	r, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return st, nil
	}
	defer r.Close()
	ist, err := fstat(r)
	lst, ok := lfi.Sys().(*syscall.Stat_t)
	// Only a record this uid wrote is believed: in a directory shared with
	// other users a forged record could otherwise make us cut off the end
	// of the mailbox.
	if err != nil || !ok || ist.Dev != lst.Dev || ist.Ino != lst.Ino ||
		ist.Mode&syscall.S_IFMT != syscall.S_IFREG || ist.Nlink != 1 || int64(ist.Uid) != int64(os.Geteuid()) {
		return st, nil
	}
	data := make([]byte, ist.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		return st, nil
	}
	in, rec, ok := parseIntent(data)
	// A record that does not parse was cut short while being written, before
	// the mailbox was touched (it is synced before the first mailbox byte).
	if ok && in.dev == uint64(st.Dev) && in.ino == st.Ino && st.Size > in.size && st.Size < in.size+in.length &&
		fragmentIsOurs(root, path, st, in.size, rec[:st.Size-in.size]) {
		if err := f.Truncate(in.size); err != nil {
			return refstat(f, st)
		}
		if err := f.Sync(); err != nil {
			return refstat(f, st)
		}
		killpoint("mbox:recovered")
	}
	// The file is as it should be: untouched, whole, or grown past the
	// fragment by another writer, whose message must not be cut off.
	root.Remove(name)
	killpoint("mbox:intent-cleared")
	return refstat(f, st)
}

// refstat returns the new status of f; a failure is an error, as the caller
// cannot go on without knowing the size.
func refstat(f *os.File, old *syscall.Stat_t) (*syscall.Stat_t, error) {
	st, err := fstat(f)
	if err != nil {
		return old, err
	}
	return st, nil
}

// fragmentIsOurs reports whether the bytes of the mailbox (status st) from
// offset old to its end are exactly want. It reads through a second,
// read-only descriptor, used only when it is the same file.
func fragmentIsOurs(root *beneath.Root, path string, st *syscall.Stat_t, old int64, want []byte) bool {
	f := openSame(root, path, st)
	if f == nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, min(len(want), 1<<20))
	for off := 0; off < len(want); {
		n := min(len(buf), len(want)-off)
		if _, err := f.ReadAt(buf[:n], old+int64(off)); err != nil {
			return false
		}
		if !bytes.Equal(buf[:n], want[off:off+n]) {
			return false
		}
		off += n
	}
	return true
}

// writeIntent creates, writes and syncs the intent record for appending rec
// to the file with status st. It returns false, leaving no record, when that
// cannot be done (an unwritable directory, a full disk, a record left by
// another uid): the delivery then goes on unprotected, as virtual(8)'s does.
func writeIntent(root *beneath.Root, path string, st *syscall.Stat_t, rec [][]byte) bool {
	name := path + intentSuffix
	// O_EXCL: never through a symlink, never over a file we did not make.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false
	}
	killpoint("mbox:intent-created")
	in := intent{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, length: partsLen(rec), sum: partsSum(rec)}
	err = writeAll(f, in.header())
	for _, p := range rec {
		if err != nil {
			break
		}
		err = writeAll(f, p)
	}
	if err == nil {
		err = syncIntentFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(name)
		return false
	}
	killpoint("mbox:intent-synced")
	return true
}

func writeAll(f *os.File, b []byte) error {
	n, err := writeIntentFile(f, b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// clearIntent removes the intent record once the append is synced or rolled
// back. A failure is ignored: a leftover record describes a file that is
// whole or back at its old size, which recovery leaves alone.
func clearIntent(root *beneath.Root, path string) {
	if err := root.Remove(path + intentSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	killpoint("mbox:intent-removed")
}

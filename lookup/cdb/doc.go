// Package cdb reads and writes constant databases in D. J. Bernstein's cdb
// format, byte for byte as tinycdb (and so Postfix's "postmap cdb:file")
// writes them.
//
// The package knows only the file format. Postfix's conventions on top of it
// (cdb:/path names /path.cdb, keys folded to lower case, "try key+NUL, then
// key") belong to the caller.
//
// # File format
//
// All integers are unsigned 32-bit little-endian, so a file is at most
// 4 GiB - 1 bytes long.
//
//	header   256 × (table offset, slot count)           2048 bytes
//	records  klen, dlen, key[klen], data[dlen]           back to back
//	tables   256 hash tables of (hash, record offset)    slot count × 8 bytes each
//
// The hash of a key is djb's: h = 5381, then h = ((h << 5) + h) ^ c for each
// byte c, modulo 2^32. A key lives in table h & 255; its probe starts at slot
// (h >> 8) % slots and goes on linearly, wrapping at the end of the table,
// until a slot with record offset 0 (empty: the key is absent) or until every
// slot has been seen. A slot whose hash equals h is only a candidate: the
// record's key length and key bytes are compared before it is an answer, so
// a hash collision never returns another key's value.
//
// The Writer lays the file out as tinycdb's cdb_make does: records in the
// order added, then tables 0 to 255 in order, each with 2 × (records in that
// table) slots, filled in the order the records were added; an empty table
// has 0 slots and the offset where it would have started. Because probing
// starts from the same slot for equal keys, a key added twice answers with
// its first value, as tinycdb does. The same records added in the same order
// give the same bytes as postmap.
//
// # Bounds checks
//
// A cdb file is input: it may be truncated, corrupt or hostile. Every offset
// and length read from it is checked, in 64-bit arithmetic so nothing wraps,
// before it is used:
//
//   - the file is at least 2048 bytes and at most 4 GiB - 1 bytes;
//   - the first table's offset marks the end of the records; it lies between
//     2048 and the file size, and every table lies between it and the end of
//     the file (checked once, at Open);
//   - a record offset lies in the record area, and the record's 8-byte
//     header, its key and its data all end before the first table.
//
// Any violation, and a file that shrinks under a reader, is reported as an
// error wrapping ErrFormat; nothing panics, and no buffer larger than the
// file itself is ever allocated, whatever lengths the file claims.
//
// # Why pread
//
// A Reader reads the 2 KiB header once at Open and then only the few slots
// and the one record a lookup touches, with pread(2) (os.File.ReadAt). A
// 1,000,000-entry table therefore opens and answers one query in
// microseconds, which matters because a delivery agent opens its tables once
// per message. mmap would save the two system calls a lookup costs, but it
// answers wrongly when the file is truncated in place (cp over the table,
// "> table.cdb"): the rest of the last page reads as zeros, an empty slot,
// so a key becomes a clean miss, and a miss bounces mail where an error
// would defer it; past that page, the process dies of SIGBUS. pread instead
// sees the file end where Open saw more, which is ErrFormat. Values
// returned by Get are fresh copies, and Get may be called from several
// goroutines at once.
//
// # Writing atomically
//
// Create writes into a temporary file in the destination's directory, which
// Commit completes: hash tables, header, fsync of the file, rename over the
// destination, fsync of the directory. Readers see either the old file or
// the new one, never a part. The new file has mode 0644, as postmap's.
//
// Keys and values stream to the file as they are added; the Writer keeps
// only each record's hash and offset, 8 bytes, and during Commit a second
// copy grouped by table plus the largest table's slots. A million entries
// take about 50 MB all told, whatever the size of the data.
package cdb

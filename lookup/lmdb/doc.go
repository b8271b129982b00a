// Package lmdb reads, and only reads, the LMDB files that Postfix's "postmap lmdb:FILE"
// writes (FILE.lmdb, liblmdb 0.9.x, opened with MDB_NOSUBDIR: one file, no lock file).
//
// The package knows the file format and LMDB's reader rules. Postfix's conventions on top
// of it (lmdb:/path names /path.lmdb, keys written with a trailing NUL, "try key+NUL,
// then key") belong to the caller.
//
// # Layout
//
// Only the layout liblmdb writes on a 64-bit little-endian machine (amd64, arm64, ...)
// is read. A file from a 32-bit build, a big-endian machine or LMDB's development format
// (data version 999) is refused with an error wrapping ErrUnsupported that says which,
// never misread. All integers below are little-endian.
//
// The file is an array of pages of one size P (a power of two, 512 to 32768; 4096 on
// Linux), page n at offset n×P. Every page starts with a 16-byte header:
//
//	pgno   uint64  the page's own number
//	pad    uint16
//	flags  uint16  1 branch, 2 leaf, 4 overflow, 8 meta, 0x20 LEAF2, 0x40 sub-page
//	lower  uint16  branch and leaf: end of the node-offset array (16 + 2×keys);
//	upper  uint16    start of the node area          overflow: pages (uint32)
//
// Pages 0 and 1 are meta pages; after the header:
//
//	magic 0xBEEFC0DE uint32, version 1 uint32, address uint64, mapsize uint64,
//	free DB (48 bytes; its first 4 bytes hold the page size P), main DB (48 bytes),
//	last page uint64, transaction id uint64
//
// and a DB record is pad uint32, flags uint16, depth uint16, branch pages, leaf pages,
// overflow pages, entries and root page, each uint64; root 0xFFFF_FFFF_FFFF_FFFF is an
// empty tree. As liblmdb does (mdb_env_read_header), both meta pages must have the meta
// flag, the magic and version 1; the one with the higher transaction id is current, the
// first one on a tie. The page size is read from page 0; page 1 is at offset P.
//
// The main DB is a B+tree. A branch or leaf page holds after its header keys uint16
// node offsets (from the page start), sorted by key; the nodes lie in [upper, P):
//
//	lo, hi uint16   leaf: data size lo | hi<<16          branch: child page lo | hi<<16
//	flags  uint16   leaf: 1 value on overflow pages      branch: child page bits 32-47
//	ksize  uint16   key size, then the key, then (leaf) the data
//
// A leaf node's data is the value, or with flag 1 the 8-byte number of the first
// overflow page, whose value starts right after that page's header and runs on through
// the following pages. Keys compare as memcmp over the shorter length, then the shorter
// key first (LMDB's default, mdb_cmp_memn). A branch page's first key is ignored (it
// stands for "less than everything"); the child to follow is that of the last key not
// greater than the one searched.
//
// Postfix opens the main DB with no flags, so a main DB with any (duplicate keys,
// integer keys, reverse keys) or a node holding a sub-database or duplicates is refused
// with ErrUnsupported: it was not written by postmap.
//
// # Reading
//
// Each Get reads both meta pages again (one pread) and walks down from the current
// root with pread, one page at a time: nothing is mapped and nothing is read ahead, so
// opening costs one small read whatever the size of the table, and a file truncated
// while open gives an error rather than a SIGBUS (which a read-only mmap would). Branch
// pages are kept (at most 4 MiB) while the meta pages name the same snapshot: liblmdb
// never writes over a page of the last committed snapshot, so a lookup in a
// 1,000,000-entry table reads the meta pages and one leaf page.
//
// Postfix opens its lmdb files with MDB_NOLOCK and guards every read with a shared
// fcntl lock on the file, which postmap's exclusive lock excludes while it rewrites the
// file in place (pages of older snapshots are reused at once, as no reader table
// protects them); Get does the same, with an open-file-description lock, which
// conflicts with postmap's, so it never reads pages postmap is reusing.
//
// # Bounds
//
// The file is input and may be hostile. A page number must lie between 2 and the meta's
// last page and a read must return whole pages, so nothing is read beyond the file; the
// header fields and every node offset and size are checked against the page before they
// are used; a page must carry its own number and the expected type; the walk from the
// root is at most 32 levels deep (liblmdb's own cursor limit); an overflow value must fit
// in its run of pages, inside the file, and is at most MaxValue bytes. Anything else is
// an error wrapping ErrFormat, never a panic, a huge allocation or an endless loop.
package lmdb

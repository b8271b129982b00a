// Package bdb reads, and only reads, the Berkeley DB hash and btree files that
// Postfix's "postmap hash:file" and "postmap btree:file" write (Berkeley DB
// 5.3, as Debian ships it), without Berkeley DB.
//
// The package knows only the file format. Postfix's conventions on top of it
// (hash:/path names /path.db, keys folded to lower case, "try key+NUL, then
// key") belong to the caller.
//
// # File format
//
// A file is an array of pages of one size, a power of two from 512 to 65536
// bytes; page n starts at byte n × size. Every integer is in the byte order
// of the machine that wrote the file: the magic number of page 0 tells which
// (read in either order, it must be 0x061561 for hash or 0x053162 for btree).
//
// Page 0, the metadata page:
//
//	0   lsn (8)  pgno (4)  magic (4)  version (4)  pagesize (4)
//	24  encrypt_alg (1)  type (1)  metaflags (1)  unused (1)
//	28  free (4)  last_pgno (4)  nparts (4)  key_count (4)  record_count (4)
//	48  flags (4)  uid (20)
//	hash:  72 max_bucket  76 high_mask  80 low_mask  84 ffactor  88 nelem
//	       92 h_charkey   96 spares[32]
//	btree: 88 root
//
// Every other page starts with a 26-byte header (32 with checksums, metaflags
// bit 0x01, which postmap never sets; the checksums are not verified):
//
//	0 lsn (8)  8 pgno (4)  12 prev_pgno (4)  16 next_pgno (4)
//	20 entries (2)  22 hf_offset (2)  24 level (1)  25 type (1)
//
// followed by entries 16-bit offsets of the page's items, which are stored
// from the end of the page downwards, item i ending where item i-1 starts
// (item 0 at the end of the page).
//
// Hash (page types 13, sorted, and 2, unsorted): a key's bucket is
// h & high_mask, or h & low_mask if that exceeds max_bucket, where h is
// Berkeley DB's default hash __ham_func5 (h = 0; for each byte c: h = h ×
// 16777619, h = h ^ c; modulo 2^32). Bucket b lives on page
// b + spares[log2(b+1)], log2 rounding up. h_charkey holds the hash of the
// 12 bytes "%$sniglet^&\x00": a file written with another hash function is
// refused, because its buckets cannot be found. A bucket's items are key, value pairs
// on its page and on the pages chained through next_pgno. An item's first
// byte is its type: 1 the bytes follow; 3 off-page, pgno at byte 4 and total
// length at byte 8; 2 on-page duplicates (2-byte length, data, 2-byte length,
// repeated; the first is the answer). A bucket's first page may be all zeros:
// Berkeley DB allocated it and never wrote it, because no key hashed there.
//
// Btree: internal pages (type 3) hold items len (2), type (1), unused (1),
// pgno (4), nrecs (4), key[len]; the first item's key stands for "less than
// everything". A lookup follows the last item whose key is not greater than
// the one sought, comparing as memcmp then length (Berkeley DB's default,
// which postmap does not change), down to a leaf (type 5, level 1), whose
// items are key, value pairs: len (2), type (1), data[len]. Type 3 (in both
// kinds of page) is off-page: pgno at byte 4, total length at byte 8. Type bit
// 0x80 marks a deleted item.
//
// Off-page ("big") items are a chain of overflow pages (type 7) through
// next_pgno, each holding hf_offset bytes of the item after its header.
//
// # Reading safely
//
// A .db file is input: it may be truncated, corrupt or hostile. A Reader
// reads one page at a time with pread(2) and checks everything it uses: the
// page size and type, that a page read is page n of the file and of the
// expected type, that every item lies inside its page, that an off-page item
// is no longer than the file, that a btree descends one level per page. No
// lookup reads more than four times as many pages as the file has (a sound
// file needs a few), so a cycle of pages is an error, not a hang. Every violation is an error wrapping ErrFormat; nothing
// panics, and no buffer larger than the file is allocated.
//
// Files the reader cannot answer for exactly (encrypted, with several
// databases in one file, with off-page duplicates, recno and queue files) are
// refused with ErrFormat too, rather than half read.
//
// # Locking
//
// postmap rewrites a .db file in place (it truncates and refills it) while
// holding an exclusive flock(2) on it; Postfix's readers hold a shared flock
// while they look up. A Reader does the same for each Get, and reads the
// metadata page again under that lock, so it never sees a file half written.
package bdb

// Package mbox appends one message to a Unix mailbox file the way Postfix's
// virtual(8) does (mbox_open.c, safe_open.c, dot_lockfile.c, deliver_flock.c,
// mail_copy.c), so that the same message delivered by virtual(8) and by this
// package gives the same bytes, the From_ date aside.
//
// Everything happens through a *beneath.Root (openat2 with RESOLVE_BENEATH):
// no lookup, lock file or symlink can reach a file outside the mailbox base.
//
// # Record format
//
// One delivery appends exactly one record:
//
//	From <sender>  <date>\n            two spaces; date is asctime(3) in local time
//	<headers>                          Return-Path etc., formatted by the caller
//	<message>                          LF line ends, "From " lines quoted
//	\n                                 one blank line ends every record
//
// <sender> is used as given (the caller applies RFC 5322 local-part quoting);
// an empty sender is written as MAILER-DAEMON and CR or LF in it become spaces,
// so no sender can forge a record boundary. <date> is Go's time.ANSIC layout
// ("Thu Jan  1 00:00:00 1970", day padded with a space).
//
// Quoting is "mboxo", as virtual(8): every line of the headers and of the
// message whose first five bytes are exactly "From " gets one ">" in front.
// Nothing else changes: "From:", "from x", ">From x" and a bare "From" are
// written as they are. mboxo is therefore not reversible for lines that
// already started with ">From "; readers (mutt, Dovecot, Python's mailbox)
// only rely on the guarantee this package keeps: apart from the first line of
// a record, no line of a record starts with "From ". A message whose last line
// has no newline gets one, as does a non-empty header block. The message
// must already have LF line ends; CR bytes are stored as they are.
//
// When the existing file does not end with a newline — a record cut short by a
// delivery killed in the middle of its write that recovery (see "Torn
// writes") could not take back — the record is preceded by "\n\n", so that
// its From_ line starts a line and no reader takes the new message for the end
// of the fragment. This is the one case where the bytes differ from
// virtual(8), which appends directly.
//
// # Open and lock sequence
//
//  1. Dotlock (if enabled), before the file is opened and only when stat(2)
//     of the path fails or shows a regular file (no lock beside /dev/null):
//     create <path>.lock with O_CREAT|O_EXCL and mode 0. A lock that exists
//     is retried up to Attempts times with a random sleep in
//     [0.75·Delay, 1.25·Delay] between tries and none after the last; a lock
//     whose ctime is older than StaleAge is removed (once per delivery the
//     next try then follows at once). A lock we did not create is never
//     removed unless it is stale.
//  2. safe_open: open the existing file O_WRONLY|O_APPEND|O_NONBLOCK (the
//     non-blocking open makes a FIFO without reader fail with ENXIO instead
//     of hanging). It must have exactly one hard link, must not be a
//     directory, and lstat(2) of the path must agree with fstat(2) of the
//     descriptor on device, inode, link count and mode. A symbolic link is
//     refused before anything is opened unless the link is owned by root
//     and its directory is owned by root and not group or world writable.
//     On ENOENT the file is created with O_CREAT|O_EXCL, mode 0600 (never
//     through a symlink, never creating a directory); on EEXIST from that
//     race the existing file is opened once more.
//  3. Kernel locks, regular files only, flock(2) then fcntl(2) F_SETLK on
//     the whole file, each with the same bounded retries as the dotlock.
//  4. Re-check after locking: the descriptor still has one link and the path
//     still names the same device and inode (a POP daemon may have replaced
//     the mailbox between open and lock). The second half goes beyond
//     virtual(8), which only checks the link count.
//  5. A file that is not regular is refused (ErrNotRegular); with
//     StrictOwner a file not owned by Options.Owner is refused (ErrOwner).
//
// The order of Options.Locks does not matter; it is always dotlock, flock,
// fcntl. fcntl locks belong to the process, so two goroutines of one process
// delivering to the same mbox are only kept apart by flock or the dotlock,
// or, from the re-check of the size to the end of the append, by the
// process-wide mutex of "Torn writes".
//
// # Writing, durability and roll-back
//
// The size after locking is remembered. With a Limit, a record that would
// make the file larger than Limit is refused before a byte is written
// (ErrTooLarge, wrapping EFBIG); reaching exactly Limit is allowed. A Quota
// bounds the file the same way; when it is smaller than Limit (or Limit is
// 0) the refusal is ErrOverQuota, wrapping EDQUOT. The whole
// record is built in memory and written with one write call where the kernel
// allows (the existing file is only read to check its last byte and a
// fragment, see "Torn writes"), then fsync(2)ed. On any write or
// fsync error the file is truncated back to the remembered size (and synced,
// best effort) while the locks are still held, so a failed delivery never
// leaves a partial message. Only the file is synced, not its directory, as in
// virtual(8), except that a newly created mailbox's directory is synced
// before anything is written into it.
//
// # Torn writes
//
// A process killed by SIGKILL in the middle of its write(2) (the kernel cuts
// a large write short) runs no roll-back: virtual(8) leaves the fragment, and
// every reader takes it for the end of the message before it. This package takes such a fragment back at the next delivery,
// through an intent record beside the mailbox:
//
//  1. With the locks held and after the checks, before the first byte of the
//     record is written, <path>.vdeliver-append is created through the
//     *beneath.Root with O_CREAT|O_EXCL, mode 0600, and holds the line
//     "vdeliver-append 2", the line "dev D ino I size S length L crc32c H"
//     (the mailbox's device and inode, its size before the append, the
//     record's length and CRC-32C in 8 hex digits), then the L bytes of the
//     record itself. It is fsynced before the mailbox is written to.
//  2. After the mailbox's fsync, or after a roll-back that truncated and
//     synced the file, the record is removed. A record whose roll-back
//     failed is kept, for the next delivery to finish the job.
//  3. Every delivery, once its locks are held and before it takes the old
//     size, reads the record left for its path (if any). It truncates the
//     mailbox back to S, fsyncs it and removes the record only when all of
//     these hold: the record is a regular file owned by our uid (no other
//     user can forge one in a shared directory) with one link, it parses
//     and its copy of the record matches H; the mailbox is the same device
//     and inode; its size is more than S and less than S+L; and every byte
//     after S equals the record's bytes at the same place, so nothing but
//     our own fragment is cut off. Otherwise it removes the record and
//     leaves the mailbox alone: at S (nothing written, or rolled back), at
//     S+L or more with our bytes (the append was whole: the killed process
//     may not have said so, but keeping it risks only a duplicate, never a
//     loss), grown past the fragment by another writer (the fragment stays;
//     the "\n\n" rule above keeps the next record a record), or another
//     file altogether (a stale record for an inode that is gone).
//
// The record holds a full copy, not just a hash, because only a byte-for-byte
// comparison proves that no other writer's data hides in the range cut off;
// the comparison needs the copy of the prefix, not of the whole. A complete
// record (size S+L) is never truncated, so a leftover record after a reported
// success, including one brought back by a crash that lost its unlink, can
// never remove a delivered message; for the same reason the directory is not
// synced after the unlink. Only the intent file is synced, not its directory:
// against a process kill, the kernel keeps both; against power loss an
// unsynced entry can only lose the record and leave the fragment, as
// virtual(8) would.
//
// A delivery holding no lock (virtual_mailbox_lock empty) neither writes nor
// reads records: the bytes after S could be another delivery's write in
// progress. fcntl locks do not keep two goroutines of one process apart, so a
// process-wide mutex covers the span from recovery to the record's removal.
// When the record cannot be created — the directory is not writable (no
// dotlock, and only the mailbox file is ours), the disk or quota is full, a
// file of that name belongs to someone else — or the record is larger than
// 64 MiB, the delivery goes on without one, exactly as virtual(8) does and
// with its hole. The record costs a second write of the message and one more
// fsync per delivery. An intent file larger than any vdeliver writes (64 MiB
// and its header) is removed unread, as one that does not parse: its owner
// chooses its size, which must not decide how much memory a delivery takes.
//
// Release order: the descriptor is closed (dropping the kernel locks), then
// the dotlock is removed — after success and after every failure. A close
// error after a successful fsync is reported as a write error.
//
// # Errors
//
// Every failure is an *Error whose Op says which step failed ("lock",
// "open", "write") and whose text is Postfix's reason; errors.Is finds the
// sentinel (ErrLockBusy, ErrSymlink, ...) and the errno (syscall.ENOSPC,
// syscall.EDQUOT, syscall.EISDIR, ...), so the caller can map it to a
// delivery status as mbox_dsn does.
//
// # Probe
//
// Probe answers what Deliver would meet before its first write (the dotlock's directory,
// a lock held, the safe-open refusals, the limit), with the same errors, and writes
// nothing: vdeliver explain runs it as the recipient.
package mbox

// Package quota reads and updates a Maildir++ quota (the maildirsize file in a Maildir's
// top directory) the way Courier and Dovecot do, so that vdeliver, Dovecot's IMAP and LDA
// and Courier's tools can share one Maildir and one file.
//
// # The file
//
// The first line is the quota definition (Limit.String: "1000000S,1000C", "1000C", "0S"
// for none). Every other line is "<bytes> <count>": a recalculation writes one line of
// totals, and every delivery or removal appends its delta ("5120 1", "-5120 -1"). The
// usage is the sum of those lines. Lines are read as two decimal integers separated by
// blanks (Courier pads them to 12 columns; Dovecot and vdeliver do not pad). A last line
// without its newline is ignored, as Dovecot ignores it, and makes the file be
// recalculated before vdeliver appends (else its line would merge with the partial one).
//
// # Which file
//
// maildirsize lives in the Maildir's top directory. A delivery into a Maildir++ folder
// (a directory ".name" in a Maildir, created yet or not, or one holding the
// maildirfolder marker) is counted against the Maildir above it, as the specification
// says. The directory above decides, not the marker alone: a folder gets its marker
// after its cur/, new/ and tmp/, and a delivery in between must count against the
// Maildir all the same.
//
// # When the file is recalculated
//
// As the Maildir++ specification and Dovecot's maildir backend decide: when maildirsize is
// missing (or a symbolic link, a FIFO or another file that is neither a regular file nor
// a directory: the rename replaces it, never reading or writing through it); when it is 5120 bytes or larger (it is then never read
// beyond 5119 bytes); when its last line has no newline; when a line after the first
// does not parse, the totals are negative
// or overflow, or the file contains a NUL byte; when the limit from the tables differs
// from the first line (the first line is rewritten, as Dovecot rewrites it); and when the
// message does not fit and the numbers may be stale: the file holds more than one line
// after the first, or it is 15 minutes old or older. A refusal is therefore always based
// either on a fresh count or on a one-line file younger than 15 minutes.
//
// A maildirsize that is a directory is an error (EISDIR) for Reserve and Inspect alike:
// it holds no counts, and no rename can put a file in its place. The delivery defers it
// (4.2.0) when the quota comes from vdeliver_quota_maps, and goes on without a quota,
// with a warning in the log, when it does not, as for any maildirsize it cannot use.
//
// A recalculation counts cur/ and new/ of the Maildir and of every Maildir++ folder (a
// directory whose name starts with '.'). The Trash folder counts too: the specification
// leaves Trash out, but Dovecot counts it, and the two must agree or each recalculation
// would undo the other's. A size comes from ",S=<size>" in the name when present (as
// Dovecot reads it), else from fstatat. Names starting with ".." are skipped, as Dovecot
// skips them. Symbolic links are never followed, so that a count never leaves the base:
// a folder or a cur/ or new/ that is a link is not counted, and a message without
// ",S=" that is a link counts with the link's own size, where Dovecot stats the target.
// Messages stored as links are rare; where there are some, a recalculation by Dovecot
// and one by vdeliver disagree by the difference until the next one.
// The new file is written in tmp/ (as the specification says), with the mode Dovecot
// gives the files it creates in a mailbox (the Maildir's read and write bits and always
// the owner's: 0600 in a 0700 Maildir), and renamed
// over maildirsize, so that no reader ever sees half a file. Afterwards the modification
// times of the counted directories are compared with those seen while counting: if one
// changed (Dovecot delivered or expunged meanwhile), the count is repeated, and after
// three attempts maildirsize is removed so that the next reader counts again. What the
// times cannot catch is said under Concurrency.
//
// # The rule
//
// A message of size bytes is admitted when the usage plus the message stays within the
// limit on both dimensions: bytes + size <= S and count + 1 <= C. This is Courier's rule
// (deliverquota refuses a message that would pass the quota) and Dovecot's with
// quota_grace = 0; Dovecot's default grace of 10% for its LDA is a Dovecot setting that
// a Maildir++ definition cannot express, so vdeliver does not guess one. A message larger
// than the whole quota is refused even in an empty Maildir.
//
// # Concurrency
//
// Deltas are appended with O_APPEND in one write(2) of one whole line, which is what
// Dovecot and Courier do and what keeps concurrent appenders from interleaving.
//
// Dovecot and Courier take no lock for maildirsize; the specification accepts that a few
// messages may pass the quota. vdeliver takes one of its own, flock(2) on the Maildir's
// top directory (no file is added to the Maildir, and nothing else locks that
// directory), from the check until the message is delivered (Reservation.Done) or given
// back (Reservation.Cancel). Among vdeliver processes the check, the append and any
// recalculation are therefore one step, and a recalculation never runs while another
// vdeliver's message is between its reservation and its link into new/, where a count
// could not see it. So with vdeliver alone delivering into an existing Maildir, the usage
// never passes the limit.
//
// A Maildir that does not exist yet has nothing to lock and no maildirsize to record a
// message in: each delivery is checked against an empty Maildir and nothing is locked,
// so concurrent first deliveries are each admitted without seeing each other, and a
// delivery that finds the Maildir created meanwhile may count it without their messages
// (the next recalculation counts them). No directory above the Maildir is locked in its
// stead: that lock would be shared by every Maildir below it, across users.
//
// flock(2) needs nothing but a descriptor open for reading, so any user who can open a
// directory can lock it and make every delivery into it wait LockWait and defer, for as
// long as they like. vdeliver therefore locks a directory only when it belongs to the
// delivering user and neither its group nor others may read or search it (mode & 0055
// == 0): then only that user and root can open it. Maildirs as virtual(8), Dovecot and
// vdeliver create them (mode 0700) qualify. A Maildir open to others is not locked, and
// concurrent deliveries into it may pass the limit by their number, as with Dovecot and
// Courier, which never lock.
//
// Without a quota from the tables and without maildirsize nothing is locked at all (nor
// opened), exactly as virtual(8) delivers: no lock, whoever holds it, can hold back mail
// for a user who has no quota.
//
// Against Dovecot, which does not see the lock: its appends are whole lines and are never
// lost by vdeliver's appends. A vdeliver recalculation that overlaps a Dovecot delivery
// or expunge is caught by the directory times above when the change lands in a directory
// after it was counted and before the times are compared, but not always: an expunge
// that unlinks the message before the count and appends its "-<size> -1" only after the
// rename is subtracted twice (the count no longer sees the message, and the line takes
// it off again), so the usage is under-counted by that message until the next
// recalculation. This is inherent to Maildir++, where the file and the directories are
// never changed in one step. (On a
// kernel without fine-grained file times, before Linux 6.13, a change within the same
// clock tick as the count does not move the directory's time either.) And if Dovecot
// replaces maildirsize while a vdeliver message is on its way, Done and Cancel notice
// the new file and remove it, since whether it counts that message is unknown, and the
// next reader counts again. The reservation keeps the file it recorded in open until
// then, so that the new file cannot get the old one's inode number (ext4 reuses a freed
// inode at once), and Cancel appends through that descriptor.
//
// A crash between Reserve and Done leaves the reservation counted until the next
// recalculation, which an over-quota answer forces: an over-count corrects itself before
// it refuses mail.
//
// # Confinement
//
// Every file is reached from a descriptor of the Maildir opened beneath the caller's
// *beneath.Root, then one name at a time with O_NOFOLLOW; nothing is opened by path.
// Files are created with the caller's effective ids, which must already be the
// recipient's. quota imports nothing of the delivery packages.
package quota

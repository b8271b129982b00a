// Package maildir writes one message into a Maildir the way Postfix's virtual(8)
// does (src/virtual/maildir.c), with the durability Postfix leaves out.
//
// # Names
//
// The clock is read once per delivery; its seconds (sec) and microseconds (usec)
// appear in both names:
//
//	tmp/<sec>.P<pid>.<host>                        the file being written
//	tmp/<sec>.P<pid>Q<n>.<host>                    the same, with Options.Seq n > 1
//	new/<sec>.V<dev>I<ino>M<usec>.<host>           the delivered message
//
// pid is the process id in decimal, dev and ino are the device and inode
// numbers of the tmp file in lower-case hexadecimal without padding. host is
// the host name with every '/' written as \057 and every ':' as \072, as the
// maildir specification requires, so a name is always one path element and
// never carries an info (":2,") part. dev+ino
// make the final name unique among existing files; the microseconds keep it
// unique against an inode number that the file system hands out again later.
//
// By default no ",S=<size>" field is added, as virtual(8) adds none. With
// Options.SizeInName the name in new/ ends in ",S=<size>,W=<vsize>" as Dovecot and
// Courier write it (Dovecot reads the first ",S=" and ",W=" of the name up to the
// ":2," info part, which a name in new/ does not have): size is the bytes written,
// vsize the size with LF line ends counted as CRLF. A ',' in the host is then
// written \054, so that no host can carry a field of its own.
//
// # Algorithm
//
// Every step goes through the caller's *beneath.Root (openat2 with
// RESOLVE_BENEATH), so neither ".." nor a symbolic link inside the mailbox
// tree can make a step touch a file outside the root.
//
//  1. If the message is larger than Options.Limit, fail before touching the
//     disk.
//  2. Open tmp/ (on ENOENT create the missing directories: the maildir's
//     parents, tmp/, new/ and cur/, each 0700, fsync each created directory
//     and its parent, and open it again) and create <name> in it with
//     O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600. O_EXCL never opens an
//     existing file or follows a symbolic link planted at that name.
//  3. fstat the open file for the final name; write every part, fsync, close
//     (the close error counts: NFS reports write errors there).
//  4. Open new/ (creating new/ and cur/ when missing) and link(2) the tmp
//     name into it: linkat between the two open directories. A hard link
//     never replaces an existing name, unlike rename(2). As Postfix's
//     sane_link, a link that reports an error while the new name already
//     refers to our inode succeeded (a retransmitted NFS request). Only when
//     the file system says it has no hard links (EPERM, EXDEV, ENOTSUP) is
//     the file moved with renameat2(RENAME_NOREPLACE), which also refuses to
//     replace a name; a file system without that flag fails the delivery
//     rather than risk a plain rename. Names, not descriptors, are linked,
//     so the new name is then checked to be the inode we wrote.
//  5. Remove the tmp name whatever happened; fsync new/ so that a successful
//     return means the message survives a crash (virtual(8) does not do this
//     directory fsync).
//
// From step 2 on every step works on the directories opened then (beneath
// the root), never on a path looked up again: a mailbox owner who renames
// tmp/ or new/ away or puts a symbolic link in their place during a delivery
// cannot redirect a step, and the cleanup still finds what this call made.
//
// # Guarantees
//
// On success exactly one new file exists in the directory that was new/ when
// the delivery opened it, fully written and fsynced with its directory entry.
// On any failure nothing this call created is left in tmp/ or new/, even when
// the owner has renamed them since: a deferred cleanup removes the tmp file
// and, when a later step fails, the new/ name too. So when the mailbox owner
// races its own maildir the promise is no loss and no duplicate: a reported
// success is one copy (wherever the owner has moved the directory since), a
// reported failure is none, and the MTA's retry delivers it once. A name is
// removed only while it is still our own file: a file another process put at
// our tmp name (a pid reused within the same second, or the owner) is left
// alone. Directories created along the way stay, as with Postfix. A file that
// already existed is never opened, replaced or removed. The only fault that
// is not reported is a failure to remove the tmp name after the message
// reached new/: the message is delivered, and reporting it would make the MTA
// deliver it a second time. The removal of the tmp name is not fsynced
// either; after a crash it may come back as a second link to the delivered
// message, which maildir readers clean out of tmp/ without touching new/.
//
// Bytes are written exactly as given: no From_ line, no ">From" quoting, no
// line-end conversion and no trailing blank line. The caller supplies the
// prepended headers and the line ends it wants on disk.
//
// # Why not go-maildir's Delivery
//
// github.com/emersion/go-maildir's Delivery creates its tmp file with mode
// 0666 (left to the umask), never fsyncs the file or the directory, and
// renames into new/, which can replace an existing message. Its reading side
// is fine and the tests use it to read deliveries back.
//
// # Folders
//
// CreateFolder makes a Maildir++ folder (a directory such as ".lists" beside cur/,
// new/ and tmp/) with cur/, new/, tmp/ and the empty "maildirfolder" marker, through
// the same root and with the same modes and fsyncs as a delivery; what exists is
// completed, never replaced. Which folder a message goes to is the caller's choice.
//
// # Probe
//
// Probe answers what Deliver would meet before its first write (the limit, a tmp/ or
// new/ the process may not write, a directory it would have to create in and may not),
// with the same errors, and creates nothing: vdeliver explain runs it as the recipient.
package maildir

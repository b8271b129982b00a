// Package journal records which destinations of a message have already been delivered,
// so that a retry after a partial failure delivers only what is missing.
//
// One message can fan out to several mailboxes (alias expansion, several recipients in
// one run) while the MTA sees one exit status. When one destination fails temporarily,
// the MTA retries the whole run; without a record the mailboxes that already got the
// message would get it again. The journal is that record, keyed by the MTA's queue id.
//
// # Files
//
// One file per queue id, named after it, directly in the state directory:
//
//	journal  = header { entry }
//	header   = "vdeliver-journal 1 " created "\n"       created: Unix seconds, decimal
//	entry    = recipient TAB destination "\n"
//
// recipient is the address the MTA asked for (folded); destination is an opaque key the
// caller chooses ("mailbox:example.com/alice/", "forward:bob@example.org"). Neither may
// contain a control character. A queue id is 1 to 64 ASCII letters, digits and '-' (Postfix,
// OpenSMTPD and exim ids all fit), so it is always one path element.
//
// # Guarantees
//
//   - Durable: Record writes the whole new content to ".<id>.tmp" (O_EXCL, mode 0600),
//     fsyncs it, renames it over "<id>" and fsyncs the directory. When Record returns nil
//     the entry survives a crash; a crash before the rename leaves the old journal intact
//     (a stale ".<id>.tmp" is removed by the next Record).
//   - Serialised: concurrent runs for the same queue id (Postfix delivers the recipients
//     of one message in parallel processes) each re-read the file under an exclusive
//     flock(2) of the state directory before they change it, so no update is lost.
//   - Owned: files are created by the calling process, which must already be the
//     delivering user. Open refuses a state directory that is not owned by the caller's
//     effective uid or is writable by group or others, and a journal that is not a
//     regular file owned by that uid with one link: a planted journal could claim that a
//     mailbox already has the message and make vdeliver skip it (mail loss).
//   - Expiring: a journal whose header is older than Options.MaxAge (Postfix's
//     maximal_queue_lifetime) belongs to a message the MTA has given up on; Open discards
//     it for its own queue id (queue ids are reused) and removes every such file whose
//     modification time is older still (the header's time is never later than it).
//   - Removed: Forget drops the entries of recipients whose delivery is final and
//     removes the file when no entry is left.
package journal

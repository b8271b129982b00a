// Package deliver makes one delivery the way Postfix's virtual(8) makes it: an envelope
// and a message in, one Status per recipient out, the status line and exit code the MTA
// reads. It decides; the other packages do: lookup reads the tables, maildir and mbox
// write the message, forward hands a copy to the forward command, journal remembers
// which destinations of a run already have it. Every failure becomes a Status where it
// arises: status.go holds the codes and their exit values, classify.go turns storage
// errors into statuses.
//
// This comment is the manual of one delivery. docs/behaviour.md is the reference for what
// Postfix does; its §13 says where vdeliver differs on purpose, and why. Sections below
// cite it as §n.
//
// # One delivery
//
// Settings.Run (the pipe mode) and Settings.RunEnvelopes (the LMTP mode) take every
// recipient through these steps, in this order. The first step that fails gives the
// status; nothing is written to a mailbox before the last step.
//
//  1. The envelope: a sender with a control character bounces 5.1.7, an original
//     recipient with one 5.1.3, an empty message 5.6.0 (§13.12). The message and the
//     sender are judged once per run, not per recipient.
//  2. With Options.ExpandAliases only: the Delivered-To loop check for the recipient
//     (step 4), then alias expansion (below). Each result in virtual_mailbox_domains,
//     and the recipient itself, goes on through steps 1 and 3 to 6 as a destination of
//     its own; every other result is forwarded (step 6). A mailbox reached twice in one
//     run gets the message once (a +extension folder counts as a mailbox of its own).
//  3. Resolution (Settings.Resolve): a recipient that is empty or has a control character
//     bounces 5.1.3; a domain outside virtual_mailbox_domains bounces 5.1.2 (§13.10).
//     virtual_mailbox_maps is asked in the search order below: a miss bounces 5.1.1; a
//     table error, an empty value, or a mailbox path with a ".." element or a control
//     character defers 4.3.5 (§2.3, §3). virtual_uid_maps and virtual_gid_maps are asked
//     with the same keys: a miss, a table error, a value that is not an id, a uid below
//     virtual_minimum_uid or gid 0 defers 4.3.5. A mailbox that ends in "/" is a
//     Maildir, anything else an mbox.
//  4. The Delivered-To loop check (§6, §13.4): when the message's header block already
//     names the recipient, 5.4.6. Options.NoLoopCheck turns it off.
//  5. The identity (§13.13): a relative or empty virtual_mailbox_base defers 4.3.5.
//     Started as root, the process becomes the recipient's uid and gid, once per run, so
//     a later recipient that needs other ids defers 4.3.5; started as anyone else, it
//     delivers only as itself and defers other recipients 4.3.5. Then the base is opened,
//     and everything beneath it is reached without leaving it (§13.2).
//  6. The write. Return-Path, X-Original-To (with enable_original_recipient, when the
//     original recipient is known) and Delivered-To go before the message, in
//     virtual(8)'s order, into the Maildir (package maildir, §5; or a folder of it with
//     vdeliver_extension_folders, §13.24) or the mbox (package mbox, §4). A forwarded
//     address goes to the forward command instead (forward.go), never as root: started
//     as root, the run first takes the uid and gid that virtual_uid_maps and
//     virtual_gid_maps give the alias. The failures are classified by the policy table
//     below. With a quota (quota.go, §13.25), a Maildir write is first reserved in
//     its maildirsize and the reservation given back when the write fails; an mbox
//     is bounded by the quota's bytes beside virtual_mailbox_limit.
//
// When a run has more than one destination, a queue id and Options.StateDir, the journal
// is opened after the identity switch, before the first write; when it cannot be kept,
// the destination defers 4.3.5.
// A destination the journal or the run already delivered answers 2.0.0 without a write.
//
// Each destination gets one log line (LogLine, §13.15). A recipient with several
// destinations answers the worst of their statuses: a deferral beats a bounce beats
// success. soft_bounce = yes turns every bounce into the same code with a 4
// (Status.SoftBounce). A panic is recovered, per destination, into 4.3.0 "internal error"
// (§13.6).
//
// # Search order
//
// Every table of the resolution is asked with the keys of Postfix's mail_addr_find() (§2,
// searchKeys), made from the recipient folded to lower case, in this order:
//
//   - user+ext@domain, the full address: every table, pattern tables (regexp, pcre)
//     included;
//   - user@domain, when recipient_delimiter split the localpart (§2.2): fixed-key tables
//     only;
//   - user+ext, then user (when split), when the domain is local: $myorigin, listed in
//     mydestination, or an [address] literal of inet_interfaces or proxy_interfaces (one
//     trailing dot ignored): fixed-key tables only;
//   - @domain: fixed-key tables only.
//
// For each key every table of the list is asked before the next key, so key order beats
// table order. A key is asked in RFC 822 external form (a localpart that is not a
// dot-atom quoted) and, only when that misses and differs, in raw form. The first hit or
// the first table error ends the search. virtual_mailbox_maps, virtual_uid_maps and
// virtual_gid_maps are all asked with the same keys, and so is vdeliver_quota_maps.
//
// # Alias expansion
//
// Under Postfix, cleanup(8) expands virtual_alias_maps before the message is queued, so
// vdeliver must not expand again: an alias "user@x user@x, copy@y" would send copy@y a
// second copy. Expansion is therefore off unless Options.ExpandAliases (§10, §13.20).
// When on, Settings.ExpandAliases follows cleanup(8) (cleanup_map1n.c, mail_addr_map.c):
//
//   - The keys are the search order's, asked only in quoted form, as cleanup(8) asks
//     them. Fixed-key tables get the folded key; pattern tables get only the full
//     address as given (quoted, not folded), and their results may use $n.
//   - A result is a list of addresses separated by commas or white space: "(...)"
//     comments are dropped, "<addr>" is unwrapped, a quoted localpart is kept whole. A
//     result that starts with "@" gets the original localpart in front (without the
//     extension when the match needed it stripped). A bare localpart gets "@$myorigin";
//     Postfix's other canonical rewrites (append_dot_mydomain, the percent hack, bang
//     paths) are not done.
//   - When the match used the extension-stripped key and propagate_unmatched_extensions
//     contains "virtual", the extension with its delimiter goes back before the "@" of
//     every result.
//   - Every result is looked up again, except an address whose list contains itself (in
//     any case). virtual_alias_recursion_limit bounds the lookups along one position,
//     so an alias loop a -> b -> a ends there; virtual_alias_expansion_limit bounds the
//     number of addresses and virtual_alias_address_length_limit each result's length.
//     Over any of them the recipient defers 4.6.0; a table error or a result that holds
//     no address defers 4.3.5.
//   - Duplicates are removed case-insensitively; the first spelling is kept.
//
// # What bounces, what defers
//
// A 4.x.x status defers (exit 75, EX_TEMPFAIL), every other failure bounces with the exit
// value paired with its code (status.go). Before the write:
//
//	cause                                           status  exit
//	sender with a control character                 5.1.7   65
//	recipient empty or with a control character,   5.1.3   65
//	  original recipient with a control character
//	empty message                                   5.6.0   65
//	domain not in virtual_mailbox_domains           5.1.2   68
//	not in virtual_mailbox_maps                     5.1.1   67
//	Delivered-To loop                               5.4.6   69
//	table error or empty value, bad mailbox path,   4.3.5   75
//	  uid or gid miss or bad value, relative base,
//	  identity that cannot be taken, base that
//	  cannot be opened, journal that cannot be kept
//	alias expansion over a virtual_alias_* limit    4.6.0   75
//
// A storage error, after Postfix's mbox_dsn() and virtual(8)'s DIAGNOSTICS (§4.5, §5, §7);
// the errno decides where it knows better than the step:
//
//	cause                                           status  action
//	mailbox larger than virtual_mailbox_limit       5.2.2   bounce (§13.3)
//	over the quota of vdeliver_quota_maps or        5.2.2   bounce; 4.2.2 defer with
//	  maildirsize (quota.go, §13.25)                        vdeliver_overquota_status
//	                                                        = defer
//	a quota definition that does not parse          4.3.5   defer
//	EDQUOT, EFBIG                                   5.2.2   bounce (as Postfix)
//	ENOSPC                                          4.3.0   defer
//	EAGAIN, ESTALE, lock not obtained               4.2.0   defer
//	mbox is a device or a FIFO with a reader        5.3.5   bounce
//	  (a FIFO without one, a socket: ENXIO at       4.2.0   defer
//	  the open, as for virtual(8))
//	open/create/lock refused (symlink, links,       4.2.0   defer
//	  directory, owner, EACCES, ENOENT)
//	maildir create or link failure                  4.2.0   defer (EACCES: a hint in the log)
//	other write or fsync error (EIO ...)            5.3.0   bounce
//	anything unrecognised                           4.3.0   defer: bouncing loses mail
//
// The forward command's end is read as pipe(8) reads a command's: exit 0 is 2.0.0; exit
// 75 or 71, a signal, the deadline, or a command that cannot be started defer 4.3.0; any
// other exit bounces 5.3.0. A panic defers 4.3.0.
//
// The reason shown to the sender names no path: the mailbox path, table names and OS
// errors go to the log line only (Status.Err, §13.11).
//
// # The pipe contract
//
// Run is what the pipe mode calls: the vdeliver command run by Postfix's pipe(8) (§8, §12).
// The command prints Status.Line first on stdout, one line: the RFC 3463 code at the first
// byte, a space, the reason with control characters and invalid UTF-8 shown as "_", cut
// after about 1000 bytes. It exits with Status.Exit, the sysexits(3) value the constructors pair
// with the code: 0 with 2.0.0, 75 with every 4.x.x, and for each 5.x.x the bounce value
// closest in meaning (never 71 or 75, which pipe(8) defers), so an MTA that reads only the
// exit status reaches the same verdict (§13.8). Nothing is written to stderr while
// delivering, since pipe(8) would show it to the sender: log lines go through
// Options.Log. With one recipient per run (vdeliver_destination_recipient_limit = 1,
// §8.4) every recipient's status reaches the MTA on its own; with several, the command
// answers Worst of them, so a partly failed run is never reported delivered, and the
// journal (with a queue id and a state directory) spares the retry the destinations that
// already have the message.
//
// # The LMTP contract
//
// The LMTP mode (§13.22) answers each RCPT with Settings.Accept: the checks of the steps
// above that need no message (the envelope addresses, the resolution, the base, whether
// this process can deliver as the recipient), without writing anything or switching
// identity. nil accepts; a Status is refused with the code and text the pipe mode would
// print. After DATA it calls RunEnvelopes with one Envelope per accepted recipient (its
// own ORCPT as OrigRcpt) and Options.PerRecipient, and replies with each recipient's
// Status: the pipe mode's statuses, and the pipe mode's bytes in the mailbox. The empty
// message, the loop check and the writers' own checks come at delivery. Since each
// recipient's status reaches the MTA on its own, the journal is kept only for a
// recipient with several destinations.
//
// # Where vdeliver differs from virtual(8)
//
// Each on purpose, in docs/behaviour.md: confinement beneath the base (§13.2),
// virtual_mailbox_limit enforced by vdeliver (§13.3), the Delivered-To loop check
// (§13.4), deadlines that defer (§13.5), panics and unclassified errors that defer
// (§13.6), a status line and exit code that agree (§13.8), configuration errors that
// defer (§13.9), the virtual_mailbox_domains check (§13.10), no paths in what the sender
// sees (§13.11), addresses and messages that cannot be delivered (§13.12), the identity
// rules (§13.13), one log line per recipient (§13.15), alias expansion and forwarding off
// by default (§13.20), the LMTP mode (§13.22), and the additions that are off by default
// (§13.24).
package deliver

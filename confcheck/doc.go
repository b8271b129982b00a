// Package confcheck is `vdeliver check`: it reads main.cf, the lookup tables it names and
// master.cf (when present) and reports what would lose, misroute or defer mail, each
// finding with the file and line to edit, a severity and a fix.
//
// It reads the configuration as vdeliver does (maincf, lookup) and never writes. Line 0
// in a finding means the file as a whole: something is missing from it.
//
// # Findings
//
// The "NEVER" rules of Postfix's VIRTUAL_README (docs/behaviour.md §10):
//
//	domains-unset            error    virtual_mailbox_domains not set (it then defaults to
//	                                  $virtual_mailbox_maps, looked up with bare domains)
//	domain-in-mydestination  error    a virtual mailbox domain also in mydestination
//	domain-in-alias-domains  error    a virtual mailbox domain also in virtual_alias_domains
//	alias-wildcard           error    an @domain key in virtual_alias_maps for a virtual
//	                                  mailbox domain
//
// Safety (docs/behaviour.md §1, §3):
//
//	base-unset, base-relative, base-missing
//	                         error    virtual_mailbox_base empty, not absolute, absent or
//	                                  not a directory
//	base-writable            error    the base, or a non-sticky directory above it, is
//	                                  writable by others
//	minimum-uid-low          warning  virtual_minimum_uid below 100
//	ids-unset                error    virtual_uid_maps or virtual_gid_maps not set
//	uid-root, gid-root       error    a uid or gid map answers 0
//	uid-below-minimum        error    a uid below virtual_minimum_uid
//	uid-invalid, gid-invalid error    an answer that is not a decimal id
//	uid-not-pipe-user, gid-not-pipe-user
//	                         error    an id other than master.cf's user=, which is the
//	                                  only identity a pipe(8) command can have (not in a
//	                                  setuid-root install)
//	mailbox-dotdot           error    a mailbox path with a ".." element
//
// A setuid-root install (the program master.cf runs, or this binary, is root's with the
// set-uid bit), where a delivery refuses to run on the same conditions:
//
//	setuid-base-owner        error    the base or a directory above it can be changed by
//	                                  someone other than root (a sticky world-writable
//	                                  directory above aside)
//	setuid-table-owner       error    the same for a table file (name, .db, .cdb...), a
//	                                  /file of a domain list, or a directory above them
//
// Tables (docs/behaviour.md §9), for every table of virtual_mailbox_maps, virtual_uid_maps,
// virtual_gid_maps, virtual_alias_maps, vdeliver_quota_maps and the domain lists:
//
//	table-stale              warning  the source is newer than its .db or .cdb: postmap
//	                                  has not been run since the edit, which neither
//	                                  Postfix nor vdeliver sees
//	table-not-built          error    a hash: or btree: source without its .db: every
//	                                  delivery defers until postmap runs
//	table-duplicate          warning  a duplicate key (postmap keeps the first); error for
//	                                  texthash, where it makes every lookup fail
//	texthash-uppercase       error    an upper-case key in a texthash table: never matches
//	unreadable               error    a table or main.cf missing, or not readable by
//	                                  master.cf's user= (by mode bits, with only that
//	                                  user's gid, as pipe(8) runs it); the files counted
//	                                  include the .cf of SQL and ldap tables and cidr
//	                                  files, which postmap(1) reads with that user's
//	                                  rights. Not for a vdeliver installed set-uid root
//	                                  (it opens every table as root), nor for proxy:
//	                                  tables when that user can reach proxymap(8)
//	table-unsupported        error    a type vdeliver refuses (tcp:, socketmap:, memcache:)
//	                                  or cannot read; a table read through postmap(1) is
//	                                  asked one query, which shows a type postmap does
//	                                  not know (a delivery opens it without a query)
//	table-error, table-warning
//	                         error/warning what lookup reports while reading a table;
//	                                  proxy: tables are opened through proxymap(8) when
//	                                  check can reach it (as root), so one that proxymap
//	                                  refuses to serve is an error here too
//	table-relative           warning  a table named by a relative path: it is read in
//	                                  queue_directory, as by Postfix's daemons
//	maincf-warning           warning  what Postfix logs while reading main.cf
//	parameter-error          error    a parameter that does not expand or parse
//
// master.cf (docs/behaviour.md §8), for the pipe(8) services whose argv runs a program
// named vdeliver, and for the spawn(8) service running "vdeliver lmtp" whose socket
// virtual_transport names (lmtp:unix:private/NAME; its columns and user= only):
//
//	master-syntax            error    an entry master(8) would refuse
//	master-no-entry          error    no such service, pipe(8) or LMTP
//	transport-mismatch       error    virtual_transport names another service
//	master-unpriv            error    unpriv column not n (pipe and spawn need root)
//	master-chroot            error    chrooted: main.cf and the base are out of reach
//	master-user-missing, master-user-root, master-user-unknown
//	                         error    user= absent, root, or no such account
//	master-flags             error    F, D, O, R or > in flags=: vdeliver writes those
//	                                  headers and the quoting itself
//	master-null-sender       warning  null_sender absent or not empty
//	master-argv              error    argv without ${recipient}; warning without "--"
//	                                  before it
//	lmtp-chroot-path         error    virtual_transport gives the LMTP socket's full
//	                                  path to an lmtp client chrooted in the queue
//	lmtp-line-length         warning  lmtp_line_length_limit (main.cf or the lmtp
//	                                  service's -o) not 0 with the LMTP
//	                                  service: Postfix folds long lines
//	recipient-limit          error    <service>_destination_recipient_limit not 1
//	time-limit               error    <service>_time_limit (else command_time_limit) not
//	                                  longer than the lock waits: virtual_mailbox_lock
//	                                  kinds x (deliver_lock_attempts-1) x 1.25 x
//	                                  deliver_lock_delay
//
// What the delivery itself would meet, with the delivery's own rules (deliver.ParseID,
// deliver.CheckMailbox, deliver.DomainList):
//
//	unknown-parameter        warning  a main.cf parameter Postfix does not know, no
//	                                  master.cf service defines and no value refers to
//	                                  ("postconf -n": unused parameter), with the closest
//	                                  known name
//	base-not-writable, mailbox-not-writable
//	                         error    the uid and gid a mailbox belongs to cannot create
//	                                  or write the directory its delivery writes in (by
//	                                  mode bits, with that gid only): 4.2.0
//	mbox-dir-missing         error    the directory of an mbox does not exist: 4.2.0
//	mailbox-invalid          error    a mailbox path with a control character, or empty
//	quota-invalid            error    a vdeliver_quota_maps answer that is no Maildir++
//	                                  quota definition: 4.3.5
//	table-module-missing     error    a table type postmap(1) lacks the module for; the
//	                                  fix names the Debian package (postfix-mysql...)
//	no-log-destination       warning  no syslog daemon answers, no maillog_file and no
//	                                  --log-file in master.cf's vdeliver argv: logs are
//	                                  lost (only checked with that master.cf entry)
//	postlog-unreachable      warning  maillog_file is set, postlogd does not answer
//	master-argv-foreign      error    an option in the vdeliver argv that vdeliver does
//	                                  not have (dovecot-lda's -d, -m, -p, -e, -k...)
//
// A finding about a -o override has File "-o" and the override's position as Line.
//
// # master.cf syntax (master(5))
//
// A line whose first non-blank character is "#" and a blank line are dropped; a line that
// starts with whitespace continues the entry before it. An entry is service, type,
// private, unpriv, chroot, wakeup, maxproc and the command with its arguments; a word
// starting with "{" runs to the matching "}". For pipe(8) the arguments are the generic
// daemon options (-o name=value, -v, ...), then name=value attributes, argv= last.
package confcheck

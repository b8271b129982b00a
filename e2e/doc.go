// Package e2e proves vdeliver with Postfix itself: real mail, submitted with
// sendmail(1) and over SMTP to 127.0.0.1:25, queued by a real Postfix from
// Debian and handed to vdeliver by pipe(8), and then, in a second pass of
// the whole suite, by Postfix's lmtp client to `vdeliver lmtp` under
// spawn(8).
//
// The package has no code of its own, only tests. They need root and a
// running Postfix configured by e2e/run.sh, so they run only when
// VDELIVER_E2E=1; otherwise (including CI=true) every test skips and
// `go test ./...` stays fast. CI runs them through `make e2e`, which is
// `bash e2e/run.sh`; there a Postfix that cannot be installed or started
// fails the run instead of skipping it.
//
// # The set-up (e2e/run.sh, e2e/testdata)
//
// Postfix listens on loopback only, has no relayhost and sends every
// non-virtual destination to the error transport. main.cf is the classic
// virtual mailbox example: domains example.com and example.net under
// /var/mail/vhosts, uid and gid static:5000 (user vmail), and the tables
//
//	vmailbox: alice@example.com  example.com/alice/    (Maildir)
//	          bob@example.com    example.com/bob       (mbox)
//	          carol@example.net  example.net/carol/    (Maildir)
//	          @example.net       example.net/catchall/ (catch-all)
//	virtual:  postmaster@example.com  alice@example.com
//	          team@example.com        alice@example.com, bob@example.com
//
// with recipient_delimiter = + and virtual_transport = vdeliver, a pipe(8)
// service without F, D, O, R or > flags and with an empty null_sender. The
// LMTP pass sets virtual_transport = lmtp:unix:private/vdeliver-lmtp, the
// spawn(8) service
//
//	vdeliver-lmtp unix - n n - - spawn user=vmail argv=/usr/local/bin/vdeliver lmtp
//
// with lmtp_line_length_limit = 0 (Postfix's lmtp client would otherwise
// break lines longer than 998 bytes, and the differential would catch it)
// and lmtp_send_xforward_command = yes. run.sh restarts Postfix between
// the passes.
//
// # What is checked
//
//   - Each kind of recipient (Maildir, mbox, user+ext, catch-all, alias,
//     fan-out) gets the message in the right mailbox, byte for byte: the
//     Return-Path, X-Original-To and Delivered-To lines vdeliver prepends,
//     Postfix's Received header, then the submitted message (mbox: From_
//     line, >From quoting and the trailing empty line). Postfix's log line
//     for the queue id says the transport delivered it.
//   - An unknown user bounces with 5.1.1 and the DSN, sent by Postfix with
//     the null sender, reaches the sender's own virtual mailbox. Over LMTP
//     the recipient is refused at RCPT, before the data is sent.
//   - An mbox locked by the test for longer than the lock budget defers the
//     mail (it stays in mailq); after the lock is released and the queue
//     flushed, it is delivered once.
//   - The null sender is delivered with "Return-Path: <>".
//   - Differential: the same messages delivered by Postfix's virtual(8) and
//     by the configured transport give identical message bytes, once the
//     parts that must differ are masked: the queue id and date in Postfix's
//     Received header and the date of the mbox From_ line.
//   - 500 messages in a burst are all delivered exactly once; the time taken
//     is printed. Afterwards no Maildir has anything left in tmp/, no
//     dotlock is left and the mbox is still a 0600 file of vmail.
//   - vdeliver only (it is not in virtual(8)): a message that already
//     carries "Delivered-To: <recipient>" bounces with 5.4.6.
//   - vdeliver only: one message to four recipients ends four ways —
//     delivered, deferred (locked mbox, 4.2.0), bounced after the data
//     (Delivered-To loop, 5.4.6) and bounced as unknown (5.1.1) — and over
//     LMTP all four are one transaction of one lmtp client; one DSN names
//     the two bounced recipients, and after the flush only the deferred
//     one is tried again.
//   - The configuration itself (main.cf parameters, the master.cf entry),
//     so that a drift in run.sh shows up as such.
//
// Each message carries a unique Message-ID, which is how a test finds its
// queue id in the log (cleanup's "message-id=" line) and its copy in a
// mailbox, so tests do not depend on what earlier tests delivered.
//
// VDELIVER_E2E_TRANSPORT picks the passes run.sh makes (default
// "vdeliver lmtp"); "virtual" runs the whole suite against virtual(8): a
// check of the suite itself.
package e2e

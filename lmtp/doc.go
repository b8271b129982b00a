// Package lmtp is the server side of LMTP (RFC 2033) as a delivery agent behind Postfix
// speaks it: one session on a stream, any number of transactions, one reply per
// accepted recipient after DATA. It knows nothing of mailboxes: a Handler answers each
// recipient at RCPT and delivers the message; this package owns the protocol.
//
// # Commands
//
// LHLO (HELO and EHLO are refused, 500, as RFC 2033 requires), MAIL FROM with SIZE, BODY
// (7BIT, 8BITMIME), RET, ENVID, SMTPUTF8 and AUTH (ignored); RCPT TO with NOTIFY and ORCPT
// (an rfc822 address, xtext-decoded, becomes Rcpt.ORCPT; other types are ignored); DATA;
// RSET; NOOP; QUIT; VRFY (502); XFORWARD (its IDENT is the transaction's QueueID, for the
// log). The LHLO reply announces PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE, DSN,
// SMTPUTF8 and XFORWARD. Addresses arrive in the external form (a quoted localpart) and
// are handed on in Postfix's internal form, as pipe(8) passes them.
//
// Every reply carries an enhanced status code. A handler's code is paired with the
// reply code Postfix's own servers use: 250; 452 (4.2.2 and 4.5.3, as Dovecot's LMTP
// answers a deferred over-quota), 450 (other 4.2.x), 451 (other 4.x.x);
// 550 (5.1.x, and any 5.x.x at RCPT), 552 (5.2.2, 5.3.4), 554 (other 5.x.x after DATA).
// A malformed command gets 500, 501, 503 or 555 and the session goes on; after 20 in a
// row it ends with 421, as Postfix's smtpd_hard_error_limit.
//
// # The message
//
// DATA is read up to the line "." and dot-unstuffed. Each line's CRLF becomes LF, and one
// CR more before it is dropped: the result is what the pipe mode writes for the same
// queue file, whose records pipe(8) sends ending in LF and which the pipe mode then
// normalizes (deliver.Normalize). Up to Config.MemMax bytes stay in memory; a larger
// message goes to an unnamed file (O_TMPFILE) that disappears with the process.
//
// # Limits and failures
//
// Command lines over Config.MaxLine get 500; recipients beyond Config.MaxRecipients 452;
// a message over Config.MaxSize 552 (at MAIL when SIZE says so, else after DATA, with
// nothing delivered). Reads wait at most Config.IdleTimeout between transactions and
// until the transaction's deadline (Config.TxTimeout from MAIL) inside one; a timeout
// ends the session with 421. A client that goes away, or times out, in the middle of
// DATA gets nothing delivered: the Handler sees no message. Replies are flushed only
// before a read that could wait, so a pipelined group of commands gets its replies in
// one write. A panic in a Handler becomes that recipient's 4.3.0, and Serve never
// panics.
package lmtp

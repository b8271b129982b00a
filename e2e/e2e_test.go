package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSetUp pins the parts of the Postfix configuration the other tests rely
// on, so that a drift in run.sh shows up as itself and not as odd failures.
func TestSetUp(t *testing.T) {
	e := setup(t)
	want := map[string]string{
		"virtual_mailbox_domains":              "example.com, example.net",
		"virtual_mailbox_base":                 mailBase,
		"virtual_mailbox_maps":                 "hash:/etc/postfix/vmailbox",
		"virtual_alias_maps":                   "hash:/etc/postfix/virtual",
		"virtual_uid_maps":                     "static:5000",
		"virtual_gid_maps":                     "static:5000",
		"virtual_minimum_uid":                  "100",
		"recipient_delimiter":                  "+",
		"vdeliver_destination_recipient_limit": "1",
		"lmtp_line_length_limit":               "0",
		"lmtp_send_xforward_command":           "yes",
		"inet_interfaces":                      "loopback-only",
		"default_transport":                    "error",
		"relay_transport":                      "error",
		"relayhost":                            "",
		"mydestination":                        "",
		"maillog_file":                         maillog,
	}
	for name, v := range want {
		if got, _ := postconfValue(t, name); got != v {
			t.Errorf("main.cf: %s = %q, want %q", name, got, v)
		}
	}
	switch e.transport {
	case "vdeliver", "lmtp:unix:private/vdeliver-lmtp", "virtual":
	default:
		t.Errorf("virtual_transport = %q, want vdeliver, lmtp:unix:private/vdeliver-lmtp (or virtual for a reference run)", e.transport)
	}
	for service, entry := range map[string]string{
		"vdeliver/unix":      "vdeliver   unix  -       n       n       -       -       pipe flags=X null_sender= user=vmail argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}",
		"vdeliver-lmtp/unix": "vdeliver-lmtp unix - n n - - spawn user=vmail argv=/usr/local/bin/vdeliver lmtp",
	} {
		got := strings.Join(strings.Fields(command(t, nil, "postconf", "-M", service)), " ")
		if want := strings.Join(strings.Fields(entry), " "); got != want {
			t.Errorf("master.cf %s entry:\n got %s\nwant %s", service, got, want)
		}
	}
}

// TestDelivery sends mail to each kind of recipient of the seed
// configuration and checks every copy byte for byte, and that Postfix's log
// line for the queue id says the configured transport delivered it.
func TestDelivery(t *testing.T) {
	e := setup(t)
	type copyWant struct {
		box         box
		origTo      string
		deliveredTo string
	}
	tests := []struct {
		name   string
		smtp   bool // else sendmail
		from   string
		rcpt   string
		body   string
		copies []copyWant
	}{{
		name:   "maildir user",
		from:   "sender@example.org",
		rcpt:   "alice@example.com",
		body:   "Hello Alice.\n",
		copies: []copyWant{{aliceBox, "alice@example.com", "alice@example.com"}},
	}, {
		name:   "mbox user over smtp",
		smtp:   true,
		from:   "sender@example.org",
		rcpt:   "bob@example.com",
		body:   "Hello Bob.\nFrom the start of a line, quoted in mbox.\n>From already quoted stays.\nfrom lower case stays.\n",
		copies: []copyWant{{bobBox, "bob@example.com", "bob@example.com"}},
	}, {
		name:   "extension address",
		from:   "sender@example.org",
		rcpt:   "alice+tag@example.com",
		body:   "For alice+tag.\n",
		copies: []copyWant{{aliceBox, "alice+tag@example.com", "alice+tag@example.com"}},
	}, {
		name:   "second domain",
		smtp:   true,
		from:   "sender@example.org",
		rcpt:   "carol@example.net",
		body:   "Hello Carol.\n",
		copies: []copyWant{{carolBox, "carol@example.net", "carol@example.net"}},
	}, {
		name:   "catch-all",
		from:   "sender@example.org",
		rcpt:   "whoever@example.net",
		body:   "Nobody by that name, caught all.\n",
		copies: []copyWant{{catchallBox, "whoever@example.net", "whoever@example.net"}},
	}, {
		name:   "postmaster alias",
		smtp:   true,
		from:   "sender@example.org",
		rcpt:   "postmaster@example.com",
		body:   "To the postmaster.\n",
		copies: []copyWant{{aliceBox, "postmaster@example.com", "alice@example.com"}},
	}, {
		name: "alias fanning out to maildir and mbox",
		from: "sender@example.org",
		rcpt: "team@example.com",
		body: "To the whole team.\n",
		copies: []copyWant{
			{aliceBox, "team@example.com", "alice@example.com"},
			{bobBox, "team@example.com", "bob@example.com"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, msg := compose(t, "Sender <"+tc.from+">", tc.rcpt, tc.name, tc.body)
			off := logSize(t)
			if tc.smtp {
				smtpSend(t, tc.from, []string{tc.rcpt}, msg)
			} else {
				sendmail(t, tc.from, []string{tc.rcpt}, msg)
			}
			qid := waitQueueID(t, off, id)
			for _, c := range tc.copies {
				d := waitFinal(t, off, qid, c.deliveredTo)
				if want := e.sentText(c.box); d.status != "sent" || d.relay != e.relay() || d.dsn != "2.0.0" || d.text != want {
					t.Errorf("log: %s\nwant relay=%s, dsn=2.0.0, status=sent (%s)", d.line, e.relay(), want)
				}
				got := c.box.find(t, id)
				if len(got) != 1 {
					t.Errorf("%s: %d copies of <%s>, want 1", c.box, len(got), id)
					continue
				}
				checkCopy(t, c.box, got[0], wantMessage{
					fromLine:    tc.from,
					returnPath:  tc.from,
					origTo:      c.origTo,
					deliveredTo: c.deliveredTo,
					qid:         qid,
					msg:         msg,
				})
			}
		})
	}
}

// TestUnknownUserBounces: Postfix bounces mail for a user that is in no
// table with the 5.1.1 line of the delivery agent, and the DSN (sent with
// the null sender) reaches the sender's own virtual mailbox.
func TestUnknownUserBounces(t *testing.T) {
	e := setup(t)
	const from, rcpt = "alice@example.com", "nobody@example.com"
	id, msg := compose(t, "Alice <"+from+">", rcpt, "to nobody", "Is anybody there?\n")
	off := logSize(t)
	// Through sendmail: over SMTP, smtpd would already refuse the
	// recipient (smtpd_reject_unlisted_recipient) and the transport
	// would never see it.
	sendmail(t, from, []string{rcpt}, msg)
	qid := waitQueueID(t, off, id)
	d := waitFinal(t, off, qid, rcpt)
	// virtual(8)'s text (docs/behaviour.md §7), without the recipient: bounce(8) puts
	// "<recipient>: " in front of it in the DSN already. pipe(8) turns
	// the newline that ends the command's status line into a space,
	// which its log line keeps. Over LMTP the recipient is refused at
	// RCPT, before any data is sent, with the same text, and the lmtp
	// client quotes the reply.
	const reason = `unknown user: "nobody@example.com"`
	want := reason
	if e.lmtp() {
		want = "host " + e.relay() + " said: 550 5.1.1 " + reason + " (in reply to RCPT TO command)"
	}
	if d.status != "bounced" || d.relay != e.relay() || d.dsn != "5.1.1" || strings.TrimSuffix(d.text, " ") != want {
		t.Errorf("log: %s\nwant relay=%s, dsn=5.1.1, status=bounced (%s)", d.line, e.relay(), want)
	}

	// bounce(8) logs "<qid>: sender non-delivery notification: <dsn qid>".
	dsnQID := waitLog(t, off, regexp.MustCompile(`postfix/bounce\[\d+\]: `+qid+`: sender non-delivery notification: ([0-9A-Za-z]+)`), "the non-delivery notification")[1]
	dd := waitFinal(t, off, dsnQID, from)
	if dd.status != "sent" || dd.relay != e.relay() {
		t.Errorf("log of the DSN: %s\nwant relay=%s, status=sent", dd.line, e.relay())
	}
	got := aliceBox.find(t, id)
	if len(got) != 1 {
		t.Fatalf("%s: %d messages returning <%s>, want the one DSN", aliceBox, len(got), id)
	}
	// Unfold header lines: bounce(8) folds a long Diagnostic-Code.
	dsn := regexp.MustCompile(`\n[ \t]+`).ReplaceAllString(string(got[0].data), " ")
	diag := "X-Postfix; " + reason
	switch {
	case e.daemon == "pipe":
		diag = "x-unix; " + reason // pipe(8) reports the command's output as x-unix
	case e.lmtp():
		diag = "smtp; 550 5.1.1 " + reason
	}
	for _, want := range []string{
		"Return-Path: <>\nX-Original-To: alice@example.com\nDelivered-To: alice@example.com\n",
		"\nFrom: Mail Delivery System <MAILER-DAEMON@mail.e2e.test>\n",
		"\nTo: alice@example.com\n",
		"\n<nobody@example.com>: " + want + "\n",
		"\nStatus: 5.1.1\n",
		"\nAction: failed\n",
		"\nDiagnostic-Code: " + diag + "\n",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the DSN in %s, header lines unfolded:\n%s", aliceBox, dsn)
	}
}

// TestNullSender: a message with the null sender (as a bounce has) is
// delivered with "Return-Path: <>" (and "From MAILER-DAEMON" in mbox).
func TestNullSender(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name string
		smtp bool
		box  box
		rcpt string
	}{
		{"smtp to maildir", true, aliceBox, "alice@example.com"},
		{"sendmail to mbox", false, bobBox, "bob@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, msg := compose(t, "MAILER-DAEMON@example.org (Mail Delivery System)", tc.rcpt, "null sender", "A bounce, say.\n")
			off := logSize(t)
			if tc.smtp {
				smtpSend(t, "", []string{tc.rcpt}, msg)
			} else {
				sendmail(t, "", []string{tc.rcpt}, msg)
			}
			qid := waitQueueID(t, off, id)
			d := waitFinal(t, off, qid, tc.rcpt)
			if want := e.sentText(tc.box); d.status != "sent" || d.relay != e.relay() || d.text != want {
				t.Errorf("log: %s\nwant relay=%s, status=sent (%s)", d.line, e.relay(), want)
			}
			got := tc.box.find(t, id)
			if len(got) != 1 {
				t.Fatalf("%s: %d copies of <%s>, want 1", tc.box, len(got), id)
			}
			checkCopy(t, tc.box, got[0], wantMessage{
				fromLine:    "MAILER-DAEMON",
				returnPath:  "",
				origTo:      tc.rcpt,
				deliveredTo: tc.rcpt,
				qid:         qid,
				msg:         msg,
			})
		})
	}
}

// TestLockedMboxDefers: while the test holds the mbox's fcntl lock for
// longer than the lock budget (deliver_lock_attempts × deliver_lock_delay,
// here 3 × 1s), the mail is deferred and stays in the queue without
// touching the mbox; once the lock is released and the queue flushed it is
// delivered, once.
func TestLockedMboxDefers(t *testing.T) {
	e := setup(t)
	e.setParams(t, map[string]string{"deliver_lock_attempts": "3", "deliver_lock_delay": "1s"})

	path := bobBox.path()
	f := lockMbox(t, bobBox)
	// Read through f only: closing any other descriptor of the file
	// would drop this process's fcntl lock.
	before := readFD(t, f)

	const rcpt = "bob@example.com"
	id, msg := compose(t, "Sender <sender@example.org>", rcpt, "locked mbox", "Wait for the lock.\n")
	off := logSize(t)
	sendmail(t, "sender@example.org", []string{rcpt}, msg)
	qid := waitQueueID(t, off, id)
	d := waitAttempt(t, off, qid, rcpt)
	if d.status != "deferred" || d.relay != e.relay() || d.dsn != "4.2.0" {
		t.Fatalf("log: %s\nwant relay=%s, dsn=4.2.0, status=deferred", d.line, e.relay())
	}
	t.Logf("deferred: %s", d.line)

	mailq := command(t, nil, "postqueue", "-p")
	if !strings.Contains(mailq, qid) || !strings.Contains(mailq, rcpt) {
		t.Errorf("mailq does not list %s for %s:\n%s", qid, rcpt, mailq)
	}
	var inQueue bool
	for _, q := range queue(t) {
		if q.QueueID == qid {
			inQueue = q.QueueName == "deferred"
		}
	}
	if !inQueue {
		t.Errorf("postqueue -j: %s is not in the deferred queue", qid)
	}
	if after := readFD(t, f); !bytes.Equal(before, after) {
		t.Errorf("mbox changed while locked: %d bytes before, %d after", len(before), len(after))
	}
	if _, err := os.Lstat(path + ".lock"); err == nil {
		t.Errorf("dotlock %s.lock left behind after the deferral", path)
	}

	// Closing the descriptor drops the fcntl lock.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	off = logSize(t)
	command(t, nil, "postqueue", "-f")
	d = waitFinal(t, off, qid, rcpt)
	if want := e.sentText(bobBox); d.status != "sent" || d.relay != e.relay() || d.text != want {
		t.Errorf("log after flush: %s\nwant relay=%s, status=sent (%s)", d.line, e.relay(), want)
	}
	got := bobBox.find(t, id)
	if len(got) != 1 {
		t.Fatalf("%s: %d copies of <%s>, want 1", bobBox, len(got), id)
	}
	checkCopy(t, bobBox, got[0], wantMessage{
		fromLine: "sender@example.org", returnPath: "sender@example.org",
		origTo: rcpt, deliveredTo: rcpt, qid: qid, msg: msg,
	})
}

// TestDeliveredToLoop: unlike virtual(8), vdeliver bounces (5.4.6) a
// message that already carries "Delivered-To: <recipient>", as pipe(8)'s D
// flag would (docs/behaviour.md §13.4 and §6: the header value is compared
// case-insensitively). The message reaches no mailbox.
func TestDeliveredToLoop(t *testing.T) {
	e := setup(t)
	if !e.vdeliver() {
		t.Skipf("virtual_transport %s is %s(8), which does no Delivered-To loop detection", e.transport, e.daemon)
	}
	for _, tc := range []struct {
		name, header, rcpt string
		box                box
	}{
		{"maildir", "Delivered-To: alice@example.com", "alice@example.com", aliceBox},
		{"mbox, other case", "Delivered-To: BOB@Example.Com", "bob@example.com", bobBox},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, msg := compose(t, "Carol <carol@example.net>", tc.rcpt, "loop", "Round and round.\n")
			msg = append([]byte(tc.header+"\n"), msg...)
			off := logSize(t)
			// The DSN goes to carol's Maildir rather than out of the
			// machine.
			sendmail(t, "carol@example.net", []string{tc.rcpt}, msg)
			qid := waitQueueID(t, off, id)
			d := waitFinal(t, off, qid, tc.rcpt)
			if d.status != "bounced" || d.relay != e.relay() || d.dsn != "5.4.6" || !strings.Contains(d.text, "mail forwarding loop for "+tc.rcpt) {
				t.Errorf("log: %s\nwant relay=%s, dsn=5.4.6, status=bounced (...mail forwarding loop for %s...)", d.line, e.relay(), tc.rcpt)
			}
			for _, s := range tc.box.find(t, id) {
				if bytes.HasPrefix(s.data, []byte("Return-Path: <carol@example.net>")) || bytes.HasPrefix(s.data, []byte("From carol@example.net ")) {
					t.Errorf("%s: the looping message was delivered anyway:\n%s", tc.box, s.data)
				}
			}
		})
	}
}

// lockMbox creates the mbox b if needed (as vmail's) and holds its fcntl
// lock until the returned file is closed. If the test stops early, the
// cleanup unlocks and flushes the queue, so that mail it left deferred does
// not get in the way of the tests after it.
func lockMbox(t *testing.T, b box) *os.File {
	t.Helper()
	path := b.path()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		command(t, nil, "postqueue", "-f")
	})
	if err := f.Chown(5000, 5000); err != nil {
		t.Fatal(err)
	}
	// fcntl is the kernel lock in virtual_mailbox_lock's default
	// "fcntl, dotlock"; a process's fcntl lock blocks every other process.
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatalf("locking %s: %v", path, err)
	}
	return f
}

// TestMixedStatuses sends one message to four recipients that end four
// ways: alice's Maildir takes it, bob's mbox is locked (deferred, 4.2.0),
// carol already has it (a Delivered-To loop, bounced with 5.4.6 after the
// data) and nobody@example.com is unknown (bounced with 5.1.1). Over LMTP
// all four are one transaction: one RCPT reply or end-of-DATA reply each,
// from one lmtp client process. Once the lock is gone, bob gets the message
// once; carol and nobody never do, and the DSN reaches the sender.
func TestMixedStatuses(t *testing.T) {
	e := setup(t)
	if !e.vdeliver() {
		t.Skipf("virtual_transport %s is %s(8), which does no Delivered-To loop detection", e.transport, e.daemon)
	}
	e.setParams(t, map[string]string{"deliver_lock_attempts": "3", "deliver_lock_delay": "1s"})
	f := lockMbox(t, bobBox)

	// The DSN goes to the catch-all.
	const from = "mixed@example.net"
	rcpts := []string{"alice@example.com", "bob@example.com", "carol@example.net", "nobody@example.com"}
	id, msg := compose(t, "Mixed <"+from+">", strings.Join(rcpts, ", "), "mixed", "Four recipients, four outcomes.\n")
	msg = append([]byte("Delivered-To: carol@example.net\n"), msg...)
	marks := map[box]mark{}
	for _, b := range []box{aliceBox, carolBox, catchallBox} {
		marks[b] = b.mark(t)
	}
	off := logSize(t)
	// Through sendmail: smtpd would refuse nobody@example.com itself.
	sendmail(t, from, rcpts, msg)
	qid := waitQueueID(t, off, id)

	ds := map[string]delivery{}
	for _, r := range rcpts {
		ds[r] = waitAttempt(t, off, qid, r)
	}
	type want struct{ status, dsn, text string }
	wants := map[string]want{
		"alice@example.com":  {"sent", "2.0.0", e.sentText(aliceBox)},
		"bob@example.com":    {"deferred", "4.2.0", ""},
		"carol@example.net":  {"bounced", "5.4.6", ""},
		"nobody@example.com": {"bounced", "5.1.1", ""},
	}
	for r, w := range wants {
		d := ds[r]
		if d.status != w.status || d.dsn != w.dsn || d.relay != e.relay() || w.text != "" && d.text != w.text {
			t.Errorf("log: %s\nwant relay=%s, dsn=%s, status=%s", d.line, e.relay(), w.dsn, w.status)
		}
	}
	if e.lmtp() {
		// Each status comes from its own reply in one session.
		for r, in := range map[string]string{
			"bob@example.com":    "(in reply to end of DATA command)",
			"carol@example.net":  "(in reply to end of DATA command)",
			"nobody@example.com": "(in reply to RCPT TO command)",
		} {
			if !strings.HasSuffix(ds[r].text, in) {
				t.Errorf("log: %s\nwant the reply %s", ds[r].line, in)
			}
		}
		// One delivery request: the same lmtp client process, and the
		// same times before the queue manager, in it and for the
		// connection set-up (the first three of delays=a/b/c/d).
		request := regexp.MustCompile(`postfix/lmtp\[\d+\]|delays=[0-9.]+/[0-9.]+/[0-9.]+/`)
		p := request.FindAllString(ds[rcpts[0]].line, -1)
		for _, r := range rcpts[1:] {
			if q := request.FindAllString(ds[r].line, -1); !slices.Equal(p, q) {
				t.Errorf("%s logged with %q, %s with %q: not one transaction", rcpts[0], p, r, q)
			}
		}
	}
	if got := aliceBox.since(t, marks[aliceBox]); len(got) != 1 || !hasMessageID(got[0].data, id) {
		t.Errorf("%s: %d new messages, want the one", aliceBox, len(got))
	}
	for _, s := range carolBox.since(t, marks[carolBox]) {
		if hasMessageID(s.data, id) {
			t.Errorf("%s: the looping message was delivered anyway", carolBox)
		}
	}

	// The bounces are reported at once, in one DSN to the sender.
	dsnQID := waitLog(t, off, regexp.MustCompile(`postfix/bounce\[\d+\]: `+qid+`: sender non-delivery notification: ([0-9A-Za-z]+)`), "the non-delivery notification")[1]
	waitFinal(t, off, dsnQID, from)
	var dsn string
	for _, s := range catchallBox.since(t, marks[catchallBox]) {
		if bytes.Contains(s.data, []byte(id)) {
			dsn = regexp.MustCompile(`\n[ \t]+`).ReplaceAllString(string(s.data), " ")
		}
	}
	for _, want := range []string{"\nFinal-Recipient: rfc822; carol@example.net\n", "\nStatus: 5.4.6\n",
		"\nFinal-Recipient: rfc822; nobody@example.com\n", "\nStatus: 5.1.1\n"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	if strings.Contains(dsn, "rfc822; alice@example.com") || strings.Contains(dsn, "rfc822; bob@example.com") {
		t.Errorf("DSN names a recipient that did not bounce")
	}
	if t.Failed() {
		t.Logf("the DSN, header lines unfolded:\n%s", dsn)
	}

	// Unlocked and flushed, bob gets it once and nothing else changes.
	bobMark := bobBox.mark(t)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	off = logSize(t)
	command(t, nil, "postqueue", "-f")
	if d := waitFinal(t, off, qid, "bob@example.com"); d.status != "sent" || d.relay != e.relay() {
		t.Errorf("log after flush: %s\nwant relay=%s, status=sent", d.line, e.relay())
	}
	if got := bobBox.since(t, bobMark); len(got) != 1 || !hasMessageID(got[0].data, id) {
		t.Errorf("%s: %d new messages after the flush, want the one", bobBox, len(got))
	}
	for _, r := range []string{"alice@example.com", "carol@example.net", "nobody@example.com"} {
		for _, d := range deliveries(t, off) {
			if d.qid == qid && d.to == r {
				t.Errorf("after the flush, %s was tried again: %s", r, d.line)
			}
		}
	}
}

// readFD returns the whole content of an open file without moving its
// offset.
func readFD(t *testing.T, f *os.File) []byte {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDifferential delivers the same messages once with Postfix's own
// virtual(8) and once with the configured transport, and compares the
// copies: identical bytes except the queue id and date of the Received
// header and the From_ line date (mbox); same mode and owner (Maildir).
func TestDifferential(t *testing.T) {
	e := setup(t)
	t.Cleanup(func() { e.useTransport(t, e.transport) })

	longLine := strings.Repeat("0123456789", 500) // > line_length_limit (2048): stored as several records
	type send struct {
		id    string
		smtp  bool
		from  string
		rcpts []string
		msg   []byte
		boxes []box
	}
	var sends []send
	add := func(smtp bool, from string, rcpts []string, boxes []box, subject, body string) {
		id := fmt.Sprintf("differential.%d.%d@e2e.test", runStamp, len(sends))
		msg := []byte("From: Sender <sender@example.org>\n" +
			"To: " + strings.Join(rcpts, ", ") + "\n" +
			"Subject: " + subject + "\n" +
			"Date: Tue, 25 Nov 2025 12:00:00 +0000\n" +
			"Message-ID: <" + id + ">\n" +
			body)
		sends = append(sends, send{id, smtp, from, rcpts, msg, boxes})
	}
	add(false, "sender@example.org", []string{"alice@example.com"}, []box{aliceBox}, "plain maildir",
		"\nHello.\n")
	add(false, "sender@example.org", []string{"bob@example.com"}, []box{bobBox}, "quoting in mbox",
		"\nFrom the body.\n>From quoted.\n>>From twice.\nfrom lower.\nFrom:colon\nFrom\n\nFrom \n")
	add(true, "sender@example.org", []string{"alice@example.com"}, []box{aliceBox}, "quoting in maildir",
		"\nFrom the body.\n>From quoted.\n")
	add(true, `"john doe"@example.org`, []string{"bob@example.com"}, []box{bobBox}, "sender that needs quoting",
		"\nsmtp with a quoted local part.\n")
	add(true, `"john doe"@example.org`, []string{"alice@example.com"}, []box{aliceBox}, "sender that needs quoting",
		"\nsmtp with a quoted local part.\n")
	add(true, "", []string{"bob@example.com"}, []box{bobBox}, "null sender mbox", "\nbounce-like\n")
	add(false, "", []string{"alice@example.com"}, []box{aliceBox}, "null sender maildir", "\nbounce-like\n")
	add(false, "sender@example.org", []string{"Bob@Example.COM"}, []box{bobBox}, "mixed case mbox", "\ncase kept?\n")
	add(true, "sender@example.org", []string{"Alice+Tag@Example.COM"}, []box{aliceBox}, "mixed case extension", "\ncase kept?\n")
	add(true, "sender@example.org", []string{"team@example.com"}, []box{aliceBox, bobBox}, "fan-out", "\nto both\n")
	add(false, "sender@example.org", []string{"somebody@example.net"}, []box{catchallBox}, "catch-all", "\ncaught\n")
	add(true, "sender@example.org", []string{"bob@example.com"}, []box{bobBox}, "long lines and 8 bits",
		"\n"+longLine+"\nUTF-8: Grüße, 日本語\n.\n..\n"+longLine)
	add(false, "sender@example.org", []string{"alice@example.com"}, []box{aliceBox}, "no final newline",
		"\nno newline at the end")
	add(true, "sender@example.org", []string{"bob@example.com"}, []box{bobBox}, "From_ in the header block",
		"From inside the headers\n\nbody\n")

	// deliver sends every message with the given transport and returns the
	// new copies, in order, per message and mailbox.
	deliver := func(transport string) [][]stored {
		e.useTransport(t, transport)
		boxes := []box{aliceBox, bobBox, catchallBox}
		marks := map[box]mark{}
		for _, b := range boxes {
			marks[b] = b.mark(t)
		}
		off := logSize(t)
		for _, s := range sends {
			if s.smtp {
				smtpSend(t, s.from, s.rcpts, s.msg)
			} else {
				sendmail(t, s.from, s.rcpts, s.msg)
			}
		}
		waitQueueEmpty(t, waitLimit)
		ours := map[string]bool{}
		qids := queueIDs(t, off)
		for _, s := range sends {
			if len(qids[s.id]) != 1 {
				t.Fatalf("%s run: queue ids of <%s> in the log: %q, want one", transport, s.id, qids[s.id])
			}
			ours[qids[s.id][0]] = true
		}
		for _, d := range deliveries(t, off) {
			if ours[d.qid] && (d.status != "sent" || d.relay != relayOf(transport)) {
				t.Errorf("%s run: %s", transport, d.line)
			}
		}
		added := map[box][]stored{}
		for _, b := range boxes {
			added[b] = b.since(t, marks[b])
		}
		var out [][]stored
		for _, s := range sends {
			var copies []stored
			for _, b := range s.boxes {
				var found []stored
				for _, c := range added[b] {
					if hasMessageID(c.data, s.id) {
						found = append(found, c)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%s run: %s has %d copies of <%s>, want 1", transport, b, len(found), s.id)
				}
				copies = append(copies, found[0])
			}
			out = append(out, copies)
		}
		return out
	}
	ref := deliver("virtual")
	got := deliver(e.transport)
	checkTidy(t, aliceBox, bobBox, catchallBox)
	for i, s := range sends {
		for j, b := range s.boxes {
			r, g := ref[i][j], got[i][j]
			if diff := cmp.Diff(masked(r.data), masked(g.data)); diff != "" {
				t.Errorf("message %d (%s to %s), %s: virtual(8) and %s differ (-virtual +%s):\n%s",
					i, s.from, s.rcpts, b, e.transport, e.transport, diff)
			}
			if b.isMaildir() && (r.mode != g.mode || r.uid != g.uid || r.gid != g.gid) {
				t.Errorf("message %d, %s: virtual(8) file %v %d:%d, %s file %v %d:%d",
					i, b, r.mode, r.uid, r.gid, e.transport, g.mode, g.uid, g.gid)
			}
		}
	}
}

// TestBurst sends 500 messages at once over five SMTP connections, spread
// over a Maildir user, the mbox user and the catch-all, and checks each
// arrives exactly once in its own mailbox.
func TestBurst(t *testing.T) {
	e := setup(t)
	const n, conns = 500, 5
	targets := []struct {
		rcpt string
		box  box
	}{
		{"alice@example.com", aliceBox},
		{"bob@example.com", bobBox},
		{"burst@example.net", catchallBox},
	}
	boxes := []box{aliceBox, bobBox, catchallBox}
	marks := map[box]mark{}
	for _, b := range boxes {
		marks[b] = b.mark(t)
	}
	ids := make([]string, n)
	rcpts := make([][][]string, conns)
	msgs := make([][][]byte, conns)
	for i := range n {
		tg := targets[i%len(targets)]
		var msg []byte
		ids[i], msg = compose(t, "Burst <burst@example.org>", tg.rcpt, fmt.Sprintf("burst %d", i), fmt.Sprintf("message %d of %d\n", i, n))
		rcpts[i%conns] = append(rcpts[i%conns], []string{tg.rcpt})
		msgs[i%conns] = append(msgs[i%conns], msg)
	}

	off := logSize(t)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Go(func() { errs[c] = smtpSession("burst@example.org", rcpts[c], msgs[c]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	submitted := time.Since(start)
	waitQueueEmpty(t, 3*time.Minute)
	took := time.Since(start)
	t.Logf("%d messages: submitted over SMTP in %v, all delivered by %s after %v (%.0f messages/s)",
		n, submitted.Round(time.Millisecond), e.transport, took.Round(time.Millisecond), float64(n)/took.Seconds())

	ours := map[string]bool{}
	qids := queueIDs(t, off)
	for _, id := range ids {
		if len(qids[id]) != 1 {
			t.Errorf("queue ids of <%s> in the log: %q, want one", id, qids[id])
			continue
		}
		ours[qids[id][0]] = true
	}
	sent := 0
	for _, d := range deliveries(t, off) {
		if !ours[d.qid] {
			continue
		}
		if d.status != "sent" || d.relay != e.relay() {
			t.Errorf("log: %s", d.line)
			continue
		}
		sent++
	}
	if sent != n {
		t.Errorf("log has %d status=sent lines for the burst, want %d", sent, n)
	}
	// Every burst message is found by its Message-ID: each must be in
	// its own mailbox exactly once.
	want := map[string]box{}
	for i, id := range ids {
		want[id] = targets[i%len(targets)].box
	}
	count := map[string]int{}
	for _, b := range boxes {
		for _, s := range b.since(t, marks[b]) {
			m := messageIDRE.FindSubmatch(s.data)
			if m == nil {
				continue
			}
			id := string(m[1])
			wb, ok := want[id]
			if !ok {
				continue
			}
			count[id]++
			if wb != b {
				t.Errorf("<%s> landed in %s, want %s", id, b, wb)
			}
		}
	}
	missing := 0
	for _, id := range ids {
		switch c := count[id]; {
		case c == 0:
			missing++
		case c > 1:
			t.Errorf("<%s> delivered %d times", id, c)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d messages missing from the mailboxes", missing, n)
	}
	checkTidy(t, boxes...)
}

// checkTidy asserts what a finished delivery leaves behind: nothing in a
// Maildir's tmp/, no dotlock next to an mbox, and an mbox that is a 0600
// regular file of vmail (5000:5000).
func checkTidy(t *testing.T, boxes ...box) {
	t.Helper()
	for _, b := range boxes {
		if b.isMaildir() {
			ents, err := os.ReadDir(filepath.Join(b.path(), "tmp"))
			if err != nil {
				t.Errorf("%s: %v", b, err)
			}
			for _, ent := range ents {
				t.Errorf("%s: left behind in tmp/: %s", b, ent.Name())
			}
			continue
		}
		if _, err := os.Lstat(b.path() + ".lock"); err == nil {
			t.Errorf("%s: dotlock %s.lock left behind", b, b.path())
		}
		fi, err := os.Lstat(b.path())
		if err != nil {
			t.Errorf("%s: %v", b, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != 0o600 || st.Uid != 5000 || st.Gid != 5000 || st.Nlink != 1 {
			t.Errorf("%s: mode %v, owner %d:%d, %d links; want -rw------- 5000:5000, 1 link", b, fi.Mode(), st.Uid, st.Gid, st.Nlink)
		}
	}
}

var messageIDRE = regexp.MustCompile(`\nMessage-ID: <([^>]+)>\n`)

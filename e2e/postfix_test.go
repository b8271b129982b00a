package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Paths and addresses of the set-up made by e2e/run.sh.
const (
	mailBase = "/var/mail/vhosts"
	maillog  = "/var/log/postfix-e2e.log"
	smtpAddr = "127.0.0.1:25"

	// waitLimit bounds every wait for Postfix (a log line, an empty queue).
	// It is a guard against a hung suite, not an assertion about speed:
	// a healthy delivery takes well under a second.
	waitLimit = 90 * time.Second
	pollEvery = 100 * time.Millisecond
)

// env is the running Postfix the suite talks to.
type env struct {
	// transport is the virtual_transport run.sh configured: "vdeliver"
	// (pipe(8)), "lmtp:unix:private/vdeliver-lmtp" (vdeliver's LMTP mode
	// under spawn(8)), or "virtual" for a reference run of the suite
	// against virtual(8).
	transport string
	// service is the master.cf service that delivers: the transport, or
	// for an LMTP transport the service behind its socket.
	service string
	// daemon is the master.cf command of that service: "pipe", "spawn" or
	// "virtual".
	daemon string
}

// vdeliver reports whether vdeliver delivers (through pipe(8) or LMTP).
func (e *env) vdeliver() bool { return e.daemon == "pipe" || e.daemon == "spawn" }

// lmtp reports whether Postfix's lmtp client hands the mail over.
func (e *env) lmtp() bool { return strings.HasPrefix(e.transport, "lmtp:") }

// relay is what Postfix logs as relay= for the configured transport.
func (e *env) relay() string { return relayOf(e.transport) }

// relayOf is what Postfix logs as relay= for a virtual_transport value: the
// transport's name, or for an LMTP socket the lmtp client's
// "myhostname[socket]".
func relayOf(transport string) string {
	if path, ok := strings.CutPrefix(transport, "lmtp:unix:"); ok {
		return "mail.e2e.test[" + path + "]"
	}
	return transport
}

var (
	setupOnce sync.Once
	setupEnv  *env
	setupErr  error
)

// setup returns the running Postfix, skipping the test unless VDELIVER_E2E=1.
// Once enabled, anything missing is a failure, never a skip: on CI the suite
// must not pass by not running.
func setup(t *testing.T) *env {
	t.Helper()
	if os.Getenv("VDELIVER_E2E") != "1" {
		t.Skip("end-to-end test through a real Postfix: run `make e2e` (bash e2e/run.sh), which sets VDELIVER_E2E=1")
	}
	setupOnce.Do(func() { setupEnv, setupErr = newEnv() })
	if setupErr != nil {
		t.Fatalf("e2e set-up: %v", setupErr)
	}
	return setupEnv
}

func newEnv() (*env, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root (it reads vmail's mailboxes and drives postfix); use e2e/run.sh")
	}
	if out, err := exec.Command("postfix", "status").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postfix is not running (start it with e2e/run.sh): %v: %s", err, out)
	}
	out, err := exec.Command("postconf", "-h", "virtual_transport").Output()
	if err != nil {
		return nil, fmt.Errorf("postconf -h virtual_transport: %v", err)
	}
	e := &env{transport: strings.TrimSpace(string(out))}
	e.service = e.transport
	if path, ok := strings.CutPrefix(e.transport, "lmtp:unix:"); ok {
		e.service = strings.TrimPrefix(path, "private/")
	}
	// Not -h: postconf 3.7 then joins the folded command field without
	// a space ("pipeflags=X ...").
	field := e.service + "/unix/command"
	out, err = exec.Command("postconf", "-F", field).Output()
	if err != nil {
		return nil, fmt.Errorf("master.cf has no %s/unix service: %v", e.service, err)
	}
	value, ok := strings.CutPrefix(string(out), field+" = ")
	if f := strings.Fields(value); ok && len(f) > 0 {
		e.daemon = f[0]
	} else {
		return nil, fmt.Errorf("postconf -F %s: %q", field, out)
	}
	return e, nil
}

// sentText is the text Postfix logs with status=sent when the configured
// transport delivered a message to mailbox b.
func (e *env) sentText(b box) string {
	// virtual(8)'s own words; vdeliver prints the same after "2.0.0 ".
	text := "delivered to mailbox"
	if b.isMaildir() {
		text = "delivered to maildir"
	}
	switch {
	case e.daemon == "pipe":
		// pipe(8): "delivered via <service> service" and the
		// command's output, trimmed, in parentheses.
		return "delivered via " + e.transport + " service (2.0.0 " + text + ")"
	case e.lmtp():
		// The lmtp client logs the server's reply to the end of DATA.
		return "250 2.0.0 " + text
	}
	return text
}

// command runs a program and returns its standard output; it fails the test
// if the program fails.
func command(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout: %s\nstderr: %s", name, args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

// postconfValue returns the value of a main.cf parameter and whether it is
// set explicitly in main.cf (postconf -n).
func postconfValue(t *testing.T, name string) (value string, explicit bool) {
	t.Helper()
	out := command(t, nil, "postconf", "-n", name)
	if out == "" {
		return strings.TrimSpace(command(t, nil, "postconf", "-h", name)), false
	}
	_, value, _ = strings.Cut(strings.TrimSpace(out), " = ")
	return value, true
}

// setParams edits main.cf and reloads Postfix; the old values come back
// (with another reload) when the test ends. vdeliver reads main.cf on every
// delivery, but virtual(8) and qmgr need the reload.
func (e *env) setParams(t *testing.T, params map[string]string) {
	t.Helper()
	type old struct {
		name, value string
		explicit    bool
	}
	var olds []old
	for name, value := range params {
		v, explicit := postconfValue(t, name)
		olds = append(olds, old{name, v, explicit})
		command(t, nil, "postconf", "-e", name+" = "+value)
	}
	t.Cleanup(func() {
		for _, o := range olds {
			if o.explicit {
				command(t, nil, "postconf", "-e", o.name+" = "+o.value)
			} else {
				command(t, nil, "postconf", "-X", o.name)
			}
		}
		reload(t)
	})
	reload(t)
}

// reload runs `postfix reload` and waits until the master has logged it.
// Daemons of the old generation finish their current work first, which is
// why a transport switch is confirmed by a probe message (useTransport).
func reload(t *testing.T) {
	t.Helper()
	off := logSize(t)
	command(t, nil, "postfix", "reload")
	waitLog(t, off, regexp.MustCompile(`postfix/master\[\d+\]: reload -- version`), "master to log the reload")
}

// useTransport makes virtual_transport name and returns once a probe message
// has been delivered by it. The caller restores the configured transport.
func (e *env) useTransport(t *testing.T, name string) {
	t.Helper()
	if v, _ := postconfValue(t, "virtual_transport"); v == name {
		return
	}
	command(t, nil, "postconf", "-e", "virtual_transport = "+name)
	reload(t)
	for try := 1; try <= 10; try++ {
		id, msg := compose(t, "probe@example.org", "probe@example.net", "transport probe", "probe\n")
		off := logSize(t)
		sendmail(t, "probe@example.org", []string{"probe@example.net"}, msg)
		d := waitFinal(t, off, waitQueueID(t, off, id), "probe@example.net")
		if d.relay == relayOf(name) {
			return
		}
		t.Logf("probe %d after reload still went through %s", try, d.relay)
	}
	t.Fatalf("virtual_transport = %s: not in use after a reload and 10 probe messages", name)
}

// msgSeq makes Message-IDs unique within one run of the suite; the start
// time makes them unique across runs (the log is kept between them).
var (
	msgSeq   atomic.Int64
	runStamp = time.Now().UnixNano()
)

// newMessageID returns a Message-ID (without angle brackets) unique to this
// run of the suite.
func newMessageID(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '.'
	}, t.Name())
	return fmt.Sprintf("%s.%d.%d@e2e.test", name, runStamp, msgSeq.Add(1))
}

// compose returns a new Message-ID and a complete message with LF line ends.
// The message has every header cleanup(8) would otherwise add (Date,
// Message-ID, From, To), so what reaches the mailbox is exactly these bytes
// plus Postfix's Received header.
func compose(t *testing.T, from, to, subject, body string) (id string, msg []byte) {
	id = newMessageID(t)
	return id, []byte("From: " + from + "\n" +
		"To: " + to + "\n" +
		"Subject: " + subject + "\n" +
		"Date: Tue, 25 Nov 2025 12:00:00 +0000\n" +
		"Message-ID: <" + id + ">\n" +
		"\n" + body)
}

// sendmail submits a message with Postfix's sendmail(1) (through postdrop
// and pickup). An empty sender is the null sender.
func sendmail(t *testing.T, from string, rcpts []string, msg []byte) {
	t.Helper()
	if from == "" {
		from = "<>"
	}
	command(t, msg, "/usr/sbin/sendmail", append([]string{"-i", "-f", from, "--"}, rcpts...)...)
}

// smtpSend submits a message over SMTP to 127.0.0.1:25. An empty sender is
// the null sender. net/smtp sends the lines with CRLF and dot-stuffs them.
func smtpSend(t *testing.T, from string, rcpts []string, msg []byte) {
	t.Helper()
	if err := smtpSession(from, [][]string{rcpts}, [][]byte{msg}); err != nil {
		t.Fatal(err)
	}
}

// smtpSession sends several messages over one SMTP connection; it returns
// an error instead of failing so that it can run in a goroutine.
func smtpSession(from string, rcpts [][]string, msgs [][]byte) error {
	c, err := smtp.Dial(smtpAddr)
	if err != nil {
		return fmt.Errorf("smtp: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.e2e.test"); err != nil {
		return fmt.Errorf("smtp EHLO: %v", err)
	}
	for i, msg := range msgs {
		if err := c.Mail(from); err != nil {
			return fmt.Errorf("smtp MAIL FROM:<%s>: %v", from, err)
		}
		for _, r := range rcpts[i] {
			if err := c.Rcpt(r); err != nil {
				return fmt.Errorf("smtp RCPT TO:<%s>: %v", r, err)
			}
		}
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("smtp DATA: %v", err)
		}
		if _, err := w.Write(msg); err != nil {
			return fmt.Errorf("smtp DATA: %v", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("smtp end of DATA: %v", err)
		}
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp QUIT: %v", err)
	}
	return nil
}

// logSize returns the current length of the mail log; waits start reading
// there so that they only see what happened afterwards.
func logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(maillog)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// readLog returns the mail log from byte offset off.
func readLog(t *testing.T, off int64) string {
	t.Helper()
	b, err := os.ReadFile(maillog)
	if err != nil {
		t.Fatal(err)
	}
	if off > int64(len(b)) {
		t.Fatalf("%s shrank below offset %d", maillog, off)
	}
	return string(b[off:])
}

// waitLog waits until a line matching re appears in the log after off and
// returns its submatches.
func waitLog(t *testing.T, off int64, re *regexp.Regexp, what string) []string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if m := re.FindStringSubmatch(readLog(t, off)); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s (%s) in %s", waitLimit, what, re, maillog)
		}
		time.Sleep(pollEvery)
	}
}

// waitQueueID returns the queue id cleanup(8) gave the message with this
// Message-ID, submitted after log offset off.
func waitQueueID(t *testing.T, off int64, msgID string) string {
	t.Helper()
	re := regexp.MustCompile(`postfix/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=<` + regexp.QuoteMeta(msgID) + `>`)
	return waitLog(t, off, re, "the queue id of <"+msgID+">")[1]
}

var messageIDLogRE = regexp.MustCompile(`(?m)postfix/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=<([^>]*)>$`)

// queueIDs maps the Message-ID of every message cleanup(8) logged after off
// to its queue ids (a message submitted twice has two).
func queueIDs(t *testing.T, off int64) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	for _, m := range messageIDLogRE.FindAllStringSubmatch(readLog(t, off), -1) {
		ids[m[2]] = append(ids[m[2]], m[1])
	}
	return ids
}

// delivery is one delivery attempt as the queue manager's delivery agent
// logged it.
type delivery struct {
	line               string
	qid, to, origTo    string
	relay, dsn, status string
	text               string // the text in parentheses after status=
}

var deliveryRE = regexp.MustCompile(`(?m)^.* postfix/[a-z0-9/-]+\[\d+\]: ([0-9A-Za-z]+): to=<([^>]*)>, (?:orig_to=<([^>]*)>, )?relay=([^,]+), .*?dsn=(\d\.\d{1,3}\.\d{1,3}), status=(\w+) \((.*)\)$`)

// deliveries returns every delivery attempt logged after off.
func deliveries(t *testing.T, off int64) []delivery {
	t.Helper()
	var ds []delivery
	for _, m := range deliveryRE.FindAllStringSubmatch(readLog(t, off), -1) {
		ds = append(ds, delivery{line: m[0], qid: m[1], to: m[2], origTo: m[3], relay: m[4], dsn: m[5], status: m[6], text: m[7]})
	}
	return ds
}

// waitAttempt returns the first delivery attempt for queue id qid and
// recipient to logged after off, whatever its status.
func waitAttempt(t *testing.T, off int64, qid, to string) delivery {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		for _, d := range deliveries(t, off) {
			if d.qid == qid && d.to == to {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for a delivery attempt of %s to <%s> in %s", waitLimit, qid, to, maillog)
		}
		time.Sleep(pollEvery)
	}
}

// waitFinal is waitAttempt for a message that must not be deferred.
func waitFinal(t *testing.T, off int64, qid, to string) delivery {
	t.Helper()
	d := waitAttempt(t, off, qid, to)
	if d.status == "deferred" {
		t.Fatalf("delivery to <%s> deferred: %s", to, d.line)
	}
	return d
}

// queueEntry is one message of `postqueue -j`.
type queueEntry struct {
	QueueName  string `json:"queue_name"`
	QueueID    string `json:"queue_id"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address     string `json:"address"`
		DelayReason string `json:"delay_reason"`
	} `json:"recipients"`
}

// queue returns the messages in Postfix's queue.
func queue(t *testing.T) []queueEntry {
	t.Helper()
	var q []queueEntry
	for _, line := range strings.Split(strings.TrimSpace(command(t, nil, "postqueue", "-j")), "\n") {
		if line == "" {
			continue
		}
		var e queueEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("postqueue -j: %v: %s", err, line)
		}
		q = append(q, e)
	}
	return q
}

// waitQueueEmpty waits until Postfix's queue is empty. A deferred message
// fails the test at once with its reason, since it would only be retried
// minutes later.
func waitQueueEmpty(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		q := queue(t)
		if len(q) == 0 {
			return
		}
		for _, e := range q {
			if e.QueueName == "deferred" {
				t.Fatalf("message %s deferred: %+v", e.QueueID, e.Recipients)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for an empty queue; %d messages left", limit, len(q))
		}
		time.Sleep(pollEvery)
	}
}

package lmtp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Handler that answers from a table keyed by recipient and records what
// it was given: the protocol alone is under test here (the real delivery behind it is
// tested in internal/cli).
type recorder struct {
	mu      sync.Mutex
	rcpt    map[string]Reply // RCPT replies; missing: 2.1.5
	data    map[string]Reply // replies after DATA; missing: 2.0.0
	panicAt string           // a recipient whose RCPT or delivery panics
	txs     []*recTx
}

type recTx struct {
	r     *recorder
	info  Tx
	msg   []byte
	rcpts []Rcpt
	asked []Rcpt
	ended bool
	spool bool // the message came in a spool file
}

func (r *recorder) Begin(_ context.Context, tx *Tx) Transaction {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &recTx{r: r, info: *tx}
	r.txs = append(r.txs, t)
	return t
}

func (t *recTx) Recipient(_ context.Context, rc Rcpt) Reply {
	t.asked = append(t.asked, rc)
	if rc.Addr == t.r.panicAt+"@rcpt" {
		panic("boom")
	}
	if rep, ok := t.r.rcpt[rc.Addr]; ok {
		return rep
	}
	return Reply{Code: "2.1.5", Text: "Ok"}
}

func (t *recTx) Data(_ context.Context, msg *Message, rcpts []Rcpt) []Reply {
	b, err := io.ReadAll(msg.Reader())
	if err != nil {
		panic(err)
	}
	t.msg, t.rcpts, t.spool = b, rcpts, msg.File() != nil
	var out []Reply
	for _, rc := range rcpts {
		if rc.Addr == t.r.panicAt+"@data" {
			panic("boom")
		}
		if rep, ok := t.r.data[rc.Addr]; ok {
			out = append(out, rep)
			continue
		}
		out = append(out, Reply{Code: "2.0.0", Text: "delivered to maildir"})
	}
	return out
}

func (t *recTx) End() { t.ended = true }

// runSession runs input through Serve and returns the output with CRLF shown as "\n"; it
// fails the test when a reply line does not end in CRLF.
func runSession(t *testing.T, h Handler, cfg Config, input string) string {
	t.Helper()
	var out bytes.Buffer
	conn := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(input), &out}
	if cfg.Hostname == "" {
		cfg.Hostname = "test"
	}
	Serve(context.Background(), conn, h, cfg)
	return crlfLines(t, out.String())
}

func crlfLines(t *testing.T, s string) string {
	t.Helper()
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		t.Errorf("output does not end in CRLF: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("reply line with a bare CR or LF: %q", l)
		}
	}
	return strings.ReplaceAll(s, "\r\n", "\n")
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const lhloReply = "250-test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-SIZE 1000000\n250-DSN\n250-SMTPUTF8\n250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\n"

// The whole session sent at once (PIPELINING): every reply, in order, and one
// reply per accepted recipient after DATA with that recipient's status.
func TestPipelinedMixedStatuses(t *testing.T) {
	h := &recorder{
		rcpt: map[string]Reply{"nobody@example.com": {"5.1.1", `unknown user: "nobody@example.com"`},
			"x@example.net":   {"5.1.2", `domain "example.net" is not a virtual mailbox domain`},
			"cfg@example.com": {"4.3.5", "mail system configuration error"}},
		data: map[string]Reply{"busy@example.com": {"4.2.0", "delivery failed to mailbox: unable to lock for exclusive access: Resource temporarily unavailable"},
			"full@example.com": {"5.2.2", "delivery failed to mailbox: error writing message: File too large"}},
	}
	in := crlf("LHLO client\nXFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP\nXFORWARD HELO=spike.porcupine.org IDENT=4ABCD12 SOURCE=REMOTE\n" +
		"MAIL FROM:<s@example.org> SIZE=40 BODY=8BITMIME RET=HDRS ENVID=QQ+2B\n" +
		"RCPT TO:<alice@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+2Bx@example.com\n" +
		"RCPT TO:<nobody@example.com>\nRCPT TO:<x@example.net>\nRCPT TO:<cfg@example.com>\n" +
		"RCPT TO:<busy@example.com>\nRCPT TO:<full@example.com> NOTIFY=NEVER\n" +
		"DATA\nSubject: x\n\n..leading dot\n.\nQUIT\n")
	got := runSession(t, h, Config{MaxSize: 1000000}, in)
	want := "220 test LMTP vdeliver\n" + lhloReply + "250 2.0.0 Ok\n250 2.0.0 Ok\n250 2.1.0 Ok\n250 2.1.5 Ok\n" +
		"550 5.1.1 unknown user: \"nobody@example.com\"\n550 5.1.2 domain \"example.net\" is not a virtual mailbox domain\n" +
		"451 4.3.5 mail system configuration error\n250 2.1.5 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n" +
		"250 2.0.0 delivered to maildir\n" +
		"450 4.2.0 delivery failed to mailbox: unable to lock for exclusive access: Resource temporarily unavailable\n" +
		"552 5.2.2 delivery failed to mailbox: error writing message: File too large\n221 2.0.0 Bye\n"
	if got != want {
		t.Fatalf("replies:\n%s\nwant:\n%s", got, want)
	}
	tx := h.txs[0]
	if tx.info.QueueID != "4ABCD12" || tx.info.Sender != "s@example.org" || tx.info.Size != 40 {
		t.Errorf("transaction %+v", tx.info)
	}
	wantRcpts := []Rcpt{{"alice@example.com", "Alice+x@example.com"}, {"busy@example.com", ""}, {"full@example.com", ""}}
	if fmt.Sprint(tx.rcpts) != fmt.Sprint(wantRcpts) {
		t.Errorf("recipients %v, want %v", tx.rcpts, wantRcpts)
	}
	if string(tx.msg) != "Subject: x\n\n.leading dot\n" {
		t.Errorf("message %q", tx.msg)
	}
	if !tx.ended {
		t.Error("End not called")
	}
}

// Each DATA line becomes what the pipe mode writes for the same queue record.
func TestDataLines(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\r\r\n", "a\n"},             // record "a\r": pipe(8) "a\r\n", written "a\n"
		{"a\r\r\r\n", "a\r\n"},         // record "a\r\r"
		{"\r\r\r\r\n", "\r\r\n"},       // CRs only
		{"lone\rcr\r\n", "lone\rcr\n"}, // a CR inside a line is data
		{"bare lf\n", "bare lf\n"},     // a client that sends LF alone
		{"..\r\n", ".\n"},              // a stuffed dot line
		{"...x\r\n", "..x\n"},          // only the first dot goes
		{".x\r\n", "x\n"},              // an unstuffed dot (RFC: remove it)
		{"x.\r\n.y\r\n", "x.\ny\n"},    // dots elsewhere
		{"", ""},                       // empty message
		{"From x\r\n", "From x\n"},     // no quoting here: the mbox writer does it
		{"\x00\xff\r\n", "\x00\xff\n"}, // 8-bit and NUL pass
		{"no end\r", "SESSION-LOST"},   // never terminated
	} {
		h := &recorder{}
		in := "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n" + tc.data
		if tc.want != "SESSION-LOST" {
			in += ".\r\n"
		}
		runSession(t, h, Config{}, in)
		got := string(h.txs[0].msg)
		if h.txs[0].rcpts == nil {
			got = "SESSION-LOST"
		}
		if got != tc.want {
			t.Errorf("DATA %q: message %q, want %q", tc.data, got, tc.want)
		}
	}
}

// A line longer than the reader's buffer, with CRs at the buffer's edge, and a message
// larger than MemMax, which is spooled to a file.
func TestLongLinesAndSpool(t *testing.T) {
	for _, n := range []int{64<<10 - 2, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		for _, tail := range []string{"", "\r", "\r\r", "\r\r\r"} {
			line := strings.Repeat("x", n) + tail
			h := &recorder{}
			runSession(t, h, Config{MemMax: 100 << 10}, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n"+line+"\r\n"+line+"\r\n.\r\n")
			want := strings.Repeat("x", n) + strings.Repeat("\r", max(len(tail)-1, 0)) + "\n"
			want += want
			if got := string(h.txs[0].msg); got != want {
				t.Errorf("line of %d + %q: got %d bytes, want %d", n, tail, len(got), len(want))
			}
			if spooled := len(want) > 100<<10; h.txs[0].spool != spooled {
				t.Errorf("line of %d: spooled %v, want %v", n, h.txs[0].spool, spooled)
			}
		}
	}
}

func TestSizeLimit(t *testing.T) {
	h := &recorder{}
	body := strings.Repeat("0123456789\r\n", 10) // 110 bytes as written
	got := runSession(t, h, Config{MaxSize: 100}, "LHLO x\r\nMAIL FROM:<> SIZE=101\r\nMAIL FROM:<> SIZE=100\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"+body+".\r\nNOOP\r\n")
	want := "220 test LMTP vdeliver\n" + strings.Replace(lhloReply, "SIZE 1000000", "SIZE 100", 1) +
		"552 5.3.4 Message size exceeds fixed limit\n250 2.1.0 Ok\n250 2.1.5 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n" +
		"552 5.3.4 Error: message file too big\n552 5.3.4 Error: message file too big\n250 2.0.0 Ok\n"
	if got != want {
		t.Fatalf("replies:\n%s\nwant:\n%s", got, want)
	}
	if h.txs[0].rcpts != nil {
		t.Error("a message over the limit was delivered")
	}
}

// Bad commands get 500/501/503/555 and the session goes on; limits hold.
func TestBadCommands(t *testing.T) {
	h := &recorder{}
	in := crlf("MAIL FROM:<a@b>\nHELO x\nEHLO x\nLHLO\nLHLO x\nRCPT TO:<a@b>\nDATA\nMAIL FROM:a@b\nMAIL FROM:<a@b> FOO=1\n" +
		"MAIL FROM:<a@b> SIZE=x\nMAIL FROM:<a@b>\nMAIL FROM:<a@b>\nRCPT TO:<>\nRCPT TO:<a@b> ORCPT=rfc822;a+zz\nRCPT TO:<a@b> NOTIFY=SOMETIMES\n" +
		"DATA\nDATA x\nVRFY a@b\nXFORWARD IDENT=x\nEXPN x\nSTARTTLS\nBDAT 10 LAST\n\nNOOP\nRSET x\nRSET\nXFORWARD\nXFORWARD FOO=1\n" +
		strings.Repeat("A", DefaultMaxLine) + "\nNOOP\nQUIT\nNOOP\n")
	got := runSession(t, h, Config{}, in)
	want := "220 test LMTP vdeliver\n" +
		"503 5.5.1 Error: send LHLO first\n" +
		"500 5.5.1 Error: this is an LMTP server: use LHLO\n500 5.5.1 Error: this is an LMTP server: use LHLO\n" +
		"501 5.5.4 Syntax: LHLO hostname\n" + strings.Replace(lhloReply, "250-SIZE 1000000", "250-SIZE", 1) +
		"503 5.5.1 Error: need MAIL command\n503 5.5.1 Error: need MAIL command\n" +
		"501 5.5.4 Syntax: MAIL FROM:<address>\n555 5.5.4 Unsupported option: FOO\n501 5.5.4 Bad message size syntax\n" +
		"250 2.1.0 Ok\n503 5.5.1 Error: nested MAIL command\n501 5.1.3 Bad recipient address syntax\n" +
		"501 5.5.4 Error: Bad ORCPT parameter syntax\n501 5.5.4 Error: Bad NOTIFY parameter syntax\n" +
		"503 5.5.1 Error: no valid recipients\n503 5.5.1 Error: no valid recipients\n" +
		"502 5.5.1 VRFY command is disabled\n503 5.5.1 Error: MAIL transaction in progress\n" +
		"500 5.5.2 Error: command not recognized\n500 5.5.2 Error: command not recognized\n500 5.5.2 Error: command not recognized\n" +
		"500 5.5.2 Error: bad syntax\n250 2.0.0 Ok\n501 5.5.4 Syntax: RSET\n250 2.0.0 Ok\n" +
		"501 5.5.4 Syntax: XFORWARD attribute=value...\n501 5.5.4 Bad XFORWARD attribute name: FOO\n" +
		"500 5.5.2 Error: line too long\n250 2.0.0 Ok\n221 2.0.0 Bye\n"
	if got != want {
		t.Fatalf("replies:\n%s\nwant:\n%s", got, want)
	}
}

// LHLO in the middle of a transaction ends it, as RSET does: the recipients given before
// it get nothing, and DATA needs a new MAIL.
func TestLHLOResetsTransaction(t *testing.T) {
	h := &recorder{}
	got := runSession(t, h, Config{}, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nLHLO y\r\nDATA\r\nRCPT TO:<c@d>\r\nQUIT\r\n")
	if !strings.HasSuffix(got, "250 2.1.0 Ok\n250 2.1.5 Ok\n"+strings.Replace(lhloReply, "250-SIZE 1000000", "250-SIZE", 1)+
		"503 5.5.1 Error: need MAIL command\n503 5.5.1 Error: need MAIL command\n221 2.0.0 Bye\n") {
		t.Fatalf("replies:\n%s", got)
	}
	if len(h.txs) != 1 || h.txs[0].msg != nil || !h.txs[0].ended {
		t.Fatalf("transactions: %d; the first delivered %q, ended %v", len(h.txs), h.txs[0].msg, h.txs[0].ended)
	}
}

func TestTooManyErrors(t *testing.T) {
	got := runSession(t, &recorder{}, Config{}, strings.Repeat("garbage\r\n", 30))
	if n := strings.Count(got, "500 5.5.2"); n != maxErrors || !strings.HasSuffix(got, "500 5.5.2 Error: command not recognized\n421 4.7.0 test Error: too many errors\n") {
		t.Fatalf("%d errors before 421:\n%s", n, got)
	}
}

func TestTooManyRecipients(t *testing.T) {
	h := &recorder{}
	got := runSession(t, h, Config{MaxRecipients: 2}, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\nx\r\n.\r\n")
	if !strings.Contains(got, "250 2.1.0 Ok\n250 2.1.5 Ok\n250 2.1.5 Ok\n452 4.5.3 Error: too many recipients\n354") {
		t.Fatalf("replies:\n%s", got)
	}
	if len(h.txs[0].rcpts) != 2 {
		t.Fatalf("delivered to %v", h.txs[0].rcpts)
	}
}

// A panic in the handler is that recipient's 4.3.0, and the session goes on.
func TestHandlerPanics(t *testing.T) {
	h := &recorder{panicAt: "p"}
	got := runSession(t, h, Config{}, crlf("LHLO x\nMAIL FROM:<>\nRCPT TO:<p@rcpt>\nRCPT TO:<p@data>\nRCPT TO:<a@b>\nDATA\nx\n.\nNOOP\n"))
	want := "250 2.1.0 Ok\n451 4.3.0 Error: internal error\n250 2.1.5 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n" +
		"451 4.3.0 Error: internal error\n451 4.3.0 Error: internal error\n250 2.0.0 Ok\n"
	if !strings.HasSuffix(got, want) {
		t.Fatalf("replies:\n%s\nwant suffix:\n%s", got, want)
	}
}

// Replies are written once per group of pipelined commands: the server flushes only when
// it has no more input to read.
func TestPipeliningOneWrite(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	go Serve(context.Background(), c2, &recorder{}, Config{Hostname: "test"})
	br := bufio.NewReader(c1)
	if l, _ := br.ReadString('\n'); l != "220 test LMTP vdeliver\r\n" {
		t.Fatalf("greeting %q", l)
	}
	// net.Pipe is synchronous: each Write of the server is one Read here.
	if _, err := c1.Write([]byte("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c1.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := crlf(lhloReply[:0] + "250-test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-SIZE\n250-DSN\n250-SMTPUTF8\n250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\n" +
		"250 2.1.0 Ok\n250 2.1.5 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n")
	if string(buf[:n]) != want {
		t.Fatalf("first write %q, want %q", buf[:n], want)
	}
}

// The idle timeout ends a session that sends nothing, with 421; the transaction
// deadline ends one that stops in the middle of DATA, and nothing is delivered.
func TestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name, send string
		cfg        Config
	}{
		{"idle", "LHLO x\r\n", Config{IdleTimeout: 100 * time.Millisecond, TxTimeout: time.Hour}},
		{"in DATA", "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\npart of the", Config{IdleTimeout: time.Hour, TxTimeout: 200 * time.Millisecond}},
		{"lifetime", "LHLO x\r\n", Config{IdleTimeout: time.Hour, Lifetime: time.Now().Add(150 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			defer c1.Close()
			h := &recorder{}
			done := make(chan error, 1)
			tc.cfg.Hostname = "test"
			go func() { done <- Serve(context.Background(), c2, h, tc.cfg); c2.Close() }()
			go c1.Write([]byte(tc.send))
			out, _ := io.ReadAll(c1)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return")
			}
			want := "421 4.4.2 test Error: timeout exceeded\r\n"
			if tc.name == "lifetime" {
				want = "421 4.3.2 test Service closing: process lifetime reached\r\n"
			}
			if !strings.HasSuffix(string(out), want) {
				t.Fatalf("output %q, want it to end with %q", out, want)
			}
			for _, tx := range h.txs {
				if tx.rcpts != nil || !tx.ended {
					t.Fatalf("transaction delivered %v, ended %v", tx.rcpts, tx.ended)
				}
			}
		})
	}
}

// A client that goes away in the middle of DATA: nothing is delivered, the
// transaction ends.
func TestDisconnectInData(t *testing.T) {
	h := &recorder{}
	runSession(t, h, Config{}, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n")
	if len(h.txs) != 1 || h.txs[0].rcpts != nil || !h.txs[0].ended {
		t.Fatalf("transactions %+v", h.txs)
	}
}

// slowData is a handler whose delivery outlasts the transaction deadline.
type slowData struct{ recorder }

func (h *slowData) Begin(ctx context.Context, tx *Tx) Transaction {
	return &slowTx{h.recorder.Begin(ctx, tx).(*recTx)}
}

type slowTx struct{ *recTx }

func (t *slowTx) Data(ctx context.Context, msg *Message, rcpts []Rcpt) []Reply {
	time.Sleep(300 * time.Millisecond)
	return t.recTx.Data(ctx, msg, rcpts)
}

// A delivery that ends after the transaction's deadline still gets its replies out:
// without them the client would retry a message that was delivered.
func TestRepliesAfterSlowDelivery(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	go func() {
		Serve(context.Background(), c2, &slowData{}, Config{Hostname: "test", TxTimeout: 100 * time.Millisecond})
		c2.Close()
	}()
	// No QUIT after the message: the client waits for the replies, as Postfix does.
	go c1.Write([]byte("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\nx\r\n.\r\n"))
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	br := bufio.NewReader(c1)
	for !bytes.HasSuffix(out, []byte("250 2.0.0 delivered to maildir\r\n")) {
		l, err := br.ReadBytes('\n')
		out = append(out, l...)
		if err != nil {
			break
		}
	}
	if !strings.HasSuffix(string(out), "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 delivered to maildir\r\n") {
		t.Fatalf("output %q", out)
	}
}

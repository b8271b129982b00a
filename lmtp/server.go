package lmtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Config holds a server's limits. The zero value of a field means its default.
type Config struct {
	Hostname string // in the greeting and the LHLO reply; default "localhost"
	MaxSize  int64  // the largest message accepted (SIZE); 0: no limit
	// MaxSizeFunc, when set, is asked for MaxSize at every LHLO and transaction, so
	// that a long-lived server follows a configuration that changes.
	MaxSizeFunc   func() int64
	MaxRecipients int           // per transaction; default 1000
	MaxLine       int           // a command line, CRLF included; default 4096
	IdleTimeout   time.Duration // the wait for a command outside a transaction; default 100s
	TxTimeout     time.Duration // a whole transaction, MAIL to the last reply; default 250s
	SpoolDir      string        // where a large message is spooled; default os.TempDir()
	MemMax        int           // messages up to this size stay in memory; default 256 KiB
	// Lifetime ends the session at the first point between transactions after it has
	// passed; zero: never.
	Lifetime time.Time
	// Log receives one line per protocol event worth a log line (timeouts, a client
	// gone in the middle of DATA); nil: none.
	Log func(string)
}

// Defaults.
const (
	DefaultMaxRecipients = 1000
	DefaultMaxLine       = 4096
	DefaultIdleTimeout   = 100 * time.Second
	DefaultTxTimeout     = 250 * time.Second
	DefaultMemMax        = 256 << 10
	maxErrors            = 20 // consecutive bad commands before the session ends (smtpd_hard_error_limit)
)

func (c *Config) withDefaults() Config {
	d := *c
	if d.Hostname == "" {
		d.Hostname = "localhost"
	}
	if d.MaxRecipients <= 0 {
		d.MaxRecipients = DefaultMaxRecipients
	}
	if d.MaxLine <= 0 {
		d.MaxLine = DefaultMaxLine
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = DefaultIdleTimeout
	}
	if d.TxTimeout <= 0 {
		d.TxTimeout = DefaultTxTimeout
	}
	if d.MemMax <= 0 {
		d.MemMax = DefaultMemMax
	}
	if d.Log == nil {
		d.Log = func(string) {}
	}
	return d
}

// Reply is a handler's answer about one recipient: an RFC 3463 enhanced status code
// ("2.0.0", "4.3.5", "5.1.1"...) and a one-line text. The server chooses the reply code.
type Reply struct {
	Code string
	Text string
}

// Rcpt is one recipient of a transaction.
type Rcpt struct {
	Addr  string // internal form: quotes around the localpart removed
	ORCPT string // the original recipient from ORCPT=rfc822;..., internal form; "" when not given
}

// Tx is what the client has said about the transaction so far.
type Tx struct {
	Sender  string // "" is the null sender
	QueueID string // XFORWARD IDENT: the client's queue id; "" when not sent
	Size    int64  // MAIL FROM's SIZE=, 0 when not given
}

// Handler starts transactions.
type Handler interface {
	// Begin is called at MAIL FROM; the Transaction answers its recipients and message.
	Begin(ctx context.Context, tx *Tx) Transaction
}

// Transaction is one mail transaction.
type Transaction interface {
	// Recipient is asked at RCPT TO; a reply other than 2.x.x rejects the recipient.
	Recipient(ctx context.Context, r Rcpt) Reply
	// Data delivers the message to the accepted recipients and returns one reply for
	// each, in order.
	Data(ctx context.Context, msg *Message, rcpts []Rcpt) []Reply
	// End releases the transaction; called once, whatever happened.
	End()
}

// Conn is the session's stream: standard input and output under spawn(8), an accepted
// socket with --listen. Deadlines are set when the stream has them (an *os.File on a
// socket or pipe in non-blocking mode does).
type Conn interface {
	io.Reader
	io.Writer
}

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Serve runs one LMTP session on conn until QUIT, the end of input, a timeout or a
// failed write. It returns nil after QUIT or a clean end of input between transactions.
// No panic escapes it: a panic in a handler is that recipient's 4.3.0.
func Serve(ctx context.Context, conn Conn, h Handler, cfg Config) (err error) {
	c := cfg.withDefaults()
	s := &session{
		cfg:  c,
		h:    h,
		r:    conn,
		br:   bufio.NewReaderSize(conn, 64<<10),
		bw:   bufio.NewWriterSize(conn, 4<<10),
		ctx:  ctx,
		dl:   nil,
		xfwd: map[string]string{},
	}
	if d, ok := conn.(deadliner); ok {
		s.dl = d
	}
	defer func() {
		if p := recover(); p != nil {
			c.Log(fmt.Sprintf("panic in LMTP session: %v\n%s", p, debug.Stack()))
			s.farewell(421, "4.3.0", c.Hostname+" Error: internal error")
			err = fmt.Errorf("panic: %v", p)
		}
		s.endTx()
	}()
	return s.run()
}

type session struct {
	cfg    Config
	h      Handler
	r      io.Reader
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	dl     deadliner
	lhlo   bool
	xfwd   map[string]string // XFORWARD attributes for the next transaction
	tx     *txState
	errors int
	dlSet  time.Time // the deadline last set
	dlTx   bool      // dlSet is a transaction's
}

type txState struct {
	info     Tx
	t        Transaction
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
	rcpts    []Rcpt
}

var errTimeout = errors.New("timeout")

func (s *session) run() error {
	s.reply(220, "", s.cfg.Hostname+" LMTP vdeliver")
	for {
		if s.tx == nil && !s.cfg.Lifetime.IsZero() && time.Now().After(s.cfg.Lifetime) {
			return s.farewell(421, "4.3.2", s.cfg.Hostname+" Service closing: process lifetime reached")
		}
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && s.tx == nil {
				return nil
			}
			if isTimeout(err) {
				s.cfg.Log(s.label() + "timeout after " + s.stateName() + " from client")
				s.farewell(421, "4.4.2", s.cfg.Hostname+" Error: timeout exceeded")
				return errTimeout
			}
			if s.tx != nil {
				s.cfg.Log(s.label() + "lost connection after " + s.stateName() + " from client")
			}
			return err
		}
		if line == nil {
			// Longer than MaxLine: the rest was skipped.
			if s.bad(500, "5.5.2", "Error: line too long") {
				return s.bw.Flush()
			}
			continue
		}
		quit, err := s.command(string(line))
		if err != nil || quit {
			if ferr := s.bw.Flush(); err == nil {
				err = ferr
			}
			return err
		}
		if s.errors >= maxErrors {
			s.reply(421, "4.7.0", s.cfg.Hostname+" Error: too many errors")
			return s.bw.Flush()
		}
	}
}

func (s *session) maxSize() int64 {
	if s.cfg.MaxSizeFunc != nil {
		return s.cfg.MaxSizeFunc()
	}
	return s.cfg.MaxSize
}

// farewell writes a last reply, with a write deadline of its own: the session's may
// be what just expired.
func (s *session) farewell(code int, enh, text string) error {
	if s.dl != nil {
		s.dl.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	s.reply(code, enh, text)
	return s.bw.Flush()
}

func (s *session) label() string {
	if s.tx != nil && s.tx.info.QueueID != "" {
		return s.tx.info.QueueID + ": "
	}
	return "NOQUEUE: "
}

func (s *session) stateName() string {
	if s.tx != nil {
		return "MAIL"
	}
	return "idle"
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// setReadDeadline gives the next read the transaction's deadline inside a transaction,
// and outside one the idle timeout (cut short by the lifetime), renewed when the session
// is about to wait (blocking) or has just left a transaction. Writes get the same
// deadline: a client that stops reading is a client that stopped.
func (s *session) setReadDeadline(blocking bool) {
	if s.dl == nil {
		return
	}
	var d time.Time
	if s.tx != nil {
		d = s.tx.deadline
	} else {
		if !blocking && !s.dlTx {
			return
		}
		d = time.Now().Add(s.cfg.IdleTimeout)
		if !s.cfg.Lifetime.IsZero() && s.cfg.Lifetime.Before(d) {
			d = s.cfg.Lifetime
		}
	}
	if d.Equal(s.dlSet) {
		return
	}
	s.dlSet, s.dlTx = d, s.tx != nil
	s.dl.SetReadDeadline(d)
	s.dl.SetWriteDeadline(d)
}

// fill flushes the replies before the session would wait for input, so that a pipelined
// group of commands gets its replies in one write and a lone command gets its reply
// before the client waits.
func (s *session) fill() error {
	n := s.br.Buffered()
	buf, _ := s.br.Peek(n)
	blocking := bytes.IndexByte(buf, '\n') < 0
	if blocking {
		if err := s.bw.Flush(); err != nil {
			return err
		}
	}
	s.setReadDeadline(blocking)
	return nil
}

// readLine returns one command line without its CRLF (or bare LF), or nil when the line
// was longer than MaxLine (its rest is read and dropped).
func (s *session) readLine() ([]byte, error) {
	var long bool
	var buf []byte
	for {
		if err := s.fill(); err != nil {
			return nil, err
		}
		frag, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = true
			continue
		}
		if err != nil {
			if err == io.EOF && (len(frag) > 0 || long) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if long || len(buf)+len(frag) > s.cfg.MaxLine {
			return nil, nil
		}
		buf = append(buf, frag...)
		buf = buf[:len(buf)-1]
		if n := len(buf); n > 0 && buf[n-1] == '\r' {
			buf = buf[:n-1]
		}
		return buf, nil
	}
}

// reply writes one reply line; code is the basic reply code, enh the enhanced status
// code ("" for none), text the rest, with control characters made harmless.
func (s *session) reply(code int, enh, text string) {
	s.bw.WriteString(strconv.Itoa(code))
	s.bw.WriteByte(' ')
	if enh != "" {
		s.bw.WriteString(enh)
		s.bw.WriteByte(' ')
	}
	s.bw.WriteString(printable(text))
	s.bw.WriteString("\r\n")
}

// printable keeps a reply on one line: control characters become '_'.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// bad answers a command that was refused for its syntax or sequence and counts it;
// it reports whether the session has had too many.
func (s *session) bad(code int, enh, text string) bool {
	s.reply(code, enh, text)
	s.errors++
	return s.errors >= maxErrors
}

func (s *session) ok(code int, enh, text string) {
	s.errors = 0
	s.reply(code, enh, text)
}

// command runs one command line; quit is true after QUIT.
func (s *session) command(line string) (quit bool, err error) {
	cmd := parseCommand(line)
	switch cmd.verb {
	case "LHLO":
		if cmd.arg == "" {
			s.bad(501, "5.5.4", "Syntax: LHLO hostname")
			return false, nil
		}
		s.endTx()
		s.lhlo = true
		s.xfwd = map[string]string{}
		s.errors = 0
		lines := []string{s.cfg.Hostname, "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"}
		if max := s.maxSize(); max > 0 {
			lines = append(lines, "SIZE "+strconv.FormatInt(max, 10))
		} else {
			lines = append(lines, "SIZE")
		}
		lines = append(lines, "DSN", "SMTPUTF8", "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			s.bw.WriteString("250" + sep + l + "\r\n")
		}
	case "HELO", "EHLO":
		s.bad(500, "5.5.1", "Error: this is an LMTP server: use LHLO")
	case "MAIL":
		s.mail(cmd.arg)
	case "RCPT":
		s.rcpt(cmd.arg)
	case "DATA":
		return false, s.data(cmd.arg)
	case "RSET":
		if cmd.arg != "" {
			s.bad(501, "5.5.4", "Syntax: RSET")
			return false, nil
		}
		s.endTx()
		s.xfwd = map[string]string{}
		s.ok(250, "2.0.0", "Ok")
	case "NOOP":
		s.ok(250, "2.0.0", "Ok")
	case "QUIT":
		s.endTx()
		s.reply(221, "2.0.0", "Bye")
		return true, nil
	case "VRFY":
		s.bad(502, "5.5.1", "VRFY command is disabled")
	case "XFORWARD":
		s.xforward(cmd.arg)
	case "":
		s.bad(500, "5.5.2", "Error: bad syntax")
	default:
		s.bad(500, "5.5.2", "Error: command not recognized")
	}
	return false, nil
}

func (s *session) mail(arg string) {
	switch {
	case !s.lhlo:
		s.bad(503, "5.5.1", "Error: send LHLO first")
		return
	case s.tx != nil:
		s.bad(503, "5.5.1", "Error: nested MAIL command")
		return
	}
	p, err := parsePath(arg, "FROM:")
	if err != nil {
		s.bad(501, "5.5.4", "Syntax: MAIL FROM:<address>")
		return
	}
	info := Tx{Sender: p.addr, QueueID: s.xfwd["IDENT"]}
	for _, pr := range p.params {
		switch pr.name {
		case "SIZE":
			n, err := strconv.ParseInt(pr.value, 10, 64)
			if err != nil || n < 0 {
				s.bad(501, "5.5.4", "Bad message size syntax")
				return
			}
			if max := s.maxSize(); max > 0 && n > max {
				s.bad(552, "5.3.4", "Message size exceeds fixed limit")
				return
			}
			info.Size = n
		case "BODY":
			if v := strings.ToUpper(pr.value); v != "7BIT" && v != "8BITMIME" {
				s.bad(501, "5.5.4", "Unsupported BODY parameter value")
				return
			}
		case "RET":
			if v := strings.ToUpper(pr.value); v != "FULL" && v != "HDRS" {
				s.bad(501, "5.5.4", "Bad RET parameter syntax")
				return
			}
		case "ENVID":
			if _, err := decodeXtext(pr.value); err != nil || pr.value == "" {
				s.bad(501, "5.5.4", "Bad ENVID parameter syntax")
				return
			}
		case "SMTPUTF8":
			if pr.hasValue {
				s.bad(501, "5.5.4", "Bad SMTPUTF8 parameter syntax")
				return
			}
		case "AUTH":
			// Ignored, as RFC 4954 allows from a client that is not trusted.
		default:
			s.bad(555, "5.5.4", "Unsupported option: "+pr.name)
			return
		}
	}
	tx := &txState{info: info, deadline: time.Now().Add(s.cfg.TxTimeout)}
	tx.ctx, tx.cancel = context.WithDeadline(s.ctx, tx.deadline)
	s.tx = tx
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Log(fmt.Sprintf("%spanic starting a transaction: %v\n%s", s.label(), p, debug.Stack()))
				tx.t = nil
			}
		}()
		tx.t = s.h.Begin(tx.ctx, &tx.info)
	}()
	if tx.t == nil {
		s.endTx()
		s.bad(451, "4.3.0", "Error: internal error")
		return
	}
	s.ok(250, "2.1.0", "Ok")
}

func (s *session) rcpt(arg string) {
	if s.tx == nil {
		s.bad(503, "5.5.1", "Error: need MAIL command")
		return
	}
	p, err := parsePath(arg, "TO:")
	if err != nil {
		s.bad(501, "5.5.4", "Syntax: RCPT TO:<address>")
		return
	}
	if p.addr == "" {
		s.bad(501, "5.1.3", "Bad recipient address syntax")
		return
	}
	r := Rcpt{Addr: p.addr}
	for _, pr := range p.params {
		switch pr.name {
		case "NOTIFY":
			if !validNotify(pr.value) {
				s.bad(501, "5.5.4", "Error: Bad NOTIFY parameter syntax")
				return
			}
		case "ORCPT":
			o, err := parseORCPT(pr.value)
			if err != nil {
				s.bad(501, "5.5.4", "Error: Bad ORCPT parameter syntax")
				return
			}
			r.ORCPT = o
		default:
			s.bad(555, "5.5.4", "Unsupported option: "+pr.name)
			return
		}
	}
	if len(s.tx.rcpts) >= s.cfg.MaxRecipients {
		s.reply(452, "4.5.3", "Error: too many recipients")
		return
	}
	rep := s.askRecipient(r)
	if !validCode(rep.Code) {
		rep = Reply{Code: "4.3.0", Text: "Error: internal error"}
	}
	if rep.Code[0] == '2' {
		s.tx.rcpts = append(s.tx.rcpts, r)
		s.ok(250, rep.Code, rep.Text)
		return
	}
	s.errors = 0
	s.reply(replyCode(rep.Code, false), rep.Code, rep.Text)
}

func (s *session) askRecipient(r Rcpt) (rep Reply) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log(fmt.Sprintf("%spanic at RCPT <%s>: %v\n%s", s.label(), r.Addr, p, debug.Stack()))
			rep = Reply{Code: "4.3.0", Text: "Error: internal error"}
		}
	}()
	return s.tx.t.Recipient(s.tx.ctx, r)
}

func validNotify(v string) bool {
	v = strings.ToUpper(v)
	if v == "NEVER" {
		return true
	}
	if v == "" {
		return false
	}
	for _, w := range strings.Split(v, ",") {
		if w != "SUCCESS" && w != "FAILURE" && w != "DELAY" {
			return false
		}
	}
	return true
}

// validCode checks an enhanced status code's shape: class 2, 4 or 5, then two numbers.
func validCode(c string) bool {
	cls, rest, ok := strings.Cut(c, ".")
	if !ok || (cls != "2" && cls != "4" && cls != "5") {
		return false
	}
	a, b, ok := strings.Cut(rest, ".")
	return ok && isNum(a, 3) && isNum(b, 3)
}

func isNum(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// replyCode is the basic reply code for an enhanced status, as Postfix's smtpd pairs
// them: 250; 452 for a full mailbox (RFC 5321's "insufficient system storage", as
// Dovecot's LMTP answers a deferred over-quota) and too many recipients, 450 for a busy
// mailbox and 451 for other temporary errors; 550 for a bad address, 552 for size and
// quota, 554 otherwise after DATA (550 at RCPT).
func replyCode(enh string, afterData bool) int {
	switch {
	case enh[0] == '2':
		return 250
	case enh == "4.2.2", enh == "4.5.3":
		return 452
	case strings.HasPrefix(enh, "4.2."):
		return 450
	case enh[0] == '4':
		return 451
	case strings.HasPrefix(enh, "5.1."):
		return 550
	case enh == "5.2.2" || enh == "5.3.4":
		return 552
	case afterData:
		return 554
	}
	return 550
}

func (s *session) data(arg string) error {
	switch {
	case s.tx == nil:
		s.bad(503, "5.5.1", "Error: need MAIL command")
		return nil
	case len(s.tx.rcpts) == 0:
		s.bad(503, "5.5.1", "Error: no valid recipients")
		return nil
	case arg != "":
		s.bad(501, "5.5.4", "Syntax: DATA")
		return nil
	}
	s.reply(354, "", "End data with <CR><LF>.<CR><LF>")
	sp := &spool{dir: s.cfg.SpoolDir, memMax: s.cfg.MemMax, limit: s.maxSize()}
	if n := s.tx.info.Size; n > 0 && n <= int64(s.cfg.MemMax) {
		sp.msg.mem = make([]byte, 0, n)
	}
	if err := s.readData(sp); err != nil {
		sp.discard()
		if isTimeout(err) {
			s.cfg.Log(s.label() + "timeout after DATA from client: nothing delivered")
			s.farewell(421, "4.4.2", s.cfg.Hostname+" Error: timeout exceeded")
			return errTimeout
		}
		s.cfg.Log(s.label() + "lost connection after DATA from client: nothing delivered")
		return err
	}
	msg, err := sp.finish()
	rcpts := s.tx.rcpts
	var reps []Reply
	switch {
	case errors.Is(err, errTooLarge):
		for range rcpts {
			reps = append(reps, Reply{Code: "5.3.4", Text: "Error: message file too big"})
		}
	case err != nil:
		s.cfg.Log(fmt.Sprintf("%scannot spool the message: %v", s.label(), err))
		for range rcpts {
			reps = append(reps, Reply{Code: "4.3.0", Text: "Error: cannot spool the message"})
		}
	default:
		reps = s.deliver(msg, rcpts)
		msg.close()
	}
	if s.dl != nil {
		// The delivery may have run up to the transaction's deadline: the replies
		// must still go out, or the client retries what was delivered.
		s.dl.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		s.dlSet = time.Time{}
	}
	for i := range rcpts {
		rep := Reply{Code: "4.3.0", Text: "Error: internal error"}
		if i < len(reps) && validCode(reps[i].Code) {
			rep = reps[i]
		}
		s.reply(replyCode(rep.Code, true), rep.Code, rep.Text)
	}
	s.errors = 0
	s.endTx()
	return nil
}

func (s *session) deliver(msg *Message, rcpts []Rcpt) (reps []Reply) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log(fmt.Sprintf("%spanic in delivery: %v\n%s", s.label(), p, debug.Stack()))
			reps = nil
		}
	}()
	return s.tx.t.Data(s.tx.ctx, msg, rcpts)
}

// readData reads the message up to the line ".", undoing the dot-stuffing, and writes
// it to the spool as the delivery agent writes it: each line ending in LF. What pipe(8)
// gives the pipe mode for the same queue file is the line and LF, and the pipe mode then
// turns CRLF into LF (deliver.Normalize); Postfix's lmtp client sends the line and CRLF.
// So a line's CRLF becomes LF and one CR more before it is dropped too: a queue record
// "x\r" arrives here as "x\r\r\n" and through pipe(8) as "x\r\n", and both modes
// write "x\n".
func (s *session) readData(sp *spool) error {
	bol := true // at the beginning of a line
	held := 0   // CRs (at most two) that ended the last fragment, written once the line goes on
	for {
		if err := s.fill(); err != nil {
			return err
		}
		frag, err := s.br.ReadSlice('\n')
		complete := err == nil
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if bol && len(frag) > 0 && frag[0] == '.' {
			if complete && (len(frag) == 2 || len(frag) == 3 && frag[1] == '\r') {
				return nil
			}
			frag = frag[1:]
		}
		if complete {
			frag = frag[:len(frag)-1]
		}
		t := 0 // CRs at the end of the line so far
		for t < len(frag) && frag[len(frag)-1-t] == '\r' {
			t++
		}
		if t == len(frag) {
			t += held
		} else {
			writeCRs(sp, held)
			sp.write(frag[:len(frag)-t])
		}
		writeCRs(sp, t-2)
		held = min(t, 2)
		if complete {
			sp.write(nl)
			held = 0
		}
		bol = complete
	}
}

func writeCRs(sp *spool, n int) {
	for n > 0 {
		k := min(n, len(crs))
		sp.write(crs[:k])
		n -= k
	}
}

var (
	crs = []byte("\r\r\r\r\r\r\r\r")
	nl  = []byte("\n")
)

func (s *session) xforward(arg string) {
	switch {
	case !s.lhlo:
		s.bad(503, "5.5.1", "Error: send LHLO first")
		return
	case s.tx != nil:
		s.bad(503, "5.5.1", "Error: MAIL transaction in progress")
		return
	case arg == "":
		s.bad(501, "5.5.4", "Syntax: XFORWARD attribute=value...")
		return
	}
	attrs := map[string]string{}
	for _, f := range strings.Fields(arg) {
		name, value, ok := strings.Cut(f, "=")
		name = strings.ToUpper(name)
		switch name {
		case "NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE":
		default:
			s.bad(501, "5.5.4", "Bad XFORWARD attribute name: "+name)
			return
		}
		if !ok {
			s.bad(501, "5.5.4", "Bad XFORWARD attribute syntax")
			return
		}
		v, err := decodeXtext(value)
		if err != nil || len(v) > 255 {
			s.bad(501, "5.5.4", "Bad XFORWARD attribute value")
			return
		}
		attrs[name] = v
	}
	for k, v := range attrs {
		if v == "[UNAVAILABLE]" || v == "[TEMPUNAVAIL]" {
			v = ""
		}
		s.xfwd[k] = v
	}
	s.ok(250, "2.0.0", "Ok")
}

// endTx ends the current transaction, if any: the handler's End, the XFORWARD
// attributes (which last one transaction), the deadline.
func (s *session) endTx() {
	if s.tx == nil {
		return
	}
	tx := s.tx
	s.tx = nil
	s.xfwd = map[string]string{}
	tx.cancel()
	if tx.t != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					s.cfg.Log(fmt.Sprintf("panic ending a transaction: %v", p))
				}
			}()
			tx.t.End()
		}()
	}
}

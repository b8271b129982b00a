package cli

// vdeliver lmtp: the resident LMTP mode (README "LMTP mode", docs/vdeliver.8).
//
// One process serves one LMTP session on standard input and output, as spawn(8) runs
// it, or many sessions in parallel on a socket (--listen). main.cf and the tables are
// opened once and shared by the transactions; before each transaction the files they
// came from are checked (stat), and when one has changed, a new configuration is loaded
// whole and used from that transaction on, while a transaction already running keeps
// the one it started with. A transaction never sees a half-reloaded configuration.
//
// Identity: the process delivers only as itself, as the pipe mode does without the
// setuid bit: a recipient whose looked-up uid/gid is not the process's own gets 4.3.5 at
// RCPT. It refuses to start as root: a long-lived process serving many recipients would
// have to switch identity per recipient and back, and a failed switch back would leave
// it writing as root or as the previous recipient. A setuid-root install drops to the
// caller before this code runs (internal/setuid), so spawn(8) with user=vmail runs it as vmail.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/internal/maillog"
	"vdeliver/internal/resources"
	"vdeliver/internal/rootonly"
	"vdeliver/lmtp"
	"vdeliver/maincf"
)

func init() { commands = append(commands, lmtpCommand) }

// lmtpOptions is the command line of vdeliver lmtp.
type lmtpOptions struct {
	configDir   string
	overrides   []string
	logFile     string
	listen      string
	allowRemote bool
	socketMode  uint
	maxConns    int
	maxRcpts    int
	idleTimeout time.Duration
	txTimeout   time.Duration
	lifetime    time.Duration
	spoolDir    string
	hostname    string
}

// lmtpCommand: vdeliver lmtp [options]. Exit 0 after a session (or, with --listen, a
// signal), 1 when it cannot start; never 2.
func lmtpCommand(cio *cmdIO) *cli.Command {
	return &cli.Command{
		Name:      "lmtp",
		Usage:     "deliver as a resident LMTP server: on standard input and output (spawn(8)), or on a socket",
		UsageText: "vdeliver lmtp [-c config_dir] [-o name=value]... [--listen unix:PATH|tcp:ADDR:PORT] [options]",
		Description: `The same delivery as a resident LMTP server (RFC 2033): one status per recipient,
unknown users refused at RCPT, main.cf and the tables opened once and reloaded between
transactions when they change. master.cf:
  vdeliver-lmtp unix - n n - - spawn user=vmail argv=/usr/local/bin/vdeliver lmtp
main.cf:
  virtual_transport = lmtp:unix:private/vdeliver-lmtp
Exit status: 0 after a session, 1 when it cannot start.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "directory with main.cf (default $MAIL_CONFIG, else /etc/postfix)"},
			&cli.StringSliceFlag{Name: "o", Usage: "override a main.cf parameter: name=value (repeatable)"},
			&cli.StringFlag{Name: "log-file", Usage: "append log lines to this file when no syslog socket exists"},
			&cli.StringFlag{Name: "listen", Usage: "serve on a socket instead of standard input: unix:PATH or tcp:ADDR:PORT"},
			&cli.BoolFlag{Name: "allow-remote", Usage: "allow --listen on a TCP address that is not loopback"},
			&cli.StringFlag{Name: "socket-mode", Value: "0660", Usage: "permissions of a --listen unix socket, in octal"},
			&cli.IntFlag{Name: "max-connections", Value: 20, Usage: "sessions served in parallel with --listen"},
			&cli.IntFlag{Name: "max-recipients", Value: lmtp.DefaultMaxRecipients, Usage: "recipients per transaction"},
			&cli.DurationFlag{Name: "idle-timeout", Value: lmtp.DefaultIdleTimeout, Usage: "wait for the client's next command outside a transaction"},
			&cli.DurationFlag{Name: "transaction-timeout", Value: lmtp.DefaultTxTimeout, Usage: "a whole transaction, MAIL to the last reply (below Postfix's lmtp_*_timeout)"},
			&cli.DurationFlag{Name: "lifetime", Usage: "end the session between transactions after this long (default: half the time limit of main.cf, below spawn(8)'s)"},
			&cli.StringFlag{Name: "spool-dir", Usage: "directory for the unnamed spool file of a large message (default $TMPDIR, else /tmp)"},
			&cli.StringFlag{Name: "hostname", Usage: "name in the greeting (default: the host name)"},
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return lmtpUsageError(c, cio, err)
		},
		Action: func(c *cli.Context) error {
			o, err := lmtpOptionsOf(c)
			if err != nil {
				return lmtpUsageError(c, cio, err)
			}
			cio.code = runLMTP(c.Context, o, cio.stdin, cio.stdout, cio.stderr, cio.getenv)
			return nil
		},
	}
}

// lmtpUsageError: under spawn(8) standard output is the client's connection, so a reply
// it understands (the mail waits) goes first, the explanation after it; exit 1.
func lmtpUsageError(c *cli.Context, cio *cmdIO, err error) error {
	fmt.Fprintf(cio.stdout, "421 4.3.5 %s Error: command line usage error\r\n", hostnameOr(""))
	usageError(c, err)
	return cli.Exit("", 1)
}

// lmtpOptionsOf checks the command line; all of the subcommand's option checks are here.
func lmtpOptionsOf(c *cli.Context) (*lmtpOptions, error) {
	if c.Args().Len() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	o := &lmtpOptions{
		configDir: c.String("c"), overrides: c.StringSlice("o"), logFile: c.String("log-file"),
		listen: c.String("listen"), allowRemote: c.Bool("allow-remote"),
		maxConns: c.Int("max-connections"), maxRcpts: c.Int("max-recipients"),
		idleTimeout: c.Duration("idle-timeout"), txTimeout: c.Duration("transaction-timeout"),
		lifetime: c.Duration("lifetime"), spoolDir: c.String("spool-dir"), hostname: c.String("hostname"),
	}
	mode, err := strconv.ParseUint(c.String("socket-mode"), 8, 32)
	if err != nil || mode > 0o777 {
		return nil, fmt.Errorf("--socket-mode %q: want an octal mode up to 0777", c.String("socket-mode"))
	}
	o.socketMode = uint(mode)
	if o.maxConns < 1 || o.maxRcpts < 1 || o.idleTimeout <= 0 || o.txTimeout <= 0 || o.lifetime < 0 {
		return nil, errors.New("limits and timeouts must be positive")
	}
	return o, nil
}

// runLMTP serves with the options of the command line.
func runLMTP(ctx context.Context, o *lmtpOptions, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	// The garbage collector works to the delivery's memory limit (internal/resources), unless
	// the environment set one.
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(resources.MemoryLimit)
	}
	// The log goes where a delivery's goes: the postlog socket when main.cf sets
	// maillog_file (main.cf is read again, whole, for every transaction below).
	cf, _ := loadConfig(o.configDir, o.overrides, getenv)
	logger := maillog.Open(o.logFile, getenv("VDELIVER_SYSLOG_SOCKET"), maillog.PostlogSocket(cf))
	defer logger.Close()
	if cf != nil {
		// Relative table names are read in $queue_directory, as by a delivery.
		if err := enterQueueDirectory(cf); err != nil {
			logger.Printf("warning: lmtp: %v: relative table names resolve in the current directory", err)
		}
	}
	if os.Geteuid() == 0 {
		// Under spawn(8) the client reads this as a deferral; by hand it is a clear error.
		err := errors.New("refusing to run as root: run it as the mailboxes' owner (spawn(8) user=vmail)")
		logger.Printf("fatal: lmtp: %v", err)
		if o.listen == "" {
			fmt.Fprintf(stdout, "421 4.3.5 %s Error: mail system configuration error\r\n", hostnameOr(o.hostname))
		}
		fmt.Fprintf(stderr, "vdeliver lmtp: %v\n", err)
		return 1
	}
	cfg := &lmtpConfig{dir: configDirectory(o.configDir, getenv), overrides: o.overrides, logger: logger}
	cfg.reload()
	srv := lmtp.Config{
		Hostname:      hostnameOr(o.hostname),
		MaxSizeFunc:   cfg.maxSize,
		MaxRecipients: o.maxRcpts,
		IdleTimeout:   o.idleTimeout,
		TxTimeout:     o.txTimeout,
		SpoolDir:      o.spoolDir,
		Log:           logger.Line,
	}
	lifetime := o.lifetime
	if lifetime == 0 {
		lifetime = cfg.timeLimit() / 2
	}
	h := &lmtpHandler{cfg: cfg, logger: logger, getenv: getenv}
	if o.listen == "" {
		if lifetime > 0 {
			srv.Lifetime = time.Now().Add(lifetime)
		}
		conn, closeConn := stdioConn(stdin, stdout)
		defer closeConn()
		lmtp.Serve(ctx, conn, h, srv)
		return 0
	}
	return serveListen(ctx, o, srv, lifetime, h, stderr, logger)
}

func hostnameOr(h string) string {
	if h != "" {
		return h
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// lmtpConfig is the configuration the transactions share: the Settings loaded last,
// the files they were loaded from with their status then, and how many transactions
// still use each Settings.
type lmtpConfig struct {
	dir       string
	overrides []string
	logger    *maillog.Logger

	mu     sync.Mutex
	cur    *loaded
	stamps []fileStamp
	// unsettled: a file changed less than settleTime before it was read, so a second
	// change could share its time stamps; reload at every transaction until that passes.
	unsettled time.Time
}

// settleTime is longer than any file system's time stamp granularity (the kernel's
// coarse clock ticks every few milliseconds; some file systems keep seconds).
const settleTime = 2 * time.Second

// loaded is one whole configuration: Settings, or the status every recipient gets when
// it could not be loaded.
type loaded struct {
	s     *deliver.Settings
	st    *deliver.Status
	cf    *maincf.Config
	users int  // transactions using it
	old   bool // replaced: closed when the last user ends
	// stampsAt are the files' status when it was loaded.
	stampsAt []fileStamp
}

// acquire returns the configuration for a new transaction, loading a new one first when
// a file it came from has changed.
func (c *lmtpConfig) acquire() *loaded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || time.Now().Before(c.unsettled) || !sameStamps(c.stamps, stampFiles(c.cur.cf, c.dir)) {
		c.reloadLocked()
	}
	c.cur.users++
	return c.cur
}

func (c *lmtpConfig) release(l *loaded) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l.users--
	if l.old && l.users == 0 && l.s != nil {
		l.s.Close()
	}
}

func (c *lmtpConfig) reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reloadLocked()
}

func (c *lmtpConfig) reloadLocked() {
	// The status of the files is taken before they are read: a change during the load
	// shows at the next check and loads again.
	var cf *maincf.Config
	now := time.Now()
	stamps := stampFiles(nil, c.dir)
	l := &loaded{}
	cf, err := loadConfig(c.dir, c.overrides, func(string) string { return "" })
	if err == nil {
		stamps = stampFiles(cf, c.dir)
		for _, w := range cf.Warnings() {
			c.logger.Printf("warning: %s", w)
		}
		l.cf = cf
		l.s, l.st = deliver.Load(cf, func(w string) { c.logger.Printf("warning: %s", w) })
	} else {
		l.st = deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error")
	}
	if l.st != nil {
		c.logger.Printf("warning: lmtp: configuration not loaded: %v", l.st.Err)
	}
	if old := c.cur; old != nil {
		old.old = true
		if old.users == 0 && old.s != nil {
			old.s.Close()
		}
		if !sameStamps(old.stampsAt, stamps) {
			c.logger.Printf("lmtp: configuration in %s changed: reloaded", c.dir)
		}
	}
	l.stampsAt = stamps
	c.cur, c.stamps = l, stamps
	c.unsettled = time.Time{}
	for _, st := range stamps {
		if changed := time.Unix(0, max(st.mtimeNs, st.ctimeNs)); st.exists && changed.After(now.Add(-settleTime)) {
			c.unsettled = changed.Add(settleTime)
		}
	}
}

// maxSize is what LHLO announces as SIZE and the largest message taken:
// message_size_limit of the configuration loaded last, as Postfix's own servers, and
// never more than the pipe mode takes (resources.MaxMessage, 5.3.4 beyond), also when
// message_size_limit is 0 (no limit): a delivery holds the message in memory.
func (c *lmtpConfig) maxSize() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.cf == nil {
		return resources.MaxMessage
	}
	n, err := c.cur.cf.Int("message_size_limit")
	if err != nil || n <= 0 || n > resources.MaxMessage {
		return resources.MaxMessage
	}
	return n
}

func (c *lmtpConfig) timeLimit() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.s == nil {
		return 0
	}
	return c.cur.s.TimeLimit
}

// fileStamp is what tells that a file changed: its identity, size and times, or its
// absence.
type fileStamp struct {
	path                   string
	exists                 bool
	dev, ino               uint64
	size, mtimeNs, ctimeNs int64
}

// tableParams are the parameters whose tables a delivery opens.
var tableParams = []string{"virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps", "virtual_mailbox_domains", "mydestination", "vdeliver_quota_maps"}

// stampFiles stats main.cf and every file the tables of cf are read from, as the
// setuid checks list them (internal/rootonly): each table's name and compiled forms
// (.db, .cdb, .lmdb), with relative names in the working directory ($queue_directory, as
// a delivery reads them), the tables inside union: and pipemap:, "/file" list elements
// and what they list in turn, and the directories the tables live in (a file renamed
// into place changes its directory). The list is made anew at every check, so a file
// that appears or goes away changes it too.
func stampFiles(cf *maincf.Config, dir string) []fileStamp {
	paths := []string{dir + "/main.cf"}
	if cf != nil {
		for _, p := range tableParams {
			v, err := cf.Get(p)
			if err != nil {
				continue
			}
			for _, it := range rootonly.ListFiles(v) {
				paths = append(paths, it.File)
			}
		}
	}
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		out[i].path = p
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			out[i] = fileStamp{path: p, exists: true, dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
				mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano()}
		}
	}
	return out
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lmtpHandler joins the LMTP server to deliver: a transaction holds one configuration.
type lmtpHandler struct {
	cfg    *lmtpConfig
	logger *maillog.Logger
	getenv func(string) string
}

func (h *lmtpHandler) Begin(ctx context.Context, tx *lmtp.Tx) lmtp.Transaction {
	return &lmtpTx{h: h, info: tx, conf: h.cfg.acquire(), start: time.Now()}
}

type lmtpTx struct {
	h     *lmtpHandler
	info  *lmtp.Tx
	conf  *loaded
	start time.Time
}

func (t *lmtpTx) envelope(r lmtp.Rcpt) deliver.Envelope {
	return deliver.Envelope{Sender: t.info.Sender, OrigRcpt: r.ORCPT, QueueID: t.info.QueueID, Recipient: r.Addr}
}

func reply(st *deliver.Status) lmtp.Reply {
	return lmtp.Reply{Code: st.Code, Text: strings.TrimPrefix(st.Line(), st.Code+" ")}
}

// Recipient rejects at RCPT what the delivery would refuse before writing, with the
// same status, and logs it as the delivery would.
func (t *lmtpTx) Recipient(ctx context.Context, r lmtp.Rcpt) lmtp.Reply {
	env := t.envelope(r)
	st := t.conf.st
	if st == nil {
		st = t.conf.s.Accept(ctx, env)
	}
	if st == nil {
		return lmtp.Reply{Code: "2.1.5", Text: "Ok"}
	}
	t.h.logger.Line(deliver.LogLine(env, st, time.Since(t.start), 0))
	return reply(st)
}

// Data delivers through the pipe mode's own Run, one status per recipient.
func (t *lmtpTx) Data(ctx context.Context, msg *lmtp.Message, rcpts []lmtp.Rcpt) []lmtp.Reply {
	envs := make([]deliver.Envelope, len(rcpts))
	for i, r := range rcpts {
		envs[i] = t.envelope(r)
	}
	out := make([]lmtp.Reply, len(rcpts))
	if t.conf.st != nil {
		for i := range out {
			out[i] = reply(t.conf.st)
		}
		return out
	}
	raw, err := messageBytes(msg)
	if err != nil {
		st := deliver.Deferf(deliver.CodeSystem, err, "error reading message: %s", err)
		for i := range out {
			t.h.logger.Line(deliver.LogLine(envs[i], st, time.Since(t.start), int(msg.Size())))
			out[i] = reply(st)
		}
		return out
	}
	sts := t.conf.s.RunEnvelopes(ctx, envs, raw, deliver.Options{Log: t.h.logger.Line, PerRecipient: true, Getenv: t.h.getenv})
	for i, st := range sts {
		out[i] = reply(st)
	}
	if msg.File() != nil {
		// A large message's buffers are garbage now: collect them and give the memory
		// back before the next transaction, so the process's peak is one message, not
		// several waiting for the collector (a 10 MB message into a Maildir: 17.6 MB
		// peak alone, 28.6 MB for three in a row without this).
		raw = nil
		debug.FreeOSMemory()
	}
	return out
}

func (t *lmtpTx) End() { t.h.cfg.release(t.conf) }

// messageBytes is the message in one buffer of its exact size.
func messageBytes(msg *lmtp.Message) ([]byte, error) {
	if b := msg.Bytes(); b != nil || msg.File() == nil {
		return b, nil
	}
	b := make([]byte, msg.Size())
	if _, err := msg.File().ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// fileConn is a session on two descriptors (standard input and output), both in
// non-blocking mode so that the runtime's poller gives reads and writes deadlines.
type fileConn struct {
	r, w *os.File
}

func (c fileConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c fileConn) Write(b []byte) (int, error)        { return c.w.Write(b) }
func (c fileConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c fileConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

// stdioConn makes the session's stream from stdin and stdout. When they are files (as
// under spawn(8): the socket), each is duplicated and the copy set non-blocking, so the
// timeouts work and os.Stdin and os.Stdout are left as they were. Anything else (a test
// calling run in-process) is used as it is, without deadlines.
func stdioConn(stdin io.Reader, stdout io.Writer) (lmtp.Conn, func()) {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if ok1 && ok2 {
		r, err1 := dupNonblock(in)
		w, err2 := dupNonblock(out)
		if err1 == nil && err2 == nil {
			return fileConn{r: r, w: w}, func() { r.Close(); w.Close() }
		}
		if r != nil {
			r.Close()
		}
		if w != nil {
			w.Close()
		}
	}
	return struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, func() {}
}

func dupNonblock(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = syscall.Dup(int(fd))
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	syscall.CloseOnExec(nfd)
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// serveListen accepts sessions on o.listen until ctx ends. There is no signal handler:
// SIGTERM ends the process at once, which every delivery survives as it survives
// SIGKILL (nothing or the whole message, and the client, without a reply, retries);
// the next start replaces the socket left behind. os/signal would cost every pipe-mode
// start-up page faults for nothing.
func serveListen(ctx context.Context, o *lmtpOptions, srv lmtp.Config, lifetime time.Duration, h *lmtpHandler, stderr io.Writer, logger *maillog.Logger) int {
	ln, err := listen(o.listen, o.allowRemote, os.FileMode(o.socketMode))
	if err != nil {
		fmt.Fprintf(stderr, "vdeliver lmtp: %v\n", err)
		logger.Printf("fatal: lmtp: %v", err)
		return 1
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	slots := make(chan struct{}, o.maxConns)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			logger.Printf("warning: lmtp: accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(conn, "421 4.3.2 %s Error: too many connections\r\n", srv.Hostname)
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer conn.Close()
			c := srv
			if lifetime > 0 {
				c.Lifetime = time.Now().Add(lifetime)
			}
			lmtp.Serve(ctx, conn, h, c)
		}()
	}
	wg.Wait()
	return 0
}

// listener accepts connections on a socket made with the system calls themselves: the
// net package's initialisation would cost every pipe-mode delivery its start-up time
// (bench/mda/README.md), and a socket is all this needs.
type listener struct {
	f      *os.File
	unlink string
}

func (l *listener) Close() error {
	if l.unlink != "" {
		os.Remove(l.unlink)
		l.unlink = ""
	}
	return l.f.Close()
}

// Accept waits (in the runtime's poller) for the next connection and returns it as a
// non-blocking *os.File, which has deadlines.
func (l *listener) Accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		return aerr != syscall.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return os.NewFile(uintptr(nfd), "lmtp-connection"), nil
}

// listen opens unix:PATH (mode perm, a stale socket at PATH replaced, anything else
// there refused) or tcp:ADDR:PORT (an IP address; one that is not loopback only with
// allowRemote).
func listen(spec string, allowRemote bool, perm os.FileMode) (*listener, error) {
	kind, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("--listen %q: want unix:PATH or tcp:ADDR:PORT", spec)
	}
	var fd int
	var sa syscall.Sockaddr
	var err error
	switch kind {
	case "unix":
		if err := removeStaleSocket(addr); err != nil {
			return nil, err
		}
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("socket: %w", err)
		}
		// Created owner-only, widened to perm once bound: never more open than asked.
		old := syscall.Umask(0o177)
		err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: addr})
		syscall.Umask(old)
		if err == nil {
			err = os.Chmod(addr, perm)
		}
	case "tcp":
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return nil, fmt.Errorf("--listen %q: want tcp:IP:PORT (an IP address, not a name): %v", spec, perr)
		}
		ip := ap.Addr().Unmap()
		if !ip.IsLoopback() && !allowRemote {
			return nil, fmt.Errorf("--listen %q: %s is not a loopback address; anyone who can reach it could deliver mail to every mailbox: add --allow-remote if that is meant (and firewall it)", spec, ip)
		}
		family := syscall.AF_INET6
		if ip.Is4() {
			family = syscall.AF_INET
			sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
		} else {
			sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		}
		fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("socket: %w", err)
		}
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		err = syscall.Bind(fd, sa)
	default:
		return nil, fmt.Errorf("--listen %q: want unix:PATH or tcp:ADDR:PORT", spec)
	}
	if err == nil {
		err = syscall.Listen(fd, 128)
	}
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("--listen %s: %w", spec, err)
	}
	l := &listener{f: os.NewFile(uintptr(fd), spec)}
	if kind == "unix" {
		l.unlink = addr
	}
	return l, nil
}

// removeStaleSocket removes a socket left at path by a process that is gone (nothing
// accepts on it); a live socket or any other file is an error.
func removeStaleSocket(path string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return fmt.Errorf("--listen unix:%s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return fmt.Errorf("--listen unix:%s: exists and is not a socket", path)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err == nil {
		return fmt.Errorf("--listen unix:%s: another server is listening there", path)
	}
	return os.Remove(path)
}

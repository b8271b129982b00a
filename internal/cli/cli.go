// Package cli is vdeliver's command line: the delivery as pipe(8) runs it, and the
// administrator's subcommands (commands.go, cmd_*.go). See README.md and docs/vdeliver.8.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/internal/rawfile"
	"vdeliver/internal/setuid"
	"vdeliver/maincf"
)

// version is the build's version (main.go sets it from -ldflags "-X main.version=...").
var version = ""

// Main is the command: it runs with the process's arguments, streams and environment,
// and exits with the status.
func Main(buildVersion string) {
	version = buildVersion
	chdir = os.Chdir
	if !routesToAdmin(os.Args, setuid.Startup().Active) {
		guardRuntime(setuid.Startup().Active)
	}
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

const usageText = `vdeliver [-c config_dir] [-o name=value]... [-f sender] [-a original_recipient] [-i queue_id] [--] recipient...

   Reads one message on standard input and delivers it to each recipient's virtual
   mailbox (Maildir when the virtual_mailbox_maps result ends in "/", else mbox), using
   Postfix's main.cf and lookup tables. Prints one status line "X.Y.Z text" and exits
   0 (delivered), 75 (deferred) or another sysexits(3) value (bounced).

   master.cf:
     vdeliver unix - n n - - pipe flags=X null_sender= user=vmail
       argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}
   main.cf:
     virtual_transport = vdeliver
     vdeliver_destination_recipient_limit = 1   (one exit status per recipient)`

// run is main without process globals: arguments, streams and environment come in, the
// exit status goes out, so tests can call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	// The last line of defence: a panic must defer (75), never exit 2 (which bounces).
	defer func() {
		if p := recover(); p != nil {
			st := deliver.Deferf(deliver.CodeSystem, fmt.Errorf("panic: %v\n%s", p, debug.Stack()), "internal error")
			fmt.Fprintln(stdout, st.Line())
			code = st.Exit
		}
	}()
	// Subcommands are recognised only as the first argument, so no recipient (which always
	// follows options and "--" when Postfix runs us) can ever be taken for one
	// (commands.go). A setuid-root run that kept its privileges (its first argument is an
	// option: internal/setuid) is a delivery, never a completion request.
	if routesToAdmin(args, setuid.Startup().Active) {
		return runAdmin(ctx, args, stdin, stdout, stderr, getenv)
	}
	return runDeliver(ctx, args, stdin, stdout, getenv)
}

// delivery holds what the command line says about one delivery run.
type delivery struct {
	configDir   string
	overrides   []string
	sender      string
	origRcpt    string
	queueID     string
	logFile     string
	noLoopCheck bool
	recipients  []string
	// Alias expansion and fan-out (deliver/alias.go).
	expandAliases  bool
	forwardCommand string
	stateDir       string
	// cf is main.cf as the setuid policy read it, when the delivery uses that very
	// directory: read once, not again by deliverAll.
	cf *maincf.Config
}

// deliveryFlags are the delivery command's options, bound to d; the shell completion
// (cmd_completion.go) lists them from here too.
func deliveryFlags(d *delivery) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "c", Aliases: []string{"config-directory"}, Usage: "directory with main.cf (default $MAIL_CONFIG, else /etc/postfix)", Destination: &d.configDir},
		&cli.StringSliceFlag{Name: "o", Usage: "override a main.cf parameter: name=value (repeatable)"},
		&cli.StringFlag{Name: "f", Aliases: []string{"sender"}, Usage: "envelope sender; empty for the null sender", Destination: &d.sender},
		&cli.StringFlag{Name: "a", Aliases: []string{"original-recipient"}, Usage: "original recipient, written as X-Original-To", Destination: &d.origRcpt},
		&cli.StringFlag{Name: "i", Aliases: []string{"queue-id"}, Usage: "queue id, for the log", Destination: &d.queueID},
		&cli.StringFlag{Name: "log-file", Usage: "append log lines to this file when no log socket can be reached (neither postlog, with maillog_file set, nor syslog)", Destination: &d.logFile},
		&cli.BoolFlag{Name: "no-loop-check", Usage: "deliver even when the message already carries Delivered-To: <recipient>", Destination: &d.noLoopCheck},
		&cli.BoolFlag{Name: "expand-aliases", Usage: "expand virtual_alias_maps first (only when the MTA has not: Postfix's cleanup(8) already did)", Destination: &d.expandAliases},
		&cli.StringFlag{Name: "forward-command", Value: "/usr/sbin/sendmail -i", Usage: "sendmail-compatible command for alias results outside virtual_mailbox_domains; \"-f SENDER -- ADDRESS\" is appended", Destination: &d.forwardCommand},
		&cli.StringFlag{Name: "state-dir", Value: "/var/lib/vdeliver", Usage: "directory, owned by the delivering user, for the journal that keeps a retry from delivering twice (\"\" = none)", Destination: &d.stateDir},
		&cli.BoolFlag{Name: "version", Usage: "print the version and exit"},
	}
}

func runDeliver(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) int {
	var d delivery
	var usage error
	helpShown := false
	app := &cli.App{
		Name:                      "vdeliver",
		Usage:                     "deliver a message into a virtual mailbox (Postfix virtual(8) as a pipe(8) command)",
		UsageText:                 usageText,
		HideVersion:               true,
		HideHelpCommand:           true,
		Compiled:                  time.Unix(0, 0), // never shown; set, Setup does not stat the executable
		DisableSliceFlagSeparator: true,
		Writer:                    stdout,
		ErrWriter:                 io.Discard,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			usage = err
			return err
		},
		Flags: deliveryFlags(&d),
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				fmt.Fprintln(stdout, "vdeliver", versionString())
				helpShown = true
				return nil
			}
			d.overrides = c.StringSlice("o")
			d.recipients = c.Args().Slice()
			return nil
		},
	}
	// urfave/cli prints help itself for -h/--help; note it so we answer 0 and deliver nothing.
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			helpShown = true
		}
	}
	if helpShown {
		// Built only for the help: a delivery does not pay for it.
		app.CustomAppHelpTemplate = cli.AppHelpTemplate + commandsHelp()
	}
	err := app.RunContext(ctx, args)
	if helpShown && usage == nil && err == nil {
		return 0
	}
	// From here on we answer an MTA: read the whole message before any answer, so no early
	// exit can look like a delivery and the MTA never sees a broken pipe.
	msg, readErr := readMessage(stdin)
	st := func() *deliver.Status {
		if usage != nil || err != nil {
			return deliver.Deferf(deliver.CodeConfig, errors.Join(usage, err), "command line usage error: %s", firstLine(errors.Join(usage, err)))
		}
		if len(d.recipients) == 0 {
			return deliver.Deferf(deliver.CodeConfig, nil, "command line usage error: no recipient")
		}
		if !dashDashBefore(args, d.recipients) {
			for _, r := range d.recipients {
				if strings.HasPrefix(r, "-") {
					return deliver.Deferf(deliver.CodeConfig, nil, "command line usage error: options must come before the recipients; put -- before them")
				}
			}
		}
		if resourceErr != nil {
			return deliver.Deferf(deliver.CodeSystem, resourceErr, "insufficient system resources")
		}
		if errors.Is(readErr, rawfile.ErrTooLarge) {
			return deliver.Bouncef(deliver.CodeTooBig, readErr, "message too big for system")
		}
		if readErr != nil {
			return deliver.Deferf(deliver.CodeSystem, readErr, "error reading message: %s", readErr)
		}
		return nil
	}()
	// Installed setuid-root: the caller chooses neither the configuration nor the log file.
	req := setuid.Request{ConfigDir: d.configDir, LogFile: d.logFile}
	st = setuid.Startup().Policy(args, &req, st)
	d.configDir, d.logFile, d.cf = req.ConfigDir, req.LogFile, req.Config
	// main.cf is read before the log is opened: maillog_file decides where the log goes.
	var cf *maincf.Config
	var cfErr error
	if st == nil {
		cf, cfErr = d.config(getenv)
	}
	logger := openLog(d.logFile, getenv("VDELIVER_SYSLOG_SOCKET"), postlogSocket(cf))
	defer logger.close()
	start := time.Now()
	logged := false
	if st == nil {
		st, logged = deliverAll(ctx, d, cf, cfErr, msg, getenv, logger)
	}
	if !logged {
		// A run that ended before any delivery still gets its one line per recipient, so
		// log tools see every recipient's outcome.
		env := deliver.Envelope{Sender: d.sender, OrigRcpt: d.origRcpt, QueueID: d.queueID}
		rcpts := d.recipients
		if len(rcpts) == 0 {
			rcpts = []string{""}
		}
		for _, r := range rcpts {
			env.Recipient = r
			logger.line(deliver.LogLine(env, st, time.Since(start), len(msg)))
		}
	}
	fmt.Fprintln(stdout, st.Line())
	return st.Exit
}

// config is main.cf as the delivery reads it: as the setuid policy read it, or from the
// configuration directory, with the -o overrides.
func (d *delivery) config(getenv func(string) string) (*maincf.Config, error) {
	if d.cf != nil {
		return d.cf, applyOverrides(d.cf, d.overrides)
	}
	return loadConfig(d.configDir, d.overrides, getenv)
}

// deliverAll runs the delivery with main.cf (cf, or the error reading it); logged says
// whether Run has already written the per-recipient log lines.
func deliverAll(ctx context.Context, d delivery, cf *maincf.Config, err error, msg []byte, getenv func(string) string, logger *logger) (*deliver.Status, bool) {
	if err != nil {
		return deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error"), false
	}
	for _, w := range cf.Warnings() {
		logger.printf("warning: %s", w)
	}
	if d.stateDir != "" {
		if d.stateDir, err = filepath.Abs(d.stateDir); err != nil {
			return deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error"), false
		}
	}
	if err := enterQueueDirectory(cf); err != nil {
		if setuid.Startup().Active {
			return deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error"), false
		}
		logger.printf("warning: %v: relative table names resolve in the current directory", err)
	}
	if st := setuid.Startup().CheckDelivery(cf); st != nil {
		return st, false
	}
	s, st := deliver.Load(cf, func(w string) { logger.printf("warning: %s", w) })
	if st != nil {
		return st, false
	}
	defer s.Close()
	// Our own deadline stays well below pipe(8)'s time limit: running out there bounces,
	// running out here defers.
	if limit := s.TimeLimit / 2; limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	env := deliver.Envelope{Sender: d.sender, OrigRcpt: d.origRcpt, QueueID: d.queueID}
	all := s.Run(ctx, env, d.recipients, msg, deliver.Options{NoLoopCheck: d.noLoopCheck, Log: logger.line,
		ExpandAliases: d.expandAliases, ForwardCommand: strings.Fields(d.forwardCommand), StateDir: d.stateDir, Getenv: getenv})
	return deliver.Worst(all), true
}

// chdir is os.Chdir in the command (Main sets it). Tests that call run in-process leave
// it nil: their process keeps its working directory.
var chdir func(string) error

// enterQueueDirectory makes $queue_directory the working directory, where pipe(8) starts
// its commands and Postfix's daemons run, so that a relative table name ("texthash:uids")
// means the same file whoever runs vdeliver and from wherever. For a setuid-root run a
// failure refuses the delivery: the caller's own directory would choose the tables.
func enterQueueDirectory(cf *maincf.Config) error {
	if chdir == nil {
		return nil
	}
	dir, err := cf.Get("queue_directory")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("queue_directory = %s is not an absolute path", dir)
	}
	if err := chdir(dir); err != nil {
		return fmt.Errorf("queue_directory: %w", err)
	}
	return nil
}

// firstRead is the buffer for a message of unknown size: a pipe's capacity, so that most
// messages arrive in one buffer and a few reads.
const firstRead = 64 << 10

// MaxMessage is the largest message vdeliver holds (in memory, as a whole: the mbox
// record is built and written at once). The sender's message must not decide how much
// memory is asked for: a refused allocation ends a Go program with exit status 2, which
// pipe(8) bounces with no reason given. A larger message bounces 5.3.4 "message too big
// for system", a decision and not a crash; Postfix's message_size_limit (10 MB by
// default) stops such mail long before.
const maxMessage = 512 << 20

// readMessage reads all of r, the message: in one buffer of its size from a file, from a
// pipe (as pipe(8) gives it) first into firstRead bytes. A message over maxMessage is
// read to its end all the same, so that the MTA never sees a broken pipe, and is an
// error wrapping rawfile.ErrTooLarge.
func readMessage(r io.Reader) ([]byte, error) {
	msg, err := rawfile.ReadAll(r, firstRead, maxMessage)
	if errors.Is(err, rawfile.ErrTooLarge) {
		if f, ok := r.(*os.File); ok {
			if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
				return nil, err // a file has no writer waiting
			}
		}
		io.Copy(io.Discard, r)
		return nil, err
	}
	return msg, err
}

// dashDashBefore reports whether "--" appears in args before the recipients, which makes a
// recipient starting with "-" an address rather than a mistyped option.
func dashDashBefore(args, rcpts []string) bool {
	if len(rcpts) == 0 {
		return false
	}
	n := len(args) - len(rcpts)
	return n > 0 && args[n-1] == "--"
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// logger writes each line to one place: the postlog socket when main.cf sets
// maillog_file (as Postfix's own programs do), else the syslog socket, else --log-file,
// else nowhere; never to stderr, which pipe(8) would show the sender. Each line has the
// severity Postfix would give it (lineSeverity), and the ident is "vdeliver" with the
// pid: not "postfix/vdeliver", because pipe(8) already logs every delivery under
// postfix/pipe, and log summarisers (pflogsumm) would count each message twice.
type logger struct {
	mu      sync.Mutex
	sys     *os.File // the syslog or postlog socket
	stream  bool     // sys is a stream socket: each message ends in a newline
	postlog bool     // sys is Postfix's postlog socket: postlogd's format
	host    string   // for the postlog format
	file    *os.File
}

// syslogSockets are where syslog(3) (and log/syslog) look for the local syslog daemon.
var syslogSockets = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// Syslog facility mail and the severities Postfix logs with.
const (
	facilityMail = 2 << 3
	sevError     = 3
	sevWarning   = 4
	sevInfo      = 6
	sevCrit      = 2 // Postfix's fatal
)

// syslogTimeout bounds each write to the syslog socket: a syslog daemon that does not
// read must not hold the delivery until pipe(8)'s time limit bounces it.
const syslogTimeout = time.Second

// postlogSocket is Postfix's postlog socket when main.cf sets maillog_file:
// $queue_directory/public/$postlog_service_name, where postlogd(8) listens; "" otherwise.
func postlogSocket(cf *maincf.Config) string {
	if cf == nil {
		return ""
	}
	if v, err := cf.Get("maillog_file"); err != nil || strings.TrimSpace(v) == "" {
		return ""
	}
	q, err := cf.Get("queue_directory")
	if err != nil || q == "" {
		return ""
	}
	name := "postlog"
	if cf.IsSet("postlog_service_name") {
		if v, err := cf.Get("postlog_service_name"); err == nil && v != "" {
			name = v
		}
	}
	return filepath.Join(q, "public", name)
}

// openLog opens the log: the postlog socket (when not empty), else the syslog socket
// (socket, when not empty, instead of the usual places: $VDELIVER_SYSLOG_SOCKET, for a
// chroot or a test), else the --log-file. None working is not an error: logging never
// changes what the MTA is told (vdeliver check reports a delivery without a log).
func openLog(file, socket, postlog string) *logger {
	l := &logger{}
	if postlog != "" {
		if f, _, ok := dialSyslog(postlog); ok {
			l.sys, l.postlog = f, true
			l.host, _ = os.Hostname()
			l.host, _, _ = strings.Cut(l.host, ".")
			return l
		}
	}
	paths := syslogSockets
	if socket != "" {
		paths = []string{socket}
	}
	for _, p := range paths {
		if f, stream, ok := dialSyslog(p); ok {
			l.sys, l.stream = f, stream
			return l
		}
	}
	if file != "" {
		if f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			l.file = f
		}
	}
	return l
}

// dialSyslog connects to the syslog socket at path, datagram first and stream only when
// the socket is of the other type (EPROTOTYPE), as syslog(3) does: a path that is missing
// or refused fails the same way for both types, so one attempt tells.
//
// The connect does not wait: a stream syslogd whose listen backlog is full answers
// EAGAIN at once, and the delivery goes on unlogged, as it did through net.Dial. The
// socket is then a plain blocking descriptor with a send timeout, not a net.Conn: the net
// package's initialisation and its poller cost every delivery process start-up time
// (bench/mda/README.md, "Where the time goes") and a delivery needs no network.
func dialSyslog(path string) (f *os.File, stream bool, ok bool) {
	addr := &syscall.SockaddrUnix{Name: path}
	tv := syscall.NsecToTimeval(syslogTimeout.Nanoseconds())
	for _, typ := range []int{syscall.SOCK_DGRAM, syscall.SOCK_STREAM} {
		fd, err := syscall.Socket(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			return nil, false, false
		}
		for {
			if err = syscall.Connect(fd, addr); err != syscall.EINTR {
				break
			}
		}
		if err == nil {
			err = syscall.SetNonblock(fd, false)
		}
		if err == nil {
			err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
		}
		if err == nil {
			return os.NewFile(uintptr(fd), path), typ == syscall.SOCK_STREAM, true
		}
		syscall.Close(fd)
		if err != syscall.EPROTOTYPE {
			return nil, false, false
		}
	}
	return nil, false, false
}

// lineSeverity is the syslog severity of a log line, from the word Postfix puts before
// the text of every line that is not informational ("warning: ", "error: ", "fatal: "),
// at the start or after the queue id ("8DeF4: warning: ...").
func lineSeverity(s string) int {
	rest := s
	for range 2 {
		switch {
		case strings.HasPrefix(rest, "warning: "):
			return sevWarning
		case strings.HasPrefix(rest, "error: "):
			return sevError
		case strings.HasPrefix(rest, "fatal: "), strings.HasPrefix(rest, "panic: "):
			return sevCrit
		}
		id, after, ok := strings.Cut(rest, ": ")
		if !ok || strings.ContainsAny(id, " =<") {
			break
		}
		rest = after
	}
	return sevInfo
}

func (l *logger) line(s string) {
	// One record per line: a queue id or address with a newline must not forge log lines.
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.postlog:
		// msg_logger's format, which postlogd(8) expects: "Mmm dd hh:mm:ss host
		// TAG[PID]: MSG", one datagram per line.
		msg := fmt.Sprintf("%s %s vdeliver[%d]: %s", time.Now().Format("Jan 02 15:04:05"), l.host, os.Getpid(), s)
		l.sys.Write([]byte(msg))
	case l.sys != nil:
		// syslog(3)'s local format, as log/syslog writes it: "<PRI>Mmm dd hh:mm:ss
		// TAG[PID]: MSG". A syslog daemon that does not read must not hold the delivery
		// until pipe(8)'s time limit bounces it.
		msg := fmt.Sprintf("<%d>%s vdeliver[%d]: %s", facilityMail|lineSeverity(s), time.Now().Format(time.Stamp), os.Getpid(), s)
		if l.stream {
			msg += "\n"
		}
		// One write per record (one datagram); the send timeout set at connect bounds it.
		l.sys.Write([]byte(msg))
	case l.file != nil:
		fmt.Fprintf(l.file, "%s vdeliver[%d]: %s\n", time.Now().Format(time.StampMicro), os.Getpid(), s)
	}
}

func (l *logger) printf(format string, args ...any) { l.line(fmt.Sprintf(format, args...)) }

func (l *logger) close() {
	if l.sys != nil {
		l.sys.Close()
	}
	if l.file != nil {
		l.file.Close()
	}
}

// Package maillog is vdeliver's log client: it writes each log line where Postfix's own
// programs would, to postlogd(8) when main.cf sets maillog_file, else to the syslog
// socket, else to --log-file, with the severity Postfix gives the line.
package maillog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"vdeliver/maincf"
)

// Logger writes each line to one place: the postlog socket when main.cf sets
// maillog_file (as Postfix's own programs do), else the syslog socket, else --log-file,
// else nowhere; never to stderr, which pipe(8) would show the sender. Each line has the
// severity Postfix would give it (lineSeverity), and the ident is "vdeliver" with the
// pid: not "postfix/vdeliver", because pipe(8) already logs every delivery under
// postfix/pipe, and log summarisers (pflogsumm) would count each message twice.
type Logger struct {
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

// SyslogTimeout bounds each write to the syslog socket: a syslog daemon that does not
// read must not hold the delivery until pipe(8)'s time limit bounces it.
const SyslogTimeout = time.Second

// PostlogSocket is Postfix's postlog socket when main.cf sets maillog_file:
// $queue_directory/public/$postlog_service_name, where postlogd(8) listens; "" otherwise.
func PostlogSocket(cf *maincf.Config) string {
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

// Open opens the log: the postlog socket (when not empty), else the syslog socket
// (socket, when not empty, instead of the usual places: $VDELIVER_SYSLOG_SOCKET, for a
// chroot or a test), else the --log-file. None working is not an error: logging never
// changes what the MTA is told (vdeliver check reports a delivery without a log).
func Open(file, socket, postlog string) *Logger {
	l := &Logger{}
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
	tv := syscall.NsecToTimeval(SyslogTimeout.Nanoseconds())
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

// Line logs one line (with no newline), control characters replaced by "_".
func (l *Logger) Line(s string) {
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

// Printf logs one line made with fmt.Sprintf.
func (l *Logger) Printf(format string, args ...any) { l.Line(fmt.Sprintf(format, args...)) }

// Close closes the socket or the file.
func (l *Logger) Close() {
	if l.sys != nil {
		l.sys.Close()
	}
	if l.file != nil {
		l.file.Close()
	}
}

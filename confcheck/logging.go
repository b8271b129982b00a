package confcheck

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// syslogSockets are where the delivery looks for the syslog daemon (internal/maillog).
var syslogSockets = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// logDestination: a delivery logs to the postlog socket when maillog_file is set, else to
// syslog, else to --log-file (README "Command line"). When none of them works, every log
// line, deferrals and bounces included, is lost without a word. Reported when master.cf
// has the entry that runs vdeliver, whose argv tells whether --log-file is given.
func (c *checker) logDestination() {
	sockets := syslogSockets
	if c.syslogSocket != "" {
		sockets = []string{c.syslogSocket}
	}
	syslogOK := false
	for _, s := range sockets {
		if canConnect(s) == nil {
			syslogOK = true
			break
		}
	}
	file, line := c.where("maillog_file")
	if mf := strings.TrimSpace(c.get("maillog_file")); mf != "" {
		name := "postlog"
		if c.cf.IsSet("postlog_service_name") {
			name = c.get("postlog_service_name")
		}
		p := filepath.Join(c.get("queue_directory"), "public", name)
		err := canConnect(p)
		if err == nil && c.pipeUser != nil && !c.setuid {
			// check may run as root; the delivery runs as master.cf's user=, and
			// Postfix keeps public/ for group postdrop (mode 2710), which pipe(8) does
			// not give its commands.
			err = canRead(p, c.pipeUser)
			if err != nil {
				to := "goes to syslog instead"
				if !syslogOK {
					to = "is lost unless the vdeliver command has --log-file"
				}
				c.add(file, line, Warning, "postlog-unreachable",
					fmt.Sprintf("maillog_file = %s, but vdeliver, run as %s, cannot reach postlogd's socket %s (%v): vdeliver's log %s", mf, c.pipeUser.name, p, errText(err), to),
					"install vdeliver set-uid root (make install-setuid), which opens the log as root, or add --log-file to the vdeliver argv, or run a syslog daemon")
				err = nil
			}
		}
		if err == nil {
			return
		}
		to := "goes to syslog instead"
		if !syslogOK {
			to = "is lost unless the vdeliver command has --log-file"
		}
		c.add(file, line, Warning, "postlog-unreachable",
			fmt.Sprintf("maillog_file = %s, but postlogd's socket %s cannot be reached (%v): vdeliver's log %s", mf, p, errText(err), to),
			"add the postlog service to master.cf (postlog unix-dgram n - n - 1 postlogd) and run \"postfix reload\"")
	}
	// Only with the master.cf entry that runs vdeliver is it known whether the command has
	// --log-file; without one (a check of main.cf alone) that is left open.
	if syslogOK || len(c.vdeliverServices()) == 0 || c.masterLogFile() {
		return
	}
	c.add(c.mainFile, 0, Warning, "no-log-destination",
		fmt.Sprintf("no log destination works: no syslog daemon answers at %s, maillog_file is not set (or postlogd does not answer), and no master.cf entry runs vdeliver with --log-file: every delivery's log line is lost", strings.Join(sockets, ", ")),
		"set maillog_file = /var/log/postfix.log and add the postlog service to master.cf (Postfix 3.4 or later), or start a syslog daemon, or add --log-file /var/log/vdeliver.log to the vdeliver argv")
}

// masterLogFile reports whether the master.cf entry that runs vdeliver gives --log-file.
func (c *checker) masterLogFile() bool {
	services := c.vdeliverServices()
	if len(services) == 0 {
		return false
	}
	p, _ := services[0].Pipe()
	for _, w := range p.Argv {
		if w.Text == "--" {
			break
		}
		if w.Text == "--log-file" || strings.HasPrefix(w.Text, "--log-file=") || w.Text == "-log-file" || strings.HasPrefix(w.Text, "-log-file=") {
			return true
		}
	}
	return false
}

// canConnect tries the unix socket at path as syslog(3) does, datagram first and stream
// when the socket is of the other type, and closes it again. The syscall package rather
// than net: every delivery process links this package.
func canConnect(path string) error {
	addr := &syscall.SockaddrUnix{Name: path}
	var err error
	for _, typ := range []int{syscall.SOCK_DGRAM, syscall.SOCK_STREAM} {
		var fd int
		fd, err = syscall.Socket(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			return err
		}
		err = syscall.Connect(fd, addr)
		syscall.Close(fd)
		if err != syscall.EPROTOTYPE {
			return err
		}
	}
	return err
}

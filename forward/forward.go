// Package forward hands one message to the forward command, the way Postfix's pipe(8)
// runs a command: the copy of a message that virtual alias expansion sends to an address
// outside the virtual mailbox domains leaves through it.
//
// The command (Command.Argv, DefaultCommand when empty) gets "-f SENDER -- ADDRESS"
// appended, runs with "/" as working directory, in its own process group, with only
// PATH=/usr/bin:/bin and TZ, LANG and MAIL_CONFIG from the caller's environment
// (pipe(8)'s export_environment). Its stdin is one line "Delivered-To: RECIPIENT"
// followed by the message exactly as given. Its stdout and stderr are kept, the first
// 4096 bytes, for the log. When the context ends, the whole process group is killed.
//
// The package runs the command and says how it ended; what that means for the message
// (delivered, deferred, bounced) is the caller's policy. It never changes identity: the
// caller makes sure the command does not run as root.
package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultCommand is the forward command when Command.Argv is empty.
var DefaultCommand = []string{"/usr/sbin/sendmail", "-i"}

// Command is one run of the forward command. The addresses are in the external (quoted)
// form the command line and the header need; the caller quotes them.
type Command struct {
	Argv      []string            // the command and its first arguments; nil -> DefaultCommand
	Sender    string              // the envelope sender, "<>" for the null sender
	Recipient string              // the address the caller was asked to deliver: the Delivered-To line
	Address   string              // where the copy goes
	Message   []byte              // lines ending in LF, the last one terminated
	Getenv    func(string) string // the caller's environment; nil -> none of it
}

// Result is how the command ended.
type Result struct {
	Args   []string // the command line as run
	Output string   // the first 4096 bytes of its stdout and stderr
	// Err is nil when it exited 0. Otherwise it says why: Exited and Signal tell an
	// exit status and a death by a signal from a command that never started or whose
	// output was still open after the wait delay.
	Err      error
	Exited   bool           // it exited with ExitCode
	ExitCode int            // valid with Exited
	Signal   syscall.Signal // non-zero when a signal ended it
}

// Run runs the forward command for one address and waits for it, at most until ctx
// ends (and then 5 seconds more for its output to close).
func Run(ctx context.Context, c Command) Result {
	argv := c.Argv
	if len(argv) == 0 {
		argv = DefaultCommand
	}
	args := append(append([]string{}, argv[1:]...), "-f", c.Sender, "--", c.Address)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.Dir = "/"
	cmd.Env = Environ(c.Getenv)
	hdr := "Delivered-To: " + c.Recipient + "\n"
	cmd.Stdin = io.MultiReader(strings.NewReader(hdr), bytes.NewReader(c.Message))
	out := &capped{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	// A process group of its own, so the deadline kills whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Args: cmd.Args, Output: out.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = ws.Signal()
		} else {
			r.Exited, r.ExitCode = true, ee.ExitCode()
		}
	}
	return r
}

// Environ is pipe(8)'s environment for a command: PATH forced, the exported names kept.
func Environ(getenv func(string) string) []string {
	env := []string{"PATH=/usr/bin:/bin"}
	if getenv == nil {
		return env
	}
	for _, name := range []string{"TZ", "LANG", "MAIL_CONFIG"} {
		if v := getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }

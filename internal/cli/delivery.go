package cli

// The delivery: the command line pipe(8) runs, one message to its recipients, one status
// line and exit status for the MTA.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/internal/maillog"
	"vdeliver/internal/rawfile"
	"vdeliver/internal/resources"
	"vdeliver/internal/setuid"
	"vdeliver/maincf"
)

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
	logger := maillog.Open(d.logFile, getenv("VDELIVER_SYSLOG_SOCKET"), maillog.PostlogSocket(cf))
	defer logger.Close()
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
			logger.Line(deliver.LogLine(env, st, time.Since(start), len(msg)))
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
func deliverAll(ctx context.Context, d delivery, cf *maincf.Config, err error, msg []byte, getenv func(string) string, logger *maillog.Logger) (*deliver.Status, bool) {
	if err != nil {
		return deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error"), false
	}
	for _, w := range cf.Warnings() {
		logger.Printf("warning: %s", w)
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
		logger.Printf("warning: %v: relative table names resolve in the current directory", err)
	}
	if st := setuid.Startup().CheckDelivery(cf); st != nil {
		return st, false
	}
	s, st := deliver.Load(cf, func(w string) { logger.Printf("warning: %s", w) })
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
	all := s.Run(ctx, env, d.recipients, msg, deliver.Options{NoLoopCheck: d.noLoopCheck, Log: logger.Line,
		ExpandAliases: d.expandAliases, ForwardCommand: strings.Fields(d.forwardCommand), StateDir: d.stateDir, Getenv: getenv})
	return deliver.Worst(all), true
}

// firstRead is the buffer for a message of unknown size: a pipe's capacity, so that most
// messages arrive in one buffer and a few reads.
const firstRead = 64 << 10

// readMessage reads all of r, the message: in one buffer of its size from a file, from a
// pipe (as pipe(8) gives it) first into firstRead bytes. A message over
// resources.MaxMessage is read to its end all the same, so that the MTA never sees a
// broken pipe, and is an error wrapping rawfile.ErrTooLarge.
func readMessage(r io.Reader) ([]byte, error) {
	msg, err := rawfile.ReadAll(r, firstRead, resources.MaxMessage)
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

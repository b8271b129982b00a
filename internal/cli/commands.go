package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// The administrator's subcommands (explain, check, postmap, query, completion...) run on
// urfave/cli, as the delivery does, but in an App of their own: the delivery's App has no
// commands, so no recipient can ever be taken for one. run hands the command line to this
// App only when the first argument is a command's name (or "help"), which is also the rule
// internal/setuid's init drops privileges by: an argument that does not start with "-".
//
// Adding a subcommand is one line in its own file:
//
//	func init() { commands = append(commands, lmtpCommand) }
//
// where lmtpCommand is a func(*cmdIO) *cli.Command; its flags then appear in
// "vdeliver help", "vdeliver help lmtp", the shell completion and the manual page.

// cmdIO is what a subcommand gets besides its flags: the streams and the environment of
// this run, and the exit status it sets.
type cmdIO struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	code   int
}

// commands builds the subcommands, in registration order; the cmd_*.go files append to
// it in init, and it is never changed after.
var commands []func(*cmdIO) *cli.Command

// subcommand is a command with its own argument parsing, registered in subcommands by
// name: it gets its arguments as given (args[0] is its name) and returns its exit status.
// Prefer commands, whose flags the help, the completion and the manual page list.
type subcommand func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int

// subcommands are the commands that parse their own arguments; filled by init functions
// and never changed after.
var subcommands = map[string]subcommand{}

// completionFlag is urfave/cli's request for completions, appended by the shell scripts
// that "vdeliver completion" prints.
const completionFlag = "--generate-bash-completion"

// isAdminCommandLine reports whether args (as run gets them) are for the administrator's
// App: a command name or "help" (or its alias "h") first, or a completion request with no "--" before it.
func isAdminCommandLine(args []string) bool {
	if len(args) < 2 {
		return false
	}
	if args[1] == "help" || args[1] == "h" || isCommandName(args[1]) {
		return true
	}
	if args[len(args)-1] == completionFlag && !slices.Contains(args[1:len(args)-1], "--") {
		return true
	}
	return false
}

// routesToAdmin is run's choice: args go to the administrator's App, not to the delivery.
// A setuid-root run keeps its privileges only when its first argument is an option
// (internal/setuid's init drops them otherwise), and such a run is always a delivery.
func routesToAdmin(args []string, setuid bool) bool {
	return isAdminCommandLine(args) && (!setuid || !strings.HasPrefix(args[1], "-"))
}

// isCommandName reports whether name is a registered subcommand, as the first argument.
func isCommandName(name string) bool {
	if strings.HasPrefix(name, "-") {
		return false
	}
	if _, ok := subcommands[name]; ok {
		return true
	}
	for _, c := range adminCommands(&cmdIO{}) {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return true
		}
	}
	return false
}

// adminCommands builds every subcommand for one run, sorted by name.
func adminCommands(io *cmdIO) []*cli.Command {
	var out []*cli.Command
	have := map[string]bool{}
	for _, mk := range commands {
		c := mk(io)
		have[c.Name] = true
		out = append(out, c)
	}
	for name, fn := range subcommands {
		if have[name] {
			continue
		}
		out = append(out, &cli.Command{
			Name:            name,
			Usage:           "see vdeliver " + name + " -h",
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				io.code = fn(c.Context, append([]string{name}, c.Args().Slice()...), io.stdin, io.stdout, io.stderr, io.getenv)
				return nil
			},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// adminApp is the App of the subcommands. Its top-level flags are the delivery's, for
// the help and the completion only: its own action never delivers.
func adminApp(io *cmdIO) *cli.App {
	return &cli.App{
		Name:                      "vdeliver",
		Usage:                     "deliver a message into a virtual mailbox (Postfix virtual(8) as a pipe(8) command)",
		UsageText:                 usageText,
		HideVersion:               true,
		Compiled:                  time.Unix(0, 0),
		DisableSliceFlagSeparator: true,
		EnableBashCompletion:      true,
		Writer:                    io.stdout,
		ErrWriter:                 io.stderr,
		ExitErrHandler:            func(*cli.Context, error) {},
		Flags:                     deliveryFlags(&delivery{}),
		Commands:                  adminCommands(io),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		Action: func(c *cli.Context) error {
			return cli.ShowAppHelp(c)
		},
	}
}

// errUsageShown is returned after a usage error has been reported: exit 2.
var errUsageShown = errors.New("usage error")

// usageError reports a command line error on stderr with the command's usage line, as
// Go's flag package did: exit 2.
func usageError(c *cli.Context, err error) error {
	w := c.App.ErrWriter
	name := "vdeliver"
	usage := ""
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
		usage = c.Command.UsageText
	}
	fmt.Fprintf(w, "%s: %v\n", name, err)
	if usage != "" {
		fmt.Fprintf(w, "usage: %s\n", usage)
	}
	fmt.Fprintf(w, "(see: vdeliver help %s)\n", strings.TrimPrefix(name, "vdeliver "))
	return errUsageShown
}

// runAdmin runs the administrator's App and returns its exit status: the command's own,
// 2 for a usage error.
func runAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cio := &cmdIO{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := adminApp(cio).RunContext(ctx, args)
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return cio.code
	case errors.As(err, &ec) && strings.HasPrefix(err.Error(), "No help topic for "):
		// urfave/cli's answer to "help NAME" for an unknown name (exit 3): a usage error.
		fmt.Fprintf(stderr, "vdeliver help: no command %s; \"vdeliver help\" lists them\n", strings.TrimPrefix(err.Error(), "No help topic for "))
		return 2
	case errors.As(err, &ec):
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	case errors.Is(err, errUsageShown):
		return 2
	default:
		// A flag error urfave/cli reports itself ("flag provided but not defined").
		fmt.Fprintf(stderr, "vdeliver: %v\n", err)
		return 2
	}
}

// usageArgs is a cli.Command's Before check for the number of arguments (min..max, max
// < 0 for no limit); what names them in the error ("an address", "a table and a key").
func usageArgs(min, max int, what string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		n := c.Args().Len()
		switch {
		case max == 0 && n > 0:
			return usageError(c, fmt.Errorf("takes no arguments, got %q", c.Args().First()))
		case n < min || (max >= 0 && n > max):
			return usageError(c, fmt.Errorf("needs %s, got %d arguments", what, n))
		}
		return nil
	}
}

// commandsHelp is the COMMANDS section of "vdeliver --help": the delivery's App has no
// commands of its own (commands.go), so its help lists the administrator's.
func commandsHelp() string {
	var b strings.Builder
	b.WriteString("\nCOMMANDS (the first argument; \"vdeliver help COMMAND\" for its options):\n")
	cmds := adminCommands(&cmdIO{})
	width := 0
	for _, c := range cmds {
		if !c.Hidden {
			width = max(width, len(c.Name))
		}
	}
	for _, c := range cmds {
		if !c.Hidden {
			fmt.Fprintf(&b, "   %-*s  %s\n", width, c.Name, c.Usage)
		}
	}
	fmt.Fprintf(&b, "   %-*s  %s\n", width, "help", "list the commands, or show one command's options")
	return b.String()
}

// Package cli is vdeliver's command line (README.md, docs/vdeliver.8), on urfave/cli.
// Main and run send each command line to one of two Apps:
//
//   - the delivery as pipe(8) runs it (delivery.go): one message, its recipients, one
//     status line and exit status for the MTA;
//   - the administrator's subcommands (commands.go), one file each: cmd_check.go,
//     cmd_completion.go, cmd_explain.go, cmd_lmtp.go (the LMTP front end, joining the
//     lmtp server to deliver), cmd_postmap.go, cmd_query.go.
//
// config.go is how all of them find main.cf. The setuid-root rules are internal/setuid,
// the log client internal/maillog, the guards against the runtime's fatal errors
// internal/resources.
//
// The subcommands are files of this package, not packages of their own: they share the
// App's usage and exit conventions (cmdIO, usageError, usageArgs), the delivery's flags
// (its help, the completion, check's master.cf argv check), its message reader and its
// configuration loading, which as packages each would have to export and import.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"vdeliver/deliver"
	"vdeliver/internal/resources"
	"vdeliver/internal/setuid"
)

// version is the build's version (main.go sets it from -ldflags "-X main.version=...").
var version = ""

// Main is the command: it runs with the process's arguments, streams and environment,
// and exits with the status.
func Main(buildVersion string) {
	version = buildVersion
	chdir = os.Chdir
	if !routesToAdmin(os.Args, setuid.Startup().Active) {
		resourceErr = resources.Guard(setuid.Startup().Active)
	}
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// resourceErr is why this run cannot deliver (too few file descriptors); set once by
// Main, before run.
var resourceErr error

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

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

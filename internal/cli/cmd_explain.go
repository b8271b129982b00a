package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/internal/setuid"
)

func init() { commands = append(commands, explainCommand, explainProbeCommand) }

// explainFailure is the --json document when the configuration cannot be loaded.
type explainFailure struct {
	ConfigDirectory string `json:"config_directory"`
	Status          string `json:"status"`
	Exit            int    `json:"exit"`
	Error           string `json:"error"`
}

// explainCommand: vdeliver explain [options] address...
// Exit 0 when every address would be delivered, 1 otherwise, 2 for a usage error.
func explainCommand(cio *cmdIO) *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "show, step by step, what a delivery to each address would do, without writing",
		UsageText: "vdeliver explain [-c config_dir] [-o name=value]... [-f sender] [-a original_recipient] [--message file] [--no-loop-check] [--json] address...",
		Description: `Follows the delivery's own code path up to the point of writing: the envelope checks,
the domain check, every table and key asked (and which table of a list answered), the
mailbox path and format, the uid/gid, and then, as the delivering uid (a child process
when explain runs as root), the base opened after the identity switch and the storage
step's checks: the directories and files it would create or open, the locks, the size
limit. The status is the one a delivery would give now. Without --message the size
checks use an empty message and the empty-message and loop checks are left out.
Exit status: 0 when every address would be delivered, 1 otherwise, 2 for a usage error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "directory with main.cf (default $MAIL_CONFIG, else /etc/postfix)"},
			&cli.StringSliceFlag{Name: "o", Usage: "override a main.cf parameter: name=value (repeatable)"},
			&cli.StringFlag{Name: "f", Aliases: []string{"sender"}, Usage: "envelope sender, as the delivery would get it"},
			&cli.StringFlag{Name: "a", Aliases: []string{"original-recipient"}, Usage: "original recipient, as the delivery would get it"},
			&cli.StringFlag{Name: "message", Usage: "the message (a file, - for standard input), for the size, empty-message and loop checks"},
			&cli.BoolFlag{Name: "no-loop-check", Usage: "as the delivery's --no-loop-check"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document (also when the configuration cannot be loaded)"},
		},
		Before: usageArgs(1, -1, "at least one address"),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		Action: func(c *cli.Context) error {
			cio.code = runExplain(c, cio)
			return nil
		},
	}
}

func runExplain(c *cli.Context, cio *cmdIO) int {
	asJSON := c.Bool("json")
	writeJSON := func(doc any) int {
		enc := json.NewEncoder(cio.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return 1
		}
		return 0
	}
	configDir := configDirectory(c.String("c"), cio.getenv)
	fail := func(st *deliver.Status) int {
		detail := st.Reason
		if st.Err != nil {
			detail = st.Err.Error()
		}
		if asJSON {
			writeJSON(explainFailure{ConfigDirectory: configDir, Status: st.Line(), Exit: st.Exit, Error: detail})
		} else {
			fmt.Fprintf(cio.stderr, "vdeliver explain: %s: %s\n", st.Line(), detail)
		}
		return 1
	}
	var msg []byte
	if name := c.String("message"); name != "" {
		var err error
		if name == "-" {
			msg, err = readMessage(cio.stdin)
		} else {
			msg, err = os.ReadFile(name)
		}
		if err != nil {
			return fail(deliver.Deferf(deliver.CodeSystem, err, "error reading message: %s", err))
		}
		if msg == nil {
			msg = []byte{}
		}
	}
	cf, err := loadConfig(configDir, c.StringSlice("o"), cio.getenv)
	if err != nil {
		return fail(deliver.Deferf(deliver.CodeConfig, err, "mail system configuration error"))
	}
	var warnings []string
	// Relative table names are read where a delivery reads them.
	if err := enterQueueDirectory(cf); err != nil {
		warnings = append(warnings, fmt.Sprintf("%v: relative table names resolve in the current directory", err))
	}
	s, st := deliver.Load(cf, func(w string) { warnings = append(warnings, w) })
	if !asJSON {
		for _, w := range warnings {
			fmt.Fprintf(cio.stderr, "warning: %s\n", w)
		}
	}
	if st != nil {
		return fail(st)
	}
	defer s.Close()
	opt := deliver.ExplainOptions{
		Env:         deliver.Envelope{Sender: c.String("f"), OrigRcpt: c.String("a")},
		Message:     msg,
		NoLoopCheck: c.Bool("no-loop-check"),
		Probe:       func(p deliver.StorageProbe) *deliver.Status { return probeAsRecipient(c.Context, p) },
	}
	code := 0
	var all []*deliver.Explanation
	for i, rcpt := range c.Args().Slice() {
		e := s.Explain(c.Context, rcpt, opt)
		if e.Exit != 0 {
			code = 1
		}
		if asJSON {
			all = append(all, e)
			continue
		}
		if i > 0 {
			fmt.Fprintln(cio.stdout)
		}
		e.WriteText(cio.stdout)
	}
	if asJSON {
		var doc any = all
		if len(all) == 1 {
			doc = all[0]
		}
		if writeJSON(doc) != 0 {
			return 1
		}
	}
	return code
}

// probeTimeout bounds the storage probe's child: it waits for nothing but the file system.
const probeTimeout = 30 * time.Second

// probeAsRecipient runs the storage probe as the recipient. A process that is not root
// cannot switch and does not need to: the delivery would run as itself too, so the probe
// runs here. Root runs it in a child (explain-probe), which switches for good as the
// delivery does and leaves this process root for the next address.
func probeAsRecipient(ctx context.Context, p deliver.StorageProbe) *deliver.Status {
	if os.Geteuid() != 0 {
		return deliver.RunProbe(p)
	}
	in, err := json.Marshal(p)
	if err != nil {
		return deliver.Deferf(deliver.CodeSystem, err, "temporary failure")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	// argv[0] stays our own name: the binary is found through /proc, not $PATH.
	cmd := exec.CommandContext(ctx, setuid.SelfExe, "explain-probe")
	cmd.Args[0] = filepath.Base(os.Args[0])
	cmd.Env = []string{"PATH=" + setuid.SafePath}
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return deliver.Deferf(deliver.CodeSystem, fmt.Errorf("storage probe: %w: %s", err, bytes.TrimSpace(errOut.Bytes())), "temporary failure")
	}
	var r deliver.ProbeResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return deliver.Deferf(deliver.CodeSystem, fmt.Errorf("storage probe: %w", err), "temporary failure")
	}
	return r.Status()
}

// explainProbeCommand is the child of probeAsRecipient: a StorageProbe on standard input,
// its ProbeResult on standard output. Hidden: it is explain's, not the administrator's.
func explainProbeCommand(cio *cmdIO) *cli.Command {
	return &cli.Command{
		Name:   "explain-probe",
		Usage:  "the storage checks of explain, as the recipient (used by explain)",
		Hidden: true,
		Before: usageArgs(0, 0, ""),
		Action: func(c *cli.Context) error {
			var p deliver.StorageProbe
			b, err := io.ReadAll(io.LimitReader(cio.stdin, 1<<30))
			if err == nil {
				err = json.Unmarshal(b, &p)
			}
			var st *deliver.Status
			if err != nil {
				st = deliver.Deferf(deliver.CodeSystem, err, "temporary failure")
			} else {
				st = deliver.RunProbe(p)
			}
			out, _ := json.Marshal(st.Result())
			fmt.Fprintln(cio.stdout, string(out))
			return nil
		},
	}
}

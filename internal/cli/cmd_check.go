package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"vdeliver/confcheck"
)

func init() { commands = append(commands, checkCommand) }

// checkReport is the --json document.
type checkReport struct {
	ConfigDirectory string              `json:"config_directory"`
	Findings        []confcheck.Finding `json:"findings"`
}

// checkCommand: vdeliver check. Exit 0 when clean, 1 with findings, 2 for a usage error.
func checkCommand(cio *cmdIO) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "report what in main.cf, master.cf and the tables would lose, misroute or defer mail",
		UsageText: "vdeliver check [-c config_dir] [-o name=value]... [-M master.cf] [--json]",
		Description: `Each finding has the file and line to edit, a severity, a code and a fix.
Exit status: 0 when there is no finding, 1 with findings, 2 for a usage error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "directory with main.cf and master.cf (default $MAIL_CONFIG, else /etc/postfix)"},
			&cli.StringSliceFlag{Name: "o", Usage: "override a main.cf parameter: name=value (repeatable)"},
			&cli.StringFlag{Name: "M", Usage: "the master.cf to read (default master.cf beside main.cf; skipped when absent)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
		},
		Before: usageArgs(0, 0, ""),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		Action: func(c *cli.Context) error {
			cio.code = runCheck(c, cio)
			return nil
		},
	}
}

func runCheck(c *cli.Context, cio *cmdIO) int {
	var findings []confcheck.Finding
	configDir := configDirectory(c.String("c"), cio.getenv)
	cf, err := loadConfig(configDir, c.StringSlice("o"), cio.getenv)
	if err != nil {
		// main.cf itself cannot be read: that is the one finding.
		findings = []confcheck.Finding{confcheck.LoadFailure(filepath.Join(configDir, "main.cf"), err)}
	} else {
		// Relative table names are read where a delivery reads them. A queue_directory
		// that cannot be entered leaves them where they are; the finding says where.
		master := c.String("M")
		if master != "" {
			if abs, err := filepath.Abs(master); err == nil {
				master = abs
			}
		}
		enterQueueDirectory(cf)
		findings = confcheck.Check(c.Context, cf, confcheck.Options{Master: master, SyslogSocket: cio.getenv("VDELIVER_SYSLOG_SOCKET"),
			DeliveryOptions: deliveryOptionNames()})
	}
	if c.Bool("json") {
		enc := json.NewEncoder(cio.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checkReport{ConfigDirectory: configDir, Findings: findings}); err != nil {
			return 2
		}
	} else {
		for _, f := range findings {
			fmt.Fprintln(cio.stdout, f)
		}
		if len(findings) == 0 {
			fmt.Fprintf(cio.stdout, "%s: no findings\n", configDir)
		}
	}
	if len(findings) > 0 {
		return 1
	}
	return 0
}

// deliveryOptionNames are the delivery command's option names, for check's argv check.
func deliveryOptionNames() []string {
	var names []string
	for _, f := range deliveryFlags(&delivery{}) {
		names = append(names, f.Names()...)
	}
	return append(names, "h", "help")
}

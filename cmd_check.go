package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"vdeliver/confcheck"
)

func init() { subcommands["check"] = runCheck }

// checkReport is the --json document.
type checkReport struct {
	ConfigDirectory string              `json:"config_directory"`
	Findings        []confcheck.Finding `json:"findings"`
}

// runCheck: vdeliver check. Exit 0 when clean, 1 with findings, 2 for a usage error.
func runCheck(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vdeliver check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("c", "", "directory with main.cf and master.cf (default $MAIL_CONFIG, else /etc/postfix)")
	master := fs.String("M", "", "the master.cf to read (default master.cf beside main.cf; skipped when absent)")
	asJSON := fs.Bool("json", false, "print one JSON document")
	overrides := &multiFlag{}
	fs.Var(overrides, "o", "override a main.cf parameter: name=value (repeatable)")
	fs.Usage = func() {
		// The first line of `vdeliver check -h` is also the man page's synopsis.
		fmt.Fprintln(stderr, "usage: vdeliver check [-c config_dir] [-o name=value]... [-M master.cf] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	var findings []confcheck.Finding
	configDir := configDirectory(*dir, getenv)
	cf, err := loadConfig(configDir, *overrides, getenv)
	if err != nil {
		// main.cf itself cannot be read: that is the one finding.
		findings = []confcheck.Finding{confcheck.LoadFailure(filepath.Join(configDir, "main.cf"), err)}
	} else {
		// Relative table names are read where a delivery reads them. A queue_directory
		// that cannot be entered leaves them where they are; the finding says where.
		if *master != "" {
			if abs, err := filepath.Abs(*master); err == nil {
				*master = abs
			}
		}
		enterQueueDirectory(cf)
		findings = confcheck.Check(ctx, cf, confcheck.Options{Master: *master})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checkReport{ConfigDirectory: configDir, Findings: findings}); err != nil {
			return 2
		}
	} else {
		for _, f := range findings {
			fmt.Fprintln(stdout, f)
		}
		if len(findings) == 0 {
			fmt.Fprintf(stdout, "%s: no findings\n", configDir)
		}
	}
	if len(findings) > 0 {
		return 1
	}
	return 0
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"vdeliver/deliver"
	"vdeliver/maincf"
)

func init() { subcommands["explain"] = runExplain }

// runExplain: vdeliver explain [-c dir] [-o name=value]... [--json] address...
// Exit 0 when every address would be delivered, 1 otherwise, 2 for a usage error.
func runExplain(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vdeliver explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("c", "", "directory with main.cf (default $MAIL_CONFIG, else /etc/postfix)")
	asJSON := fs.Bool("json", false, "print one JSON document")
	var overrides multiFlag
	fs.Var(&overrides, "o", "override a main.cf parameter: name=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vdeliver explain [-c config_dir] [-o name=value]... [--json] address...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cf, err := loadConfig(*dir, overrides, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "vdeliver explain: %v\n", err)
		return 1
	}
	// Relative table names are read where a delivery reads them.
	if err := enterQueueDirectory(cf); err != nil {
		fmt.Fprintf(stderr, "warning: %v: relative table names resolve in the current directory\n", err)
	}
	s, st := deliver.Load(cf, func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) })
	if st != nil {
		fmt.Fprintf(stderr, "vdeliver explain: %s: %v\n", st.Line(), st.Err)
		return 1
	}
	defer s.Close()
	code := 0
	var all []*deliver.Explanation
	for i, rcpt := range fs.Args() {
		e := s.Explain(ctx, rcpt)
		if e.Exit != 0 {
			code = 1
		}
		if *asJSON {
			all = append(all, e)
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		e.WriteText(stdout)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var doc any = all
		if len(all) == 1 {
			doc = all[0]
		}
		if err := enc.Encode(doc); err != nil {
			return 1
		}
	}
	return code
}

// configDirectory is the directory holding main.cf: dir (-c), else $MAIL_CONFIG, else
// /etc/postfix, as Postfix's commands choose it.
func configDirectory(dir string, getenv func(string) string) string {
	if dir == "" {
		dir = getenv("MAIL_CONFIG")
	}
	if dir == "" {
		dir = "/etc/postfix"
	}
	// Absolute: the working directory becomes $queue_directory once main.cf is read.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

// loadConfig reads main.cf from configDirectory(dir) and applies the -o overrides.
func loadConfig(dir string, overrides []string, getenv func(string) string) (*maincf.Config, error) {
	cf, err := maincf.Load(configDirectory(dir, getenv))
	if err != nil {
		return nil, err
	}
	return cf, applyOverrides(cf, overrides)
}

// applyOverrides applies -o name=value settings to cf.
func applyOverrides(cf *maincf.Config, overrides []string) error {
	for _, o := range overrides {
		if err := cf.Override(o); err != nil {
			return err
		}
	}
	return nil
}

// multiFlag collects a repeatable flag's values without splitting on commas.
type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

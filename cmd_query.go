package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"vdeliver/deliver"
	"vdeliver/lookup"
	"vdeliver/maincf"
)

func init() { subcommands["query"] = runQuery }

const queryUsage = `usage: vdeliver query [-c config_dir] [-f] type:table key

   Prints the value that vdeliver's delivery would get for key from the table, which
   may be any table type vdeliver reads, or a list of tables as in main.cf
   ("cdb:/etc/postfix/vmailbox, static:x") searched in order as Postfix searches a
   *_maps parameter. The key is folded to lower case, as delivery folds addresses,
   unless -f. -c is the Postfix configuration directory handed to postmap(1) for the
   table types vdeliver looks up through it (lmdb, sqlite, ...); its main.cf also names
   the proxymap(8) socket that proxy: tables are asked through, as in a delivery.

   Exit status: 0 found (the value is printed); 1 not found (nothing is printed);
   2 a usage error or a table that cannot be read (an empty value counts, as it does
   for delivery).`

// runQuery: vdeliver query [-c config_dir] [-f] type:table key.
func runQuery(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vdeliver query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("c", "", "Postfix configuration directory for postmap(1)-read tables (default $MAIL_CONFIG, else /etc/postfix)")
	noFold := fs.Bool("f", false, "use the key as given, without folding it to lower case")
	usage, _, _ := strings.Cut(queryUsage, "\n")
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, queryUsage)
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(stderr, "vdeliver query: need a table and a key, got %d arguments\n%s\n", fs.NArg(), usage)
		return 2
	}
	spec, key := fs.Arg(0), fs.Arg(1)
	if !*noFold {
		key = strings.ToLower(key)
	}
	warn := func(s string) { fmt.Fprintf(stderr, "vdeliver query: warning: %s\n", s) }
	confDir := configDirectory(*dir, getenv)
	opt := lookup.Options{ConfigDir: confDir, Warn: warn}
	// proxy: tables are asked through the proxymap(8) of the Postfix that main.cf
	// describes, as a delivery asks them; without a main.cf they go to postmap(1).
	if cf, err := maincf.Load(confDir); err == nil {
		q, err1 := cf.Get("queue_directory")
		svc, err2 := cf.Get("proxymap_service_name")
		if err1 == nil && err2 == nil {
			opt.Proxymap = lookup.NewProxymap(deliver.ProxymapSocket(q, svc))
			defer opt.Proxymap.Close()
		}
	}
	m, err := lookup.OpenMaps(spec, opt)
	if errors.Is(err, lookup.ErrNotApproved) {
		// A table that Postfix's main.cf does not name: asked as if proxy: were not
		// there, as before, for a table being prepared.
		opt.Proxymap = nil
		m, err = lookup.OpenMaps(spec, opt)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vdeliver query: %v\n", err)
		return 2
	}
	defer m.Close()
	if len(m.Tables()) == 0 {
		fmt.Fprintf(stderr, "vdeliver query: no table in %q\n", spec)
		return 2
	}
	v, found, err := m.Find(ctx, key, false)
	if err != nil {
		fmt.Fprintf(stderr, "vdeliver query: %v\n", err)
		return 2
	}
	if !found {
		return 1
	}
	fmt.Fprintln(stdout, v)
	return 0
}

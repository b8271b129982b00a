package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/lookup"
	"vdeliver/maincf"
)

func init() { commands = append(commands, queryCommand) }

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

// queryCommand: vdeliver query [-c config_dir] [-f] type:table key.
func queryCommand(cio *cmdIO) *cli.Command {
	usage, description, _ := strings.Cut(queryUsage, "\n")
	return &cli.Command{
		Name:        "query",
		Usage:       "print the value a table (or a list of tables) gives a key, as the delivery reads it",
		UsageText:   strings.TrimPrefix(usage, "usage: "),
		Description: strings.TrimSpace(dedent(description)),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "Postfix configuration directory for postmap(1)-read tables (default $MAIL_CONFIG, else /etc/postfix)"},
			&cli.BoolFlag{Name: "f", Usage: "use the key as given, without folding it to lower case"},
		},
		Before: usageArgs(2, 2, "a table and a key"),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err)
		},
		Action: func(c *cli.Context) error {
			cio.code = runQuery(c, cio)
			return nil
		},
	}
}

func runQuery(c *cli.Context, cio *cmdIO) int {
	spec, key := c.Args().Get(0), c.Args().Get(1)
	if !c.Bool("f") {
		key = strings.ToLower(key)
	}
	stderr := cio.stderr
	warn := func(s string) { fmt.Fprintf(stderr, "vdeliver query: warning: %s\n", s) }
	confDir := configDirectory(c.String("c"), cio.getenv)
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
	v, found, err := m.Find(c.Context, key, false)
	if err != nil {
		fmt.Fprintf(stderr, "vdeliver query: %v\n", err)
		return 2
	}
	if !found {
		return 1
	}
	fmt.Fprintln(cio.stdout, v)
	return 0
}

// dedent removes the indentation the usage texts share.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "   ")
	}
	return strings.Join(lines, "\n")
}

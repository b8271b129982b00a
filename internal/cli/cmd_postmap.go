package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"vdeliver/internal/privilege"
	"vdeliver/lookup"
	"vdeliver/lookup/cdb"
)

func init() { commands = append(commands, postmapCommand) }

// postmapCommand keeps postmap(1)'s own option syntax (grouped single letters, as getopt
// reads them: -fw), so it parses its arguments itself; the flags listed here are for the
// help, the completion and the manual page.
func postmapCommand(cio *cmdIO) *cli.Command {
	usage, description, _ := strings.Cut(postmapUsage, "\n")
	return &cli.Command{
		Name:            "postmap",
		Usage:           "build cdb tables as Postfix's postmap(1) does, or query tables",
		UsageText:       strings.TrimPrefix(usage, "usage: "),
		Description:     strings.TrimSpace(dedent(description)),
		SkipFlagParsing: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "c", Usage: "Postfix configuration directory"},
			&cli.StringFlag{Name: "q", Usage: "look the key up (- reads keys from standard input)"},
			&cli.BoolFlag{Name: "f", Usage: "do not fold keys to lower case"},
			&cli.BoolFlag{Name: "r", Usage: "a duplicate key: the last value wins"},
			&cli.BoolFlag{Name: "w", Usage: "a duplicate key: the first value wins, silently"},
			&cli.BoolFlag{Name: "N", Usage: "store keys and values with a trailing NUL"},
			&cli.BoolFlag{Name: "n", Usage: "no trailing NUL (the default)"},
			&cli.BoolFlag{Name: "o", Usage: "root running on another user's source: the table stays root's"},
			&cli.BoolFlag{Name: "p", Usage: "the table gets mode 0644, not the source's permissions"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if n := len(args); n > 0 && args[n-1] == completionFlag {
				// SkipFlagParsing hands urfave/cli's completion request to us too.
				for _, f := range c.Command.Flags {
					fmt.Fprintln(cio.stdout, "-"+f.Names()[0])
				}
				return nil
			}
			if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
				return cli.ShowCommandHelp(c.Lineage()[1], "postmap")
			}
			cio.code = runPostmap(c.Context, append([]string{"postmap"}, args...), cio.stdin, cio.stdout, cio.stderr, cio.getenv)
			return nil
		},
	}
}

const postmapUsage = `usage: vdeliver postmap [-fNnoprw] [-c config_dir] [-q key] type:file...

   Builds file.cdb from the source text of each cdb:file, as Postfix's postmap(1) does,
   byte for byte: keys folded to lower case unless -f; a duplicate key keeps its first
   value with a warning "file:line: duplicate entry" (-r: the last value wins, -w: the
   first wins silently); -N stores keys and values with a trailing NUL; the table gets
   the source's permissions (-p: 0644) and, when root runs it on a source owned by
   someone else, that owner (-o: stays root). The new table replaces the old one
   atomically: it is written to a temporary file, fsynced and renamed.

   hash: and btree: tables are read, by vdeliver as by Postfix, from the Berkeley DB
   file file.db; building it and any other type is left to Postfix's postmap, run with
   the same options, when it is installed ($VDELIVER_POSTMAP, else postmap in $PATH,
   else /usr/sbin/postmap). regexp:, pcre:, texthash:, static: and
   inline: tables are read as they are: there is nothing to build.

   -q key looks key up in the tables in order, as vdeliver reads them (any type), and
   prints the first value found; -q - reads keys from standard input, one a line, and
   prints "key<TAB>value" for each key found. Keys are folded to lower case for
   fixed-key tables unless -f.

   A progress bar is shown on a terminal for a source of over 100,000 lines.

   Exit status: 0 built, or found; 1 a table could not be built, or not found;
   2 a usage error or a table that could not be read (postmap(1) exits 1 for both a
   miss and an error; vdeliver tells them apart).`

// postmapOpts is a postmap command line.
type postmapOpts struct {
	configDir    string
	query        string
	hasQuery     bool
	noFold       bool             // -f
	dups         lookup.DupPolicy // -r, -w
	nul          bool             // -N (-n clears it)
	keepRoot     bool             // -o
	defaultPerms bool             // -p
	passFlags    []string         // the options to hand to Postfix's postmap
	tables       []string
}

// errUsage marks a command line error (exit 2).
var errUsage = errors.New("usage error")

// parsePostmapArgs parses postmap's options as its getopt does: single letters that
// may be grouped (-fw), -c and -q take the rest of the word or the next word, and a later
// option overrides an earlier one (-r then -w is -w). Options end at the first table or
// at "--".
func parsePostmapArgs(args []string) (*postmapOpts, error) {
	o := &postmapOpts{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'c', 'q':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option -%c needs an argument: %w", c, errUsage)
					}
					i++
					val = args[i]
				}
				if c == 'c' {
					o.configDir = val
					o.passFlags = append(o.passFlags, "-c", val)
				} else {
					o.query, o.hasQuery = val, true
				}
				j = len(a)
			case 'f':
				o.noFold = true
			case 'r':
				o.dups = lookup.DupReplace
			case 'w':
				o.dups = lookup.DupIgnore
			case 'N':
				o.nul = true
			case 'n':
				o.nul = false
			case 'o':
				o.keepRoot = true
			case 'p':
				o.defaultPerms = true
			case 'b', 'd', 'F', 'h', 'i', 'm', 's', 'u', 'U', 'v':
				return nil, fmt.Errorf("option -%c is not supported; use Postfix's postmap: %w", c, errUsage)
			default:
				return nil, fmt.Errorf("unknown option -%c: %w", c, errUsage)
			}
			if c != 'c' && c != 'q' {
				o.passFlags = append(o.passFlags, "-"+string(c))
			}
		}
	}
	o.tables = args[i:]
	if len(o.tables) == 0 {
		return nil, fmt.Errorf("no table given: %w", errUsage)
	}
	for _, t := range o.tables {
		// Unlike GNU getopt, options after the first table are not looked for: say so
		// rather than take "-q" for a table.
		if strings.HasPrefix(t, "-") {
			return nil, fmt.Errorf("%q after the tables: options must come before them: %w", t, errUsage)
		}
		if _, _, err := lookup.ParseSpec(t); err != nil {
			return nil, fmt.Errorf("%q: give the table type, e.g. cdb:%s: %w", t, t, errUsage)
		}
	}
	return o, nil
}

// runPostmap: vdeliver postmap [-fNnoprw] [-c config_dir] [-q key] type:file...
func runPostmap(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parsePostmapArgs(args[1:])
	if err != nil {
		usage, _, _ := strings.Cut(postmapUsage, "\n")
		fmt.Fprintf(stderr, "vdeliver postmap: %s\n%s\n", strings.TrimSuffix(err.Error(), ": "+errUsage.Error()), usage)
		return 2
	}
	if o.hasQuery {
		return postmapQuery(ctx, o, stdin, stdout, stderr)
	}
	for _, spec := range o.tables {
		if err := postmapBuild(ctx, o, spec, stdout, stderr, getenv); err != nil {
			fmt.Fprintf(stderr, "vdeliver postmap: %s: %v\n", spec, err)
			return 1
		}
	}
	return 0
}

// postmapBuild builds one table.
func postmapBuild(ctx context.Context, o *postmapOpts, spec string, stdout, stderr io.Writer, getenv func(string) string) error {
	typ, name, _ := lookup.ParseSpec(spec)
	switch typ {
	case "cdb":
		return buildCDB(o, name, stderr)
	case "regexp", "pcre", "texthash", "static", "inline", "proxy":
		return fmt.Errorf("%s: tables are read as they are, there is nothing to build", typ)
	}
	bin, err := findPostfixPostmap(getenv)
	if err != nil {
		if typ == "hash" || typ == "btree" {
			return fmt.Errorf("vdeliver reads %s: tables from %s.db, which only Postfix's postmap builds, "+
				"and it is not installed (%v); texthash:%s reads the source text as it is", typ, name, err, name)
		}
		return fmt.Errorf("vdeliver cannot build %s: tables, and Postfix's postmap is not installed (%v)", typ, err)
	}
	cmd := exec.CommandContext(ctx, bin, append(append([]string{}, o.passFlags...), spec)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	return nil
}

// findPostfixPostmap finds Postfix's own postmap: $VDELIVER_POSTMAP when set (Postfix
// installed elsewhere), else postmap in $PATH, else /usr/sbin/postmap (root's PATH has
// /usr/sbin, other users' often does not).
func findPostfixPostmap(getenv func(string) string) (string, error) {
	if p := getenv("VDELIVER_POSTMAP"); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%s: not an executable file", p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("postmap"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/postmap")
}

// buildCDB builds name.cdb from the source text name.
func buildCDB(o *postmapOpts, name string, stderr io.Writer) (err error) {
	bar := newProgressBar(stderr, "vdeliver postmap: "+name+".cdb")
	defer bar.finish()
	warn := func(s string) {
		bar.clear()
		fmt.Fprintf(stderr, "vdeliver postmap: warning: %s\n", s)
	}
	src, err := lookup.ReadSource(name, lookup.SourceOptions{
		NoFold:   o.noFold,
		Dups:     o.dups,
		Warn:     warn,
		Progress: func(line, lines int) { bar.set(line, 2*lines, lines) },
	})
	if err != nil {
		return err
	}
	// Like postmap, write as the source's owner: root running postmap on a file that
	// someone else controls must not create root-owned tables on their say-so.
	if !o.keepRoot {
		restore, err := becomeOwner(src.Info)
		if err != nil {
			return err
		}
		defer func() {
			if rerr := restore(); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	mode := os.FileMode(0o644)
	if !o.defaultPerms {
		// postmap creates the table with the source's permission bits, minus the umask.
		umask := unix.Umask(0)
		unix.Umask(umask)
		mode = src.Info.Mode().Perm() &^ os.FileMode(umask)
	}
	w, err := cdb.Create(name + ".cdb")
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Chmod(mode); err != nil {
		return err
	}
	var k, v []byte
	for _, e := range src.Entries {
		k, v = append(k[:0], e.Key...), append(v[:0], e.Value...)
		if o.nul {
			k, v = append(k, 0), append(v, 0)
		}
		if err := w.Add(k, v); err != nil {
			return err
		}
		bar.set(src.Lines+e.Line, 2*src.Lines, src.Lines)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	bar.set(2*src.Lines, 2*src.Lines, src.Lines)
	return nil
}

// becomeOwner switches the effective uid and gid to the owner of the source file when
// the real uid is root and the file's owner is not who we are, as postmap(1) does unless
// -o; restore switches back. Anyone else writes as themselves.
func becomeOwner(fi os.FileInfo) (restore func() error, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	nothing := func() error { return nil }
	if !ok || os.Getuid() != 0 || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nothing, nil
	}
	return privilege.Effective(int(st.Uid), int(st.Gid))
}

// postmapQuery answers -q: the first table (in order, each opened when reached) that
// has the key answers. With -q -, keys come from stdin.
func postmapQuery(ctx context.Context, o *postmapOpts, stdin io.Reader, stdout, stderr io.Writer) int {
	opt := lookup.Options{ConfigDir: o.configDir, Warn: func(s string) {
		fmt.Fprintf(stderr, "vdeliver postmap: warning: %s\n", s)
	}}
	tables := make([]lookup.Table, len(o.tables))
	defer func() {
		for _, t := range tables {
			if t != nil {
				t.Close()
			}
		}
	}()
	find := func(key string) (string, bool, error) {
		for i, spec := range o.tables {
			if tables[i] == nil {
				t, err := lookup.Open(spec, opt)
				if err != nil {
					return "", false, err
				}
				tables[i] = t
			}
			t := tables[i]
			k := key
			if t.Fixed() && !o.noFold {
				k = strings.ToLower(k)
			}
			v, found, err := t.Lookup(ctx, k)
			if err != nil {
				return "", false, fmt.Errorf("table %s: %w", spec, err)
			}
			if found {
				return v, true, nil
			}
		}
		return "", false, nil
	}
	if o.query != "-" {
		v, found, err := find(o.query)
		if err != nil {
			fmt.Fprintf(stderr, "vdeliver postmap: %v\n", err)
			return 2
		}
		if !found {
			return 1
		}
		fmt.Fprintln(stdout, v)
		return 0
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	code := 1
	for sc.Scan() {
		key := sc.Text()
		v, found, err := find(key)
		if err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "vdeliver postmap: %v\n", err)
			return 2
		}
		if found {
			fmt.Fprintf(out, "%s\t%s\n", key, v)
			code = 0
		}
	}
	if err := sc.Err(); err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "vdeliver postmap: reading keys: %v\n", err)
		return 2
	}
	return code
}

// progressLines is the source size from which building shows a progress bar.
const progressLines = 100_000

// progressBar draws "label [=====>    ]  42%" on a terminal, redrawing only when the
// percentage changes, so a million lines cost a hundred writes.
type progressBar struct {
	w       io.Writer
	label   string
	tty     bool
	drawn   bool
	percent int
}

func newProgressBar(w io.Writer, label string) *progressBar {
	return &progressBar{w: w, label: label, tty: isTerminal(w), percent: -1}
}

// set shows done out of total, when the source has over progressLines lines.
func (p *progressBar) set(done, total, lines int) {
	if !p.tty || lines <= progressLines || total <= 0 {
		return
	}
	pc := min(100, done*100/total)
	if pc == p.percent {
		return
	}
	p.percent = pc
	const width = 30
	fill := width * pc / 100
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3d%%", p.label, bar, pc)
	p.drawn = true
}

// clear erases the bar so that a warning starts on a clean line; the next set draws it
// again.
func (p *progressBar) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn, p.percent = false, -1
	}
}

// finish ends the bar's line.
func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// isTerminal reports whether w is a terminal (the TCGETS ioctl succeeds on it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

package cli

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"vdeliver/deliver"
	"vdeliver/docs"
)

// manPath is the committed manual page; `make man` (VDELIVER_UPDATE_MAN=1 go test -run
// '^TestManPage$' ./internal/cli) rewrites it from the command's own flags.
const manPath = repoRoot + "/docs/vdeliver.8"

var helpMu sync.Mutex

// deliveryApp returns the delivery command's cli.App exactly as runDeliver builds it: it
// runs "vdeliver --help" in-process and takes the App urfave/cli hands to its help
// printer, so the page documents the flags that exist, not a copy of them.
func deliveryApp(t *testing.T) *cli.App {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	var app *cli.App
	saved := cli.HelpPrinter
	cli.HelpPrinter = func(w io.Writer, templ string, data any) {
		if a, ok := data.(*cli.App); ok {
			app = a
		}
	}
	defer func() { cli.HelpPrinter = saved }()
	var out bytes.Buffer
	code := run(context.Background(), []string{"vdeliver", "--help"}, strings.NewReader(""), &out, io.Discard, func(string) string { return "" })
	if code != 0 || app == nil {
		t.Fatalf("vdeliver --help: exit %d, app captured: %v", code, app != nil)
	}
	return app
}

// subcommandHelp runs "vdeliver NAME -h" in-process for every subcommand, in name order,
// and keeps what it prints about itself (error lines "vdeliver NAME: ..." dropped).
func subcommandHelp(t *testing.T) []docs.Command {
	t.Helper()
	var names []string
	for _, c := range adminCommands(&cmdIO{}) {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	var cmds []docs.Command
	for _, n := range names {
		var out, errOut bytes.Buffer
		run(context.Background(), []string{"vdeliver", n, "-h"}, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
		var keep []string
		seen := map[string]bool{}
		for _, l := range strings.Split(errOut.String()+out.String(), "\n") {
			if strings.HasPrefix(l, "vdeliver "+n+": ") || seen[l] && strings.HasPrefix(l, "usage:") {
				continue
			}
			seen[l] = true
			keep = append(keep, l)
		}
		help := strings.TrimSpace(strings.Join(keep, "\n"))
		if help == "" {
			t.Fatalf("vdeliver %s -h printed nothing", n)
		}
		cmds = append(cmds, docs.Command{Name: n, Help: help + "\n"})
	}
	return cmds
}

// TestManPage: docs/vdeliver.8 is what the generator makes from the current flags.
func TestManPage(t *testing.T) {
	page, err := docs.Man(deliveryApp(t), subcommandHelp(t))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("VDELIVER_UPDATE_MAN") != "" {
		if err := os.WriteFile(manPath, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != page {
		t.Fatalf("%s is out of date: run `make man` (VDELIVER_UPDATE_MAN=1 go test -run '^TestManPage$' ./internal/cli)", manPath)
	}
}

// manText is the committed page as text: roff font escapes removed, \- as -.
func manText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`\\f[BIRP]|\\f\[[A-Z]*\]|\\&`).ReplaceAllString(string(b), "")
	s = strings.NewReplacer(`\-`, "-", `\(aq`, "'", `\(dq`, `"`, `\e`, `\`, `\(ga`, "`").Replace(s)
	return s
}

// section returns the text of one .SH section of the page.
func section(t *testing.T, text, name string) string {
	t.Helper()
	i := strings.Index(text, ".SH "+name+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %s", manPath, name)
	}
	rest := text[i+len(".SH "+name+"\n"):]
	if j := strings.Index(rest, "\n.SH "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func flagSpelling(name string) string {
	if len(name) > 1 {
		return "--" + name
	}
	return "-" + name
}

// TestManDeliveryFlags: every flag of the delivery command, with each of its names, is in
// OPTIONS with its default, and every option a delivery takes is in the SYNOPSIS.
func TestManDeliveryFlags(t *testing.T) {
	text := manText(t)
	opts := section(t, text, "OPTIONS")
	synopsis := section(t, text, "SYNOPSIS")
	app := deliveryApp(t)
	if len(app.VisibleFlags()) == 0 {
		t.Fatal("the delivery command has no flags?")
	}
	for _, f := range app.VisibleFlags() {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			t.Errorf("flag %v cannot be documented", f.Names())
			continue
		}
		var line string
		for _, n := range f.Names() {
			re := regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(flagSpelling(n)) + `\b.*$`)
			if line = re.FindString(opts); line == "" {
				t.Errorf("flag %s is missing from OPTIONS of %s", flagSpelling(n), manPath)
			}
		}
		// urfave/cli documents a default only for flags that take a value.
		def := ""
		if df.TakesValue() {
			if def = df.GetDefaultText(); def == "" {
				def = df.GetValue()
			}
		}
		if def != "" && !strings.Contains(line, "(default: "+def+")") {
			t.Errorf("flag %s: OPTIONS line %q does not document the default %q", f.Names()[0], line, def)
		}
		if name := f.Names()[0]; name != "help" && name != "version" && !strings.Contains(synopsis, flagSpelling(name)) {
			t.Errorf("flag %s is missing from the SYNOPSIS of %s", flagSpelling(name), manPath)
		}
	}
}

var (
	usageOpt    = regexp.MustCompile(`\[(-[-A-Za-z]+)`)
	defaultsOpt = regexp.MustCompile(`(?m)^  (-[A-Za-z][-A-Za-z0-9]*)`)
	defaultText = regexp.MustCompile(`\(default ([^)]*)\)`)
)

// TestManSubcommandFlags: every option a subcommand's own help names (its usage line and
// its flag list) and every default that help states are in COMMANDS.
func TestManSubcommandFlags(t *testing.T) {
	commands := section(t, manText(t), "COMMANDS")
	hasFlags := map[string]bool{}
	for _, c := range adminCommands(&cmdIO{}) {
		hasFlags[c.Name] = len(c.Flags) > 0
	}
	for _, c := range subcommandHelp(t) {
		sub := commands
		if i := strings.Index(commands, "vdeliver "+c.Name+"\n"); i >= 0 {
			sub = commands[i:]
		} else {
			t.Errorf("COMMANDS has no vdeliver %s", c.Name)
			continue
		}
		if j := strings.Index(sub[1:], "\n.SS "); j >= 0 {
			sub = sub[:j+1]
		}
		var opts []string
		for _, m := range usageOpt.FindAllStringSubmatch(c.Help, -1) {
			o := m[1]
			if !strings.HasPrefix(o, "--") && len(o) > 2 {
				// [-fNnoprw]: a cluster of single-letter options
				for _, ch := range o[1:] {
					opts = append(opts, "-"+string(ch))
				}
				continue
			}
			opts = append(opts, o)
		}
		for _, m := range defaultsOpt.FindAllStringSubmatch(c.Help, -1) {
			opts = append(opts, m[1])
		}
		if len(opts) == 0 && hasFlags[c.Name] {
			t.Errorf("vdeliver %s -h names no option: %q", c.Name, c.Help)
		}
		for _, o := range opts {
			cluster := regexp.MustCompile(`\[-[A-Za-z]*` + regexp.QuoteMeta(strings.TrimLeft(o, "-")) + `[A-Za-z]*\]`)
			if !strings.Contains(sub, o+" ") && !strings.Contains(sub, o+"\n") && !strings.Contains(sub, o+"]") && !(len(o) == 2 && cluster.MatchString(sub)) {
				t.Errorf("vdeliver %s: option %s is missing from COMMANDS of %s", c.Name, o, manPath)
			}
		}
		for _, m := range defaultText.FindAllString(c.Help, -1) {
			if !strings.Contains(sub, m) {
				t.Errorf("vdeliver %s: default %q is not documented in %s", c.Name, m, manPath)
			}
		}
	}
}

// TestManExitStatus: every status code the deliver package defines is a row of the EXIT
// STATUS table, with the exit value the code really carries.
func TestManExitStatus(t *testing.T) {
	table := section(t, manText(t), "EXIT STATUS")
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deliver", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	codeRE := regexp.MustCompile(`^"([245]\.[0-9]{1,3}\.[0-9]{1,3})"$`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if i < len(vs.Values) && strings.HasPrefix(name.Name, "Code") {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						if m := codeRE.FindStringSubmatch(lit.Value); m != nil {
							codes[m[1]] = true
						}
					}
				}
			}
			return true
		})
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d status codes in deliver/: %v", len(codes), codes)
	}
	rows := strings.Split(table, "\n")
	for code := range codes {
		exit := 0
		switch code[0] {
		case '4':
			exit = deliver.Deferf(code, nil, "").Exit
		case '5':
			exit = deliver.Bouncef(code, nil, "").Exit
		}
		found := false
		for i, r := range rows {
			// tbl rows: cells separated by tabs or T{ T} blocks; look at this row and
			// the few lines a wrapped cell spans.
			end := min(i+6, len(rows))
			block := strings.Join(rows[i:end], "\n")
			if strings.Contains(r, code) && regexp.MustCompile(`(?s)`+regexp.QuoteMeta(code)+`.*?(\t|T\}\t?|\n)`+strconv.Itoa(exit)+`\b`).MatchString(block) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("EXIT STATUS of %s has no row for %s with exit %d", manPath, code, exit)
		}
	}
}

// Package docs renders the manual page vdeliver(8) from the command's own flags and the
// hand-written sections in head.md and tail.md, so the flags documented are the flags
// that exist (STYLE G14). internal/cli/man_test.go regenerates the page and fails
// when docs/vdeliver.8 differs; `make man` rewrites it.
//
// The page is Markdown rendered to roff by urfave/cli's ToMan (go-md2man): NAME, the
// hand-written SYNOPSIS and DESCRIPTION, OPTIONS from the delivery command's cli.App,
// COMMANDS with each administrator's subcommand's own help text, then the hand-written
// TABLE SEARCH ORDER, MAILBOX FORMATS, EXIT STATUS, SECURITY, ENVIRONMENT, FILES,
// EXAMPLES and SEE ALSO.
package docs

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

//go:embed head.md
var head string

//go:embed tail.md
var tail string

// Command is one subcommand as its own -h prints it: the usage line, then the flags or
// the description.
type Command struct {
	Name string
	Help string
}

// template replaces urfave/cli's MarkdownDocTemplate while Man runs: the same OPTIONS
// rendering (GlobalArgs), with our sections around it.
const template = `% {{ .App.Name }} 8

# NAME

{{ .App.Name }} - {{ .App.Usage }}

{{ index .App.Metadata "head" }}
# OPTIONS
{{ range $v := .GlobalArgs }}
{{ $v }}{{ end }}
# COMMANDS

{{ index .App.Metadata "commands" }}
{{ index .App.Metadata "tail" }}`

// mu serialises the swap of urfave/cli's package-level template.
var mu sync.Mutex

// Man renders vdeliver(8) as roff. app is the delivery command (its Name, Usage and
// Flags are used; nothing is run); cmds are the subcommands in the order to show them.
//
// It fails only when urfave/cli cannot render the template.
func Man(app *cli.App, cmds []Command) (string, error) {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "### vdeliver %s\n\n", c.Name)
		for _, l := range strings.Split(strings.TrimRight(c.Help, "\n"), "\n") {
			if l == "" {
				b.WriteString("\n")
				continue
			}
			// An indented block: md2man keeps it as preformatted text. flag's
			// PrintDefaults indents usage with a tab, which roff would expand unevenly.
			b.WriteString("    " + strings.ReplaceAll(l, "\t", "    ") + "\n")
		}
		b.WriteString("\n")
	}
	var flags []cli.Flag
	for _, f := range app.VisibleFlags() {
		if df, ok := f.(cli.DocGenerationFlag); ok {
			f = escaped{df}
		}
		flags = append(flags, f)
	}
	doc := &cli.App{
		Name:     app.Name,
		Usage:    app.Usage,
		Flags:    flags,
		HideHelp: app.HideHelp,
		Metadata: map[string]any{"head": head, "commands": b.String(), "tail": tail},
	}
	mu.Lock()
	defer mu.Unlock()
	saved := cli.MarkdownDocTemplate
	cli.MarkdownDocTemplate = template
	defer func() { cli.MarkdownDocTemplate = saved }()
	return doc.ToManWithSection(8)
}

// escaped is a flag whose usage text is safe in Markdown: urfave/cli copies it verbatim,
// and "Delivered-To: <recipient>" would lose "<recipient>" as an HTML tag.
type escaped struct {
	cli.DocGenerationFlag
}

// IsVisible: only visible flags are wrapped.
func (e escaped) IsVisible() bool { return true }

func (e escaped) GetUsage() string {
	return strings.NewReplacer("<", "\\<", ">", "\\>", "*", "\\*", "_", "\\_").Replace(e.DocGenerationFlag.GetUsage())
}

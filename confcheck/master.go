package confcheck

import (
	"fmt"
	"os"
	"path"
	"strings"

	"vdeliver/internal/rawfile"
)

// Service is one master.cf entry (master(5)): the seven columns, then the command and its
// arguments, each word with the physical line it was written on.
type Service struct {
	Name, Type, Private, Unpriv, Chroot, Wakeup, Maxproc string
	Command                                              string
	Args                                                 []Word
	Line                                                 int // first physical line of the entry
}

// Word is one whitespace-separated word of a master.cf entry and where it stands.
type Word struct {
	Text string
	Line int
}

// PipeAttrs are the pipe(8) attributes of a "pipe" service (docs/behaviour.md §8.1):
// name=value words after the daemon options, with argv= taking every word after it.
type PipeAttrs struct {
	Attrs map[string]Word // "flags", "user", "null_sender", ...: the value and its line
	Argv  []Word          // argv= and the words after it; Argv[0] is the program
}

// ParseMaster reads master.cf text with master(5)'s syntax: a line whose first non-blank
// character is "#" and a blank line are dropped (also between an entry and its
// continuation), a line starting with whitespace continues the entry before it, and an
// entry is at least eight whitespace-separated fields. A word starting with "{" runs to
// the matching "}" (Postfix 3.0), spaces and line breaks included.
//
// A logical line with fewer than eight fields, or a continuation with no entry before it,
// gives a *MasterError naming file and line, as master(8) refuses to start.
func ParseMaster(text, file string) ([]Service, error) {
	var out []Service
	var cur []Word
	var start int
	flush := func() error {
		if cur == nil {
			return nil
		}
		words := joinBraces(cur)
		cur = nil
		if len(words) < 8 {
			return &MasterError{File: file, Line: start, Msg: fmt.Sprintf("entry %q has %d fields, master(5) needs at least 8", words[0].Text, len(words))}
		}
		s := Service{
			Name: words[0].Text, Type: words[1].Text, Private: words[2].Text, Unpriv: words[3].Text,
			Chroot: words[4].Text, Wakeup: words[5].Text, Maxproc: words[6].Text, Command: words[7].Text,
			Args: words[8:], Line: start,
		}
		out = append(out, s)
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimLeft(line, " \t\r\v\f")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if trimmed == line {
			if err := flush(); err != nil {
				return nil, err
			}
			start = n
		} else if cur == nil {
			return nil, &MasterError{File: file, Line: n, Msg: "continuation line with no entry before it"}
		}
		for _, f := range strings.Fields(line) {
			cur = append(cur, Word{Text: f, Line: n})
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// MasterError is a master.cf line master(8) would refuse, with where it is.
type MasterError struct {
	File string
	Line int
	Msg  string // the reason, without the position
}

// Error is "FILE:LINE: Msg".
func (e *MasterError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// joinBraces merges the words of a "{ ... }" group into one word (Postfix mystrtokq with
// "{}"), keeping the line of its first word. An unclosed group runs to the end.
func joinBraces(in []Word) []Word {
	var out []Word
	for i := 0; i < len(in); i++ {
		w := in[i]
		level := strings.Count(w.Text, "{") - strings.Count(w.Text, "}")
		if !strings.HasPrefix(w.Text, "{") || level <= 0 {
			out = append(out, w)
			continue
		}
		for level > 0 && i+1 < len(in) {
			i++
			w.Text += " " + in[i].Text
			level += strings.Count(in[i].Text, "{") - strings.Count(in[i].Text, "}")
		}
		out = append(out, w)
	}
	return out
}

// Pipe returns the pipe(8) attributes of s, skipping the generic daemon options (-o
// name=value, -v, -D, ...) that come before them. ok is false when s is not a pipe
// service.
func (s Service) Pipe() (p PipeAttrs, ok bool) {
	return s.attrs("pipe")
}

// Spawn returns the spawn(8) attributes of s (user=, argv=: pipe(8)'s syntax). ok is
// false when s is not a spawn service.
func (s Service) Spawn() (p PipeAttrs, ok bool) {
	return s.attrs("spawn")
}

func (s Service) attrs(command string) (p PipeAttrs, ok bool) {
	if path.Base(s.Command) != command {
		return p, false
	}
	p.Attrs = map[string]Word{}
	args := s.Args
	for len(args) > 0 && strings.HasPrefix(args[0].Text, "-") {
		if args[0].Text == "-o" && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	for i, a := range args {
		name, value, _ := strings.Cut(a.Text, "=")
		if name == "argv" {
			p.Argv = append([]Word{{Text: value, Line: a.Line}}, args[i+1:]...)
			break
		}
		p.Attrs[name] = Word{Text: value, Line: a.Line}
	}
	return p, true
}

// runsVdeliver reports whether the pipe command is vdeliver: its program's base name.
func (p PipeAttrs) runsVdeliver() bool {
	return len(p.Argv) > 0 && path.Base(p.Argv[0].Text) == "vdeliver"
}

// runsVdeliverLMTP reports whether the command is vdeliver's LMTP mode: the program is
// vdeliver and its first argument lmtp.
func (p PipeAttrs) runsVdeliverLMTP() bool {
	return p.runsVdeliver() && len(p.Argv) > 1 && p.Argv[1].Text == "lmtp"
}

// readMaster returns the services of file, or nil and no error when the file does not
// exist (master.cf is optional for check).
func readMaster(file string) ([]Service, bool, error) {
	b, err := rawfile.ReadFile(file, maxListFile)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, err := ParseMaster(string(b), file)
	return s, true, err
}

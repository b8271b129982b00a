package confcheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseMaster: ParseMaster never panics; an error is a *MasterError at a line of the
// text, and every service starts on a line that begins an entry, with its eight columns
// and its arguments on that line or the lines after it.
func FuzzParseMaster(f *testing.F) {
	for _, seed := range []string{
		"smtp inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n",
		"vdeliver unix - n n - - pipe\n  flags=X user=vmail:mail\n    argv=/usr/local/bin/vdeliver { -a b } -- ${recipient}\n",
		"  flags=X\n",
		"# c\nshort unix - n\n",
		"a b c d e f g h { x\n# c\n\n y } z\n",
		"a b c d e f g h\r\n\tcont\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Split(text, "\n")
		starts := map[int]bool{} // lines that begin an entry
		for i, l := range lines {
			trimmed := strings.TrimLeft(l, " \t\r\v\f")
			if trimmed != "" && trimmed[0] != '#' && trimmed == l {
				starts[i+1] = true
			}
		}
		services, err := ParseMaster(text, "m")
		if err != nil {
			var me *MasterError
			if !errors.As(err, &me) || me.File != "m" || me.Line < 1 || me.Line > len(lines) || err.Error() != fmt.Sprintf("m:%d: %s", me.Line, me.Msg) {
				t.Fatalf("error %v (%#v): want a *MasterError at m:1..%d", err, me, len(lines))
			}
			return
		}
		last := 0
		for _, s := range services {
			if !starts[s.Line] || s.Line <= last {
				t.Fatalf("service %+v does not start on a new entry line after line %d", s, last)
			}
			last = s.Line
			for _, col := range []string{s.Name, s.Type, s.Private, s.Unpriv, s.Chroot, s.Wakeup, s.Maxproc, s.Command} {
				if col == "" {
					t.Fatalf("service %+v has an empty column", s)
				}
			}
			prev := s.Line
			for _, a := range s.Args {
				if a.Text == "" || a.Line < prev || a.Line > len(lines) {
					t.Fatalf("service %+v: argument %+v out of order or empty", s, a)
				}
				prev = a.Line
			}
			if p, ok := s.Pipe(); ok {
				for _, a := range p.Argv {
					if a.Line < s.Line || a.Line > len(lines) {
						t.Fatalf("service %+v: argv word %+v outside the entry", s, a)
					}
				}
			}
		}
	})
}

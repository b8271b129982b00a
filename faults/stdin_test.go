package faults

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestStdin: whatever arrives on standard input gets a correct delivery or a
// clear status, never a partial write.
func TestStdin(t *testing.T) {
	big := message("sixty", 60<<20)
	nul := withHeaders("nul", []byte("before\x00after\n\x00\x00\nend\x00"))
	longLine := withHeaders("long", append(bytes.Repeat([]byte("x"), 1<<20), "\nshort\n"+strings.Repeat("y", 1<<20)...))
	bareCR := withHeaders("cr", []byte("one\rtwo\nthree\r\n\rfour\nfive\r"))
	crlf := bytes.ReplaceAll(message("crlf", 5000), []byte("\n"), []byte("\r\n"))
	early := message("early", 50000)
	early = early[:len(early)/2+7] // the writer stopped mid-line
	cases := []struct {
		name  string
		msg   []byte
		stdin func(t *testing.T) *os.File // nil: msg through a pipe
		o     []string
		exit  int
		line  string // "" means delivered
	}{
		{name: "ends-early", msg: early},
		{name: "empty", stdin: devNull, exit: 65, line: "5.6.0 message is empty"},
		{name: "0-length", msg: []byte{}, exit: 65, line: "5.6.0 message is empty"},
		{name: "unreadable", stdin: dirFile, exit: 75, line: "4.3.0 error reading message: *"},
		{name: "60MB-over-limit", msg: big, exit: 73, line: "5.2.2 " + "%s" + "error writing message: File too large"},
		{name: "60MB", msg: big, o: []string{"virtual_mailbox_limit=0"}},
		{name: "nul-bytes", msg: nul},
		{name: "1MB-lines", msg: longLine},
		{name: "bare-cr", msg: bareCR},
		{name: "crlf", msg: crlf},
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					b := newBox(t, format, "")
					if r := b.deliver(message("seed", 3000), runOpt{bin: binPlain}); r.exit != 0 {
						t.Fatalf("seed delivery: %v", r)
					}
					before := b.snapshot()
					b.run1("stdin")
					opt := runOpt{bin: binPlain, o: tc.o}
					if tc.stdin != nil {
						opt.stdin = tc.stdin(t)
					}
					r := b.deliver(tc.msg, opt)
					bounds := map[string][2]int{"seed": {1, 1}}
					id := ""
					if m := idRE.FindSubmatch(tc.msg); m != nil {
						id = string(m[1])
					}
					if tc.line == "" {
						b.status("stdin", r, 0, delivered(format))
						bounds[id] = [2]int{1, 1}
						b.check("stdin", bounds)
						return
					}
					line := strings.Replace(tc.line, "%s", failPrefix(format), 1)
					b.status("stdin", r, tc.exit, line)
					if id != "" {
						bounds[id] = [2]int{0, 0}
					}
					if d := diffSnap(before, b.snapshot()); d != "" {
						t.Errorf("mailbox changed: %s", d)
						tally.add("stdin", format, func(r *row) { r.partial++ })
					}
					b.check("stdin", bounds)
				})
			}
		})
	}
}

func devNull(t *testing.T) *os.File {
	f, err := os.Open(os.DevNull)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// dirFile is a descriptor read(2) refuses (EISDIR): an input error that is
// not the end of the message.
func dirFile(t *testing.T) *os.File {
	f, err := os.Open(t.TempDir())
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

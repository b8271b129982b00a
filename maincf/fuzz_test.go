package maincf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, tc := range expandCases {
		if tc.name == "doubling chain" {
			continue // 40 parameters of 100000 references each: too slow to fuzz from
		}
		f.Add(expandBase + "relayhost = " + tc.expr + "\n" + tc.extra)
	}
	for _, seed := range []string{
		"a = 1\n  # c\n\n\tcont\nb = 2\n",
		"  orphan\na = 1\r\n",
		"dup = 1\ndup = 2\n",
		"x\x00 = 1\n",
		"a = $b\nb = ${a?{x}:{y}}\n",
		benchMainCF,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(strings.NewReader(text), "main.cf")
		if err != nil {
			if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "main.cf:") {
				t.Fatalf("Parse error %v: want main.cf:LINE: ... wrapping ErrSyntax", err)
			}
			// The position is in the fields, on a line of the text, and the text is
			// the position and the reason.
			var pe *Error
			lines := strings.Count(text, "\n") + 1
			if !errors.As(err, &pe) || pe.File != "main.cf" || pe.Line < 1 || pe.Line > lines || err.Error() != fmt.Sprintf("main.cf:%d: %s", pe.Line, pe.Msg) {
				t.Fatalf("Parse error %v (%#v): want an *Error at main.cf:1..%d", err, pe, lines)
			}
			return
		}
		names := c.Names()
		// Every value expands, or fails with ErrSyntax, without a panic or a hang.
		for i, name := range names {
			if i > 0 && names[i-1] >= name {
				t.Fatalf("Names not sorted and unique: %q", names)
			}
			if !c.IsSet(name) {
				t.Fatalf("IsSet(%q) = false for a parsed name", name)
			}
			if _, err := c.Get(name); err != nil {
				// An error is at the place the parameter was set.
				var pe *Error
				file, line := c.Line(name)
				if !errors.Is(err, ErrSyntax) || !errors.As(err, &pe) || pe.File != file || pe.Line != line {
					t.Fatalf("Get(%q): %v (%#v); want an *Error at %s:%d wrapping ErrSyntax", name, err, pe, file, line)
				}
			}
			c.Int(name)
			c.Bool(name)
			c.Duration(name)
		}
		// Written back one "name = value" per line, the configuration reads the same.
		var b strings.Builder
		for _, name := range names {
			v, _ := c.Raw(name)
			b.WriteString(name + " = " + v + "\n")
		}
		again, err := Parse(strings.NewReader(b.String()), "again.cf")
		if err != nil {
			t.Fatalf("written-back config %q does not parse: %v", b.String(), err)
		}
		if len(again.Warnings()) != 0 {
			t.Fatalf("written-back config warns: %v", again.Warnings())
		}
		got := again.Names()
		if strings.Join(got, "\x00") != strings.Join(names, "\x00") {
			t.Fatalf("names %q became %q", names, got)
		}
		for i, name := range names {
			v, _ := c.Raw(name)
			w, _ := again.Raw(name)
			if v != w {
				t.Fatalf("%s = %q became %q", name, v, w)
			}
			if file, line := again.Line(name); file != "again.cf" || line != i+1 {
				t.Fatalf("Line(%q) = %s:%d, want again.cf:%d", name, file, line, i+1)
			}
		}
	})
}

func FuzzExpand(f *testing.F) {
	for _, tc := range expandCases {
		f.Add(tc.expr, "1")
	}
	f.Add("${a?{$a}:{x}}", "$a")
	f.Add("$a", "${{$a} == {}}")
	f.Fuzz(func(t *testing.T, s, value string) {
		c, err := Parse(strings.NewReader("set = 1\n"), "main.cf")
		if err != nil {
			t.Fatal(err)
		}
		c.Set("a", value)
		got, err := c.Expand(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Expand(%q): %v does not wrap ErrSyntax", s, err)
			}
			if got != "" {
				t.Fatalf("Expand(%q) returned %q with an error", s, got)
			}
		}
		if !strings.Contains(s, "$") && (err != nil || got != s) {
			t.Fatalf("Expand(%q) without macros = %q, %v", s, got, err)
		}
		// Same input, same answer: expansion has no hidden state.
		if again, err2 := c.Expand(s); again != got || (err == nil) != (err2 == nil) {
			t.Fatalf("Expand(%q) gave %q, %v then %q, %v", s, got, err, again, err2)
		}
		// "$$" quotes "$": any text survives quoting and expansion unchanged.
		quoted := strings.ReplaceAll(s, "$", "$$")
		if back, err := c.Expand(quoted); err != nil || back != s {
			t.Fatalf("Expand(%q) = %q, %v; want the unquoted %q", quoted, back, err, s)
		}
		// A reference to a parameter is the expansion of its value.
		// The reference is one level deeper, so it may fail where the value alone does
		// not, never the other way round.
		viaName, errName := c.Expand("${a}")
		direct, errDirect := c.Expand(value)
		if (errDirect != nil && errName == nil) || (errName == nil && viaName != direct) {
			t.Fatalf("${a} = %q, %v but its value %q expands to %q, %v", viaName, errName, value, direct, errDirect)
		}
	})
}

package quota

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := []struct {
		def   string
		want  Limit
		canon string
	}{
		{"1000000S", Limit{Bytes: 1000000}, "1000000S"},
		{"1000000S,1000C", Limit{Bytes: 1000000, Count: 1000}, "1000000S,1000C"},
		{"1000C,1000000S", Limit{Bytes: 1000000, Count: 1000}, "1000000S,1000C"},
		{"1000C", Limit{Count: 1000}, "1000C"},
		{"0S", Limit{}, "0S"},
		{"0S,0C", Limit{}, "0S"},
		{"0C", Limit{}, "0S"},
		{"0S,5C", Limit{Count: 5}, "5C"},
		{"007S", Limit{Bytes: 7}, "7S"},
		{"9223372036854775807S", Limit{Bytes: 1<<63 - 1}, "9223372036854775807S"},
	}
	for _, c := range good {
		got, err := Parse(c.def)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.def, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", c.def, s, c.canon)
		}
	}
	bad := []struct{ def, msg string }{
		{"", `bad quota definition: empty`},
		{"1000", `bad quota definition "1000": item "1000" does not end in S (bytes) or C (messages)`},
		{"1000s", `bad quota definition "1000s": item "1000s" does not end in S (bytes) or C (messages)`},
		{"1000M", `bad quota definition "1000M": item "1000M" does not end in S (bytes) or C (messages)`},
		{"S", `bad quota definition "S": item "S" has no number`},
		{"-5S", `bad quota definition "-5S": item "-5S": "-5" is not a decimal number`},
		{"+5S", `bad quota definition "+5S": item "+5S": "+5" is not a decimal number`},
		{" 5S", `bad quota definition " 5S": item " 5S": " 5" is not a decimal number`},
		{"5S, 5C", `bad quota definition "5S, 5C": item " 5C": " 5" is not a decimal number`},
		{"5S,", `bad quota definition "5S,": empty item`},
		{",5S", `bad quota definition ",5S": empty item`},
		{"5S,,5C", `bad quota definition "5S,,5C": empty item`},
		{"5S,6S", `bad quota definition "5S,6S": more than one S item`},
		{"5C,6C", `bad quota definition "5C,6C": more than one C item`},
		{"9223372036854775808S", `bad quota definition "9223372036854775808S": item "9223372036854775808S": number too large`},
		{"1e6S", `bad quota definition "1e6S": item "1e6S": "1e6" is not a decimal number`},
	}
	for _, c := range bad {
		got, err := Parse(c.def)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error %q", c.def, got, c.msg)
			continue
		}
		if err.Error() != c.msg {
			t.Errorf("Parse(%q) error\n got %q\nwant %q", c.def, err, c.msg)
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v does not wrap ErrSyntax", c.def, err)
		}
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	l := Limit{Bytes: 1000, Count: 3}
	cases := []struct {
		u    Usage
		size int64
		want bool
		full bool
	}{
		{Usage{0, 0}, 1000, true, false},
		{Usage{0, 0}, 1001, false, false},
		{Usage{999, 2}, 1, true, false},
		{Usage{999, 2}, 2, false, false},
		{Usage{1000, 2}, 0, true, true},
		{Usage{10, 3}, 1, false, true},
		{Usage{10, 2}, 990, true, false},
		{Usage{1 << 62, 0}, 1 << 62, false, true},
	}
	for _, c := range cases {
		if got := l.Allows(c.u, c.size); got != c.want {
			t.Errorf("%v.Allows(%+v, %d) = %v, want %v", l, c.u, c.size, got, c.want)
		}
		if got := l.Full(c.u); got != c.full {
			t.Errorf("%v.Full(%+v) = %v, want %v", l, c.u, got, c.full)
		}
	}
	if !(Limit{}).Allows(Usage{1 << 62, 1 << 62}, 1<<62) {
		t.Error("the zero Limit refuses a message")
	}
	if !(Limit{Count: 1}).Allows(Usage{Bytes: 1 << 62}, 1<<62) {
		t.Error("a count-only Limit looks at bytes")
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"1000000S", "1000000S,1000C", "1000C", "0S", "5S,5S", "", ",", "1S,2C,3S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, def string) {
		l, err := Parse(def)
		if err != nil {
			if l != (Limit{}) {
				t.Fatalf("Parse(%q) failed but returned %+v", def, l)
			}
			return
		}
		if l.Bytes < 0 || l.Count < 0 {
			t.Fatalf("Parse(%q) = %+v: negative", def, l)
		}
		s := l.String()
		back, err := Parse(s)
		if err != nil || back != l {
			t.Fatalf("Parse(%q) = %+v; String %q parses to %+v, %v", def, l, s, back, err)
		}
		if back.String() != s {
			t.Fatalf("String not canonical: %q then %q", s, back.String())
		}
		// The file's lenient reader agrees with Parse on everything Parse accepts.
		if h, ok := parseHeader(def); !ok || h != l {
			t.Fatalf("parseHeader(%q) = %+v, %v; Parse gives %+v", def, h, ok, l)
		}
	})
}

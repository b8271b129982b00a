package deliver

import (
	"strings"
	"testing"
)

func TestQuote822Local(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.b@x", "a.b@x"},
		{"john doe@x", `"john doe"@x`},
		{"a..b@x", `"a..b"@x`},
		{".a@x", `".a"@x`},
		{"a.@x", `"a."@x`},
		{`a"b@x`, `"a\"b"@x`},
		{`a\b@x`, `"a\\b"@x`},
		{"a@b@x", `"a@b"@x`},
		{"@route:a b@x", `@route:"a b"@x`},
		{"", `""`},
		{"MAILER-DAEMON", "MAILER-DAEMON"},
		{"ünïcode@x", "ünïcode@x"},
	} {
		if got := Quote822Local(tc.in); got != tc.want {
			t.Errorf("Quote822Local(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitExtension(t *testing.T) {
	for _, tc := range []struct {
		local, delims string
		ownerReq      bool
		user, ext     string
		split         bool
	}{
		{"joe+lists", "+", true, "joe", "lists", true},
		{"a-b+c", "+-", true, "a", "b+c", true},
		{"owner-list", "+-", true, "owner-list", "", false},
		{"list-request", "+-", true, "list-request", "", false},
		{"owner-list", "+-", false, "owner", "list", true},
		{"owner-list", "+", true, "owner-list", "", false}, // no delimiter in it
		{"owner+x", "+", true, "owner", "x", true},         // '-' not a delimiter: no special case
		{"postmaster", "+-", true, "postmaster", "", false},
		{"Postmaster", "+", true, "Postmaster", "", false},
		{"postmaster+x", "+", true, "postmaster", "x", true},
		{"mailer-daemon", "-", true, "mailer-daemon", "", false},
		{"double-bounce", "-", true, "double-bounce", "", false},
		{"+foo", "+", true, "+foo", "", false},
		{"joe", "+", true, "joe", "", false},
		{"joe+", "+", true, "joe", "", true},
		{"joe+lists", "", true, "joe+lists", "", false},
	} {
		e, split := splitExtension(tc.local, tc.delims, "double-bounce", tc.ownerReq)
		if split != tc.split || e.User != tc.user || e.Ext != tc.ext {
			t.Errorf("splitExtension(%q, %q, %v) = %+v %v, want user %q ext %q split %v",
				tc.local, tc.delims, tc.ownerReq, e, split, tc.user, tc.ext, tc.split)
		}
	}
}

// FuzzRecipient: splitting never yields an empty user that is used, the pieces put back
// together give the localpart, and quoting is stable and reversible in shape.
func FuzzRecipient(f *testing.F) {
	for _, s := range []string{"Joe+Lists@Example.COM", "a-b+c@d", "+foo@d", "\"a b\"@x", "@x", "a@b@c", "postmaster+x@d"} {
		f.Add(s, "+-")
	}
	f.Fuzz(func(t *testing.T, addr, delims string) {
		local, domain, hasAt := splitAt(addr)
		if hasAt && local+"@"+domain != addr {
			t.Fatalf("splitAt(%q) lost bytes", addr)
		}
		if strings.Contains(domain, "@") {
			t.Fatalf("domain %q contains @", domain)
		}
		e, split := splitExtension(local, delims, "double-bounce", true)
		if split {
			if e.User == "" {
				t.Fatalf("split %q into an empty user", local)
			}
			if e.User+e.Delim+e.Ext != local {
				t.Fatalf("split %q into %+v", local, e)
			}
			if !strings.Contains(delims, e.Delim) || containsByte(e.User, delims) {
				t.Fatalf("split %q at the wrong place: %+v", local, e)
			}
		} else if e.User != local {
			t.Fatalf("unsplit user %q != %q", e.User, local)
		}
		q := Quote822Local(addr)
		if !hasControl(addr) && Quote822Local(q) != q && isDotAtom(local) {
			t.Fatalf("quoting a dot-atom changed it: %q -> %q", addr, q)
		}
	})
}

func containsByte(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) >= 0 {
			return true
		}
	}
	return false
}

package deliver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Expansion rules of cleanup(8) (docs/behaviour.md §10), one case each: what addresses
// come out, which keys were asked in which order, and the status when expansion fails.
func TestExpandAliases(t *testing.T) {
	const base = "virtual_mailbox_base = /vmail\nvirtual_mailbox_domains = example.com\n" +
		"myorigin = host.example\nmydestination = localhost\n"
	for _, tc := range []struct {
		name  string
		cf    string
		files map[string]string
		rcpt  string
		want  []string // addresses; nil when a status is expected
		code  string   // "" = expanded
		keys  []string // if set: every key asked, in order
		log   string   // if set: the status's log detail contains it
	}{
		{
			name: "no alias: the recipient itself",
			cf:   "virtual_alias_maps = inline:{ other@example.com=x@example.com }\n",
			rcpt: "Alice@Example.com", want: []string{"Alice@Example.com"},
			keys: []string{"alice@example.com", "@example.com"},
		},
		{
			name: "empty virtual_alias_maps: the recipient itself",
			rcpt: "alice@example.com", want: []string{"alice@example.com"},
		},
		{
			name: "order: full, stripped, localparts when local, @domain; quoted form only",
			cf:   "myorigin = example.com\nrecipient_delimiter = +\nvirtual_alias_maps = inline:{ @example.com=catch@example.com }, inline:{ catch@example.com=catch@example.com }\n",
			rcpt: "Joe+Lists@Example.COM", want: []string{"catch@example.com"},
			keys: []string{
				"joe+lists@example.com", "joe+lists@example.com", "joe@example.com", "joe@example.com",
				"joe+lists", "joe+lists", "joe", "joe", "@example.com",
				// catch@example.com, looked up again, answers itself from the second table
				"catch@example.com", "catch@example.com",
			},
		},
		{
			name: "quoted-localpart-asked-quoted-never-raw",
			cf:   "virtual_alias_maps = texthash:$DIR/virtual\n",
			files: map[string]string{"virtual": `"john doe"@example.com  jd@example.com` + "\n" +
				"john doe@example.com  wrong@example.com\n"},
			rcpt: "John Doe@example.com", want: []string{"jd@example.com"},
			keys: []string{`"john doe"@example.com`, "jd@example.com", "@example.com"},
		},
		{
			name:  "list-commas-spaces-comments-brackets-quotes-bare-localpart",
			cf:    "virtual_alias_maps = texthash:$DIR/virtual\n",
			files: map[string]string{"virtual": `list@example.com  a@x.example, <b@x.example> (the b list) c@x.example,,"d e"@x.example  bare` + "\n"},
			rcpt:  "list@example.com",
			want:  []string{"a@x.example", "b@x.example", "c@x.example", "d e@x.example", "bare@host.example"},
		},
		{
			name: "@domain result keeps the localpart as given",
			cf:   "virtual_alias_maps = inline:{ @old.example=@example.com }\n",
			rcpt: "Joe@Old.Example", want: []string{"Joe@example.com"},
		},
		{
			name: "@domain result after a stripped match: localpart without, then with the extension",
			cf:   "recipient_delimiter = +\nvirtual_alias_maps = inline:{ joe@old.example=@example.com }\n",
			rcpt: "joe+x@old.example", want: []string{"joe+x@example.com"},
		},
		{
			name: "extension propagated to every result of a stripped match",
			cf:   "recipient_delimiter = +-\nvirtual_alias_maps = inline:{ { team@example.com = a@example.com, b@example.net } }\n",
			rcpt: "team-news+x@example.com", want: []string{"a-news+x@example.com", "b-news+x@example.net"},
		},
		{
			name: "no propagation without 'virtual' in propagate_unmatched_extensions",
			cf:   "recipient_delimiter = +\npropagate_unmatched_extensions = canonical\nvirtual_alias_maps = inline:{ team@example.com=a@example.com }\n",
			rcpt: "team+news@example.com", want: []string{"a@example.com"},
		},
		{
			name: "no propagation for a full-key match or an @domain match",
			cf:   "recipient_delimiter = +\nvirtual_alias_maps = inline:{ team+news@example.com=n@example.com, @example.com=c@example.com, n@example.com=n@example.com, c@example.com=c@example.com }\n",
			rcpt: "team+news@example.com", want: []string{"n@example.com"},
		},
		{
			name: "postmaster is never split",
			cf:   "recipient_delimiter = +\nvirtual_alias_maps = inline:{ postmaster@example.com=p@example.com }\n",
			rcpt: "postmaster+x@example.com", want: []string{"p+x@example.com"},
		},
		{
			name: "recursion-self-reference-stops-duplicates-removed-first-spelling-kept",
			cf:   "virtual_alias_maps = texthash:$DIR/virtual\n",
			files: map[string]string{"virtual": "a@example.com  b@example.com, c@example.com, a@example.com\n" +
				"b@example.com  d@example.com\n" +
				"c@example.com  c@example.com, D@example.com, e@example.com\n"},
			rcpt: "a@example.com", want: []string{"d@example.com", "c@example.com", "a@example.com", "e@example.com"},
		},
		{
			name:  "pattern-table-sees-full-address-as-given-and-may-substitute",
			cf:    "virtual_alias_maps = regexp:$DIR/virtual.re\n",
			files: map[string]string{"virtual.re": `/^(.*)@example\.com$/  ${1}@example.net` + "\n"},
			rcpt:  "Joe@Example.com", want: []string{"Joe@example.net"},
			keys: []string{"Joe@Example.com", "Joe@example.net"},
		},
		{
			name: "loop: deferred 4.6.0 at the recursion limit",
			cf:   "virtual_alias_recursion_limit = 10\nvirtual_alias_maps = inline:{ a@example.com=b@example.com, b@example.com=a@example.com }\n",
			rcpt: "a@example.com", code: CodeAliasExpansion,
		},
		{
			name: "two hits need a recursion limit of 3 (2 defers)",
			cf:   "virtual_alias_recursion_limit = 2\nvirtual_alias_maps = inline:{ a@example.com=b@example.com, b@example.com=c@example.com }\n",
			rcpt: "a@example.com", code: CodeAliasExpansion,
		},
		{
			name: "two hits within a recursion limit of 3",
			cf:   "virtual_alias_recursion_limit = 3\nvirtual_alias_maps = inline:{ a@example.com=b@example.com, b@example.com=c@example.com }\n",
			rcpt: "a@example.com", want: []string{"c@example.com"},
		},
		{
			name: "more addresses than virtual_alias_expansion_limit",
			cf:   "virtual_alias_expansion_limit = 2\nvirtual_alias_maps = inline:{ { l@example.com = a@example.com, b@example.com, c@example.com } }\n",
			rcpt: "l@example.com", code: CodeAliasExpansion,
		},
		{
			name: "as many addresses as virtual_alias_expansion_limit",
			cf:   "virtual_alias_expansion_limit = 3\nvirtual_alias_maps = inline:{ { l@example.com = a@example.com, b@example.com, c@example.com } }\n",
			rcpt: "l@example.com", want: []string{"a@example.com", "b@example.com", "c@example.com"},
		},
		{
			name: "a result longer than virtual_alias_address_length_limit",
			cf:   "virtual_alias_address_length_limit = 12\nvirtual_alias_maps = inline:{ l@example.com=ab@example.com }\n",
			rcpt: "l@example.com", code: CodeAliasExpansion,
		},
		{
			name: "a result exactly virtual_alias_address_length_limit long",
			cf:   "virtual_alias_address_length_limit = 14\nvirtual_alias_maps = inline:{ l@example.com=ab@example.com }\n",
			rcpt: "l@example.com", want: []string{"ab@example.com"},
		},
		{
			name: "a table that cannot be opened: 4.3.5",
			cf:   "virtual_alias_maps = texthash:$DIR/missing\n",
			rcpt: "l@example.com", code: CodeConfig,
		},
		{
			name:  "result-without-an-address-defers-4.3.5",
			cf:    "virtual_alias_maps = texthash:$DIR/virtual\n",
			files: map[string]string{"virtual": "l@example.com  ,(nothing)\n"},
			rcpt:  "l@example.com", code: CodeConfig, log: `non-address result ",(nothing)"`,
		},
		{
			name:  "empty-result-defers-4.3.5-not-a-miss",
			cf:    "virtual_alias_maps = regexp:$DIR/virtual.re\n",
			files: map[string]string{"virtual.re": "/^l@/\t\n"},
			rcpt:  "l@example.com", code: CodeConfig, log: "empty table value",
		},
		{
			name: "a recipient with a control character bounces 5.1.3",
			cf:   "virtual_alias_maps = inline:{ a@example.com=b@example.com }\n",
			rcpt: "a\n@example.com", code: CodeBadRcptSyntax,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(t, base+tc.cf, tc.files)
			x, st := s.ExpandAliases(t.Context(), tc.rcpt)
			if st != nil && st.Err != nil && strings.Contains(st.Err.Error(), "no such file") && tc.files != nil {
				t.Fatalf("the test's own table is missing: %v", st.Err)
			}
			if tc.code != "" {
				if st == nil {
					t.Fatalf("expanded to %q, want status %s", x.Addresses, tc.code)
				}
				if st.Code != tc.code {
					t.Fatalf("status %s (%v), want %s", st.Line(), st.Err, tc.code)
				}
				if tc.log != "" && !strings.Contains(st.Err.Error(), tc.log) {
					t.Fatalf("log detail %q lacks %q", st.Err, tc.log)
				}
				return
			}
			if st != nil {
				t.Fatalf("status %s (%v)", st.Line(), st.Err)
			}
			if diff := cmp.Diff(tc.want, x.Addresses); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if tc.keys != nil {
				var got []string
				for _, p := range x.Probes {
					got = append(got, p.Key)
				}
				if diff := cmp.Diff(tc.keys, got); diff != "" {
					t.Errorf("keys asked (-want +got):\n%s", diff)
				}
			}
			if (len(tc.want) == 1 && tc.want[0] == tc.rcpt) == x.Expanded() {
				t.Errorf("Expanded() = %v with steps %v", x.Expanded(), x.Steps)
			}
		})
	}
}

// The reasons a sender sees name the limit, never a table or path; the log gets detail.
func TestExpandAliasesReasons(t *testing.T) {
	s := settings(t, "virtual_mailbox_domains = example.com\nvirtual_alias_recursion_limit = 5\n"+
		"virtual_alias_maps = texthash:$DIR/virtual\n", map[string]string{"virtual": "a@example.com b@example.com\nb@example.com a@example.com\n"})
	_, st := s.ExpandAliases(t.Context(), "a@example.com")
	if st == nil || st.Line() != "4.6.0 alias expansion error: alias loop, or nesting deeper than virtual_alias_recursion_limit (5)" || st.Exit != ExTempFail {
		t.Fatalf("loop: %v", st)
	}
	if !strings.Contains(st.Err.Error(), "unreasonable nesting for a@example.com: 5 lookups along one address") {
		t.Fatalf("loop log detail: %v", st.Err)
	}
	s = settings(t, "virtual_mailbox_domains = example.com\nvirtual_alias_maps = texthash:$DIR/missing\n", nil)
	_, st = s.ExpandAliases(t.Context(), "a@example.com")
	if st == nil || st.Line() != "4.3.5 mail system configuration error" || strings.Contains(st.Reason, "missing") {
		t.Fatalf("table error: %v", st)
	}
}

func TestSplitAddressList(t *testing.T) {
	for in, want := range map[string][]string{
		"a@x":                        {"a@x"},
		" a@x ,b@y\tc@z\n":           {"a@x", "b@y", "c@z"},
		`"a, b"@x, c@y`:              {`"a, b"@x`, "c@y"},
		`Name <a@x>, (c (nested)) b`: {"Name", "a@x", "b"},
		`"\"q\""@x`:                  {`"\"q\""@x`},
		",,,":                        nil,
		"<unterminated":              {"<unterminated"},
	} {
		if diff := cmp.Diff(want, splitAddressList(in)); diff != "" {
			t.Errorf("splitAddressList(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func TestUnquote822Local(t *testing.T) {
	for in, want := range map[string]string{
		`"john doe"@x`:   "john doe@x",
		`"a\"b"@x`:       `a"b@x`,
		`plain@x`:        "plain@x",
		`"a@b"@x`:        "a@b@x",
		`"no domain"`:    "no domain",
		`a@"quoted dom"`: `a@"quoted dom"`,
	} {
		if got := unquote822Local(in); got != want {
			t.Errorf("unquote822Local(%q) = %q, want %q", in, got, want)
		}
		// Quote822Local undoes it for every address whose localpart needs quotes.
		if got := Quote822Local(unquote822Local(in)); in[0] == '"' && !strings.Contains(in, `\`) && got != in {
			t.Errorf("Quote822Local(unquote822Local(%q)) = %q", in, got)
		}
	}
}

func TestCombine(t *testing.T) {
	ok1, ok2 := Delivered("delivered to maildir"), Delivered("forwarded")
	busy := Deferf(CodeMailboxBusy, nil, "delivery failed to mailbox: busy")
	gone := Bouncef(CodeUnknownUser, nil, "unknown user: \"c@x\"")
	p := plan{dests: []target{{addr: "a@x", expanded: true}, {addr: "b@x", expanded: true}, {addr: "c@x", expanded: true}}}
	for _, c := range []struct {
		sts  []*Status
		want string
	}{
		{[]*Status{ok1, ok2, ok1}, "2.0.0 expanded to 3 addresses: all delivered"},
		{[]*Status{ok1, busy, gone}, "4.2.0 expanded to b@x: delivery failed to mailbox: busy"},
		{[]*Status{gone, ok1, ok2}, "5.1.1 expanded to a@x: unknown user: \"c@x\""},
	} {
		if got := combine(p, c.sts).Line(); got != c.want {
			t.Errorf("combine = %q, want %q", got, c.want)
		}
	}
	one := plan{dests: []target{{addr: "a@x"}}}
	if got := combine(one, []*Status{busy}); got != busy {
		t.Errorf("a recipient without alias keeps its status: %v", got)
	}
	if busy.Reason != "delivery failed to mailbox: busy" {
		t.Errorf("combine changed the destination's status: %q", busy.Reason)
	}
}

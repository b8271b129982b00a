package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The envelope checks, through Run and RunEnvelopes: each recipient's verdict, in the
// order sender, original recipient, empty message, with or without alias expansion.
// Recipients that pass end at "unknown user", before any identity switch or write.
func TestEnvelopeChecks(t *testing.T) {
	s := settings(t, "virtual_mailbox_base = /vmail\nvirtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_maps = inline:{ a@example.com=a/ }\n"+
		"virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nmyorigin = example.com\nmydestination = localhost\n", nil)
	const (
		unknown   = "5.1.1 unknown user: \"x@example.com\""
		badSender = "5.1.7 bad sender address syntax"
		badOrig   = "5.1.3 bad original recipient address syntax"
		empty     = "5.6.0 message is empty"
	)
	env := func(sender, orig string) Envelope {
		return Envelope{Sender: sender, OrigRcpt: orig, Recipient: "x@example.com", QueueID: "Q1"}
	}
	for _, tc := range []struct {
		name string
		envs []Envelope
		msg  string
		want []string
	}{
		{"all pass", []Envelope{env("s@example.net", ""), env("s@example.net", "o@example.com")}, "x\n", []string{unknown, unknown}},
		{"empty message, every recipient", []Envelope{env("s@example.net", ""), env("s@example.net", "")}, "", []string{empty, empty}},
		{"bad sender before empty message", []Envelope{env("s\n@example.net", ""), env("s\n@example.net", "")}, "", []string{badSender, badSender}},
		{"bad original recipient before empty message, for its recipient only",
			[]Envelope{env("s@example.net", "o\r@example.com"), env("s@example.net", "")}, "", []string{badOrig, empty}},
		{"bad sender before bad original recipient", []Envelope{env("s\x01", "o\n")}, "x\n", []string{badSender}},
		{"a sender per envelope", []Envelope{env("s@example.net", ""), env("s\n", ""), env("t@example.net", "")}, "x\n",
			[]string{unknown, badSender, unknown}},
	} {
		for _, expand := range []bool{false, true} {
			var log []string
			opt := Options{ExpandAliases: expand, Log: func(l string) { log = append(log, l) }}
			var got []string
			for _, st := range s.RunEnvelopes(context.Background(), tc.envs, []byte(tc.msg), opt) {
				got = append(got, st.Line())
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("%s (expand %v): statuses (-want +got):\n%s", tc.name, expand, d)
			}
			n := 0
			for _, l := range log {
				if strings.Contains(l, " to=<") {
					n++
				}
			}
			if n != len(tc.want) {
				t.Errorf("%s (expand %v): %d delivery log lines, want one per recipient: %q", tc.name, expand, n, log)
			}
		}
	}
	// Run gives every recipient the one envelope.
	var got []string
	for _, st := range s.Run(context.Background(), env("s\n", ""), []string{"x@example.com", "y@example.com"}, nil, Options{}) {
		got = append(got, st.Line())
	}
	if d := cmp.Diff([]string{badSender, badSender}, got); d != "" {
		t.Errorf("Run: statuses (-want +got):\n%s", d)
	}
}

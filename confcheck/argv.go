package confcheck

import (
	"fmt"
	"strings"
)

// otherMDAOptions are options of other delivery agents that an argv copied from their
// documentation carries (dovecot-lda, deliver), with what they mean there.
var otherMDAOptions = map[string]string{
	"d": "dovecot-lda's destination user",
	"m": "dovecot-lda's mailbox",
	"p": "dovecot-lda's path of the message file",
	"e": "dovecot-lda's reject-with-exit-code switch",
	"k": "dovecot-lda's keep-environment switch",
	"r": "dovecot-lda's final recipient",
}

// foreignOptions: an option in the vdeliver argv that vdeliver does not have (here
// usually one copied from dovecot-lda's documentation) makes every delivery a command
// line usage error: 4.3.5, deferred until the administrator notices. Only checked when
// the caller says which options vdeliver has (Options.DeliveryOptions).
func (c *checker) foreignOptions(s Service, p PipeAttrs) {
	if len(c.deliveryOptions) == 0 {
		return
	}
	known := map[string]bool{}
	for _, o := range c.deliveryOptions {
		known[o] = true
	}
	for _, w := range p.Argv[1:] {
		if w.Text == "--" || !strings.HasPrefix(w.Text, "-") || w.Text == "-" {
			if w.Text == "--" {
				return
			}
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w.Text, "-"), "=")
		if known[name] {
			continue
		}
		what := "an option vdeliver does not have"
		if m, ok := otherMDAOptions[name]; ok {
			what = m + ", not a vdeliver option"
		}
		c.add(c.masterFile, w.Line, Error, "master-argv-foreign",
			fmt.Sprintf("service %s: argv= passes %s, %s: every delivery defers (4.3.5 command line usage error)", s.Name, w.Text, what),
			"write the argv for vdeliver: argv=/usr/local/bin/vdeliver -f ${sender} -a ${original_recipient} -i ${queue_id} -- ${recipient}")
	}
}

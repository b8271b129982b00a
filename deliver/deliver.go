package deliver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"vdeliver/maildir"
	"vdeliver/mbox"
)

// Options are the per-invocation choices that do not come from main.cf.
type Options struct {
	NoLoopCheck bool             // --no-loop-check
	Hostname    string           // "" -> os.Hostname(); used in maildir file names
	Now         func() time.Time // nil -> time.Now
	Log         func(line string)
}

// Run delivers msg (as read from stdin) to every recipient and returns one Status per
// recipient, in order. It never panics: a panic below is recovered into 4.3.0 by the
// caller's safety net in main as well as here, per recipient.
func (s *Settings) Run(ctx context.Context, env Envelope, rcpts []string, raw []byte, opt Options) []*Status {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = func(string) {}
	}
	start := opt.Now()
	msg := Normalize(raw)
	r := &run{s: s, opt: opt, msg: msg, loops: deliveredTo(msg)}
	defer r.close()
	out := make([]*Status, len(rcpts))
	for i, rcpt := range rcpts {
		e := env
		e.Recipient = rcpt
		st := r.one(ctx, e)
		if s.SoftBounce {
			st = st.SoftBounce()
		}
		out[i] = st
		opt.Log(logLine(e, st, start, opt.Now(), len(raw)))
	}
	return out
}

type run struct {
	s     *Settings
	opt   Options
	msg   []byte
	loops map[string]bool
	id    identity
	root  *os.Root
}

func (r *run) close() {
	if r.root != nil {
		r.root.Close()
	}
}

func (r *run) one(ctx context.Context, env Envelope) (st *Status) {
	defer func() {
		if p := recover(); p != nil {
			st = Deferf(CodeSystem, fmt.Errorf("panic: %v", p), "internal error")
		}
	}()
	if env.Sender != "" && hasControl(env.Sender) {
		return Bouncef(CodeBadSender, fmt.Errorf("sender %q", env.Sender), "bad sender address syntax")
	}
	if hasControl(env.OrigRcpt) {
		return Bouncef(CodeBadRcptSyntax, fmt.Errorf("original recipient %q", env.OrigRcpt), "bad original recipient address syntax")
	}
	if len(r.msg) == 0 {
		return Bouncef(CodeBadMessage, nil, "message is empty")
	}
	t, st := r.s.Resolve(ctx, env.Recipient)
	if st != nil {
		return st
	}
	if !r.opt.NoLoopCheck && isLoop(r.loops, env.Recipient) {
		return Bouncef(CodeLoop, nil, "mail forwarding loop for %s", env.Recipient)
	}
	if !strings.HasPrefix(r.s.Base, "/") {
		return Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_base %q: do not specify a relative or empty pathname", r.s.Base),
			"mail system configuration error")
	}
	if err := r.id.become(t.UID, t.GID); err != nil {
		return Deferf(CodeConfig, err, "mail system configuration error")
	}
	if r.root == nil {
		root, err := os.OpenRoot(r.s.Base)
		if err != nil {
			return Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_base: %w", err), "mail system configuration error")
		}
		r.root = root
	}
	hdr := prependedHeaders(env, r.s.OrigRcpt)
	if t.Maildir {
		name, err := maildir.Deliver(r.root, t.Path, [][]byte{hdr, r.msg}, maildir.Options{
			Hostname: r.opt.Hostname, Limit: r.s.Limit, Now: r.opt.Now,
		})
		if err != nil {
			return classify(err, true)
		}
		return Delivered("delivered to maildir").withLog(r.s.Base + "/" + name)
	}
	err := mbox.Deliver(ctx, r.root, t.Path, mboxSender(env.Sender), hdr, r.msg, mbox.Options{
		Locks: r.s.Locks, Attempts: r.s.LockAttempts, Delay: r.s.LockDelay, StaleAge: r.s.StaleLock,
		Limit: r.s.Limit, Owner: int(t.UID), StrictOwner: r.s.StrictOwner, Now: r.opt.Now,
	})
	if err != nil {
		return classify(err, false)
	}
	return Delivered("delivered to mailbox").withLog(r.s.Base + "/" + t.Path)
}

// withLog records where the message went, for the log line only.
func (s *Status) withLog(path string) *Status {
	s.Err = fmt.Errorf("%s", path)
	return s
}

// logLine is one line per recipient in the shape of Postfix's delivery agents, so
// existing log tools parse it.
func logLine(env Envelope, st *Status, start, end time.Time, size int) string {
	var b strings.Builder
	id := env.QueueID
	if id == "" {
		id = "NOQUEUE"
	}
	fmt.Fprintf(&b, "%s: to=<%s>", id, env.Recipient)
	if env.OrigRcpt != "" && env.OrigRcpt != env.Recipient {
		fmt.Fprintf(&b, ", orig_to=<%s>", env.OrigRcpt)
	}
	word := "sent"
	switch {
	case st.Temporary():
		word = "deferred"
	case !st.OK():
		word = "bounced"
	}
	fmt.Fprintf(&b, ", relay=vdeliver, delay=%.2g, size=%d, dsn=%s, status=%s (%s", end.Sub(start).Seconds(), size, st.Code, word, st.Reason)
	if st.Err != nil {
		if st.OK() {
			fmt.Fprintf(&b, " %s", st.Err)
		} else {
			fmt.Fprintf(&b, ": %s", st.Err)
		}
	}
	b.WriteString(")")
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, b.String())
}

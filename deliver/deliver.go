package deliver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"vdeliver/internal/beneath"
	"vdeliver/journal"
	"vdeliver/maildir"
	"vdeliver/mbox"
)

// Options are the per-invocation choices that do not come from main.cf.
type Options struct {
	NoLoopCheck bool             // --no-loop-check
	Hostname    string           // "" -> os.Hostname(); used in maildir file names
	Now         func() time.Time // nil -> time.Now
	Log         func(line string)

	// Alias expansion and fan-out (alias.go).
	ExpandAliases  bool                // --expand-aliases: expand virtual_alias_maps first
	ForwardCommand []string            // --forward-command, split at spaces; nil -> forward.DefaultCommand
	StateDir       string              // --state-dir: where the journal lives; "" -> no journal
	Getenv         func(string) string // our environment, for the forward command; nil -> empty

	// PerRecipient says that the caller reports each recipient's status to the MTA on
	// its own (an LMTP server does), so a retry never repeats a recipient that got the
	// message: the journal is needed only for a recipient with several destinations.
	PerRecipient bool
}

// Run delivers msg (as read from stdin) to every recipient and returns one Status per
// recipient, in order. It never panics: a panic below is recovered into 4.3.0 by the
// caller's safety net in main as well as here, per destination.
//
// With Options.ExpandAliases each recipient is first expanded through virtual_alias_maps
// (alias.go); the results in virtual_mailbox_domains, and the recipient itself, are
// delivered here, the others forwarded. Each destination gets its own log line; the
// recipient's Status is the worst of them (a deferral beats a bounce beats success).
//
// When a run has more than one destination, one failure makes the MTA retry them all.
// With a queue id and a state directory, the journal (package journal) records each
// destination once it has the message, and a retry skips those; the journal is removed
// once no recipient of the run is deferred. Without a queue id the log says that a retry
// may duplicate. Within a run, a mailbox reached twice (two aliases, two recipients of
// the same mailbox) gets the message once.
func (s *Settings) Run(ctx context.Context, env Envelope, rcpts []string, raw []byte, opt Options) []*Status {
	envs := make([]Envelope, len(rcpts))
	for i, rcpt := range rcpts {
		envs[i] = env
		envs[i].Recipient = rcpt
	}
	return s.run(ctx, envs, Normalize(raw), len(raw), opt)
}

// RunEnvelopes is Run with an envelope per recipient (each its own Recipient and
// OrigRcpt, as an LMTP transaction gives them; Sender and QueueID are the first's) and
// a message already in the form Normalize gives: every line ending in LF, each CRLF
// already made LF.
func (s *Settings) RunEnvelopes(ctx context.Context, envs []Envelope, msg []byte, opt Options) []*Status {
	return s.run(ctx, envs, msg, len(msg), opt)
}

// run delivers msg, normalized, whose size as received was size.
func (s *Settings) run(ctx context.Context, envs []Envelope, msg []byte, size int, opt Options) []*Status {
	var env Envelope
	if len(envs) > 0 {
		env = envs[0]
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = func(string) {}
	}
	start := opt.Now()
	r := &run{s: s, opt: opt, msg: msg, loops: deliveredTo(msg), seen: map[string]bool{}}
	defer r.close()
	plans := make([]plan, len(envs))
	total, most := 0, 0
	rcpts := make([]string, len(envs))
	for i, e := range envs {
		rcpts[i] = e.Recipient
		plans[i] = r.plan(ctx, e)
		total += len(plans[i].dests)
		most = max(most, len(plans[i].dests))
	}
	r.fanout = total > 1
	if opt.PerRecipient {
		r.fanout = most > 1
	}
	if r.fanout {
		switch {
		case env.QueueID == "":
			opt.Log(fmt.Sprintf("NOQUEUE: warning: %d destinations and no queue id (-i): a retry after a partial failure may deliver to some of them twice", total))
		case opt.StateDir == "":
			opt.Log(fmt.Sprintf("%s: warning: %d destinations and no state directory (--state-dir): a retry after a partial failure may deliver to some of them twice", env.QueueID, total))
		}
	}
	out := make([]*Status, len(envs))
	for i, p := range plans {
		out[i] = r.deliverPlan(ctx, p, start, size)
	}
	r.finish(env.QueueID, rcpts, out)
	return out
}

type run struct {
	s      *Settings
	opt    Options
	msg    []byte
	loops  map[string]bool
	id     identity
	root   *beneath.Root
	fanout bool            // more than one destination in this run: keep the journal
	seen   map[string]bool // destinations that have the message, by journal key
	j      *journal.Journal
	jst    *Status      // why the journal could not be opened
	fixed  *fixedChecks // checkEnvelope's verdicts on what the run's envelopes share
}

func (r *run) close() {
	if r.root != nil {
		r.root.Close()
	}
	if r.j != nil {
		r.j.Close()
	}
}

// plan is what one recipient of the command line turns into.
type plan struct {
	env   Envelope // Recipient as the caller gave it
	st    *Status  // the recipient failed before any destination (expansion error, loop)
	dests []target
}

// target is one destination of a plan.
type target struct {
	addr     string
	expanded bool // the recipient went through an alias: X-Original-To names it
	forward  bool // outside virtual_mailbox_domains: handed to the forward command
}

func (r *run) plan(ctx context.Context, env Envelope) (p plan) {
	p.env = env
	if !r.opt.ExpandAliases {
		p.dests = []target{{addr: env.Recipient}}
		return p
	}
	defer func() {
		if v := recover(); v != nil {
			p.st, p.dests = Deferf(CodeSystem, fmt.Errorf("panic: %v", v), "internal error"), nil
		}
	}()
	if st := r.checkEnvelope(env); st != nil {
		p.st = st
		return p
	}
	// local(8) checks the recipient before expanding it: a forwarded copy that comes back
	// carries our Delivered-To.
	if !r.opt.NoLoopCheck && isLoop(r.loops, env.Recipient) {
		p.st = Bouncef(CodeLoop, nil, "mail forwarding loop for %s", env.Recipient)
		return p
	}
	x, st := r.s.ExpandAliases(ctx, env.Recipient)
	if st != nil {
		p.st = st
		return p
	}
	for _, a := range x.Addresses {
		d := target{addr: a, expanded: x.Expanded()}
		// The recipient itself (no alias, or "user@x user@x, ...") is never forwarded: it
		// was given to us to deliver.
		if fold(a) != fold(env.Recipient) {
			_, domain, _ := splitAt(fold(a))
			listed, err := r.s.Domains.Match(ctx, domain)
			if err != nil {
				p.st, p.dests = Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_domains: %w", err), "mail system configuration error"), nil
				return p
			}
			d.forward = !listed
		}
		p.dests = append(p.dests, d)
	}
	if x.Expanded() {
		r.opt.Log(fmt.Sprintf("%s: alias <%s> expanded to <%s>", queueLabel(env.QueueID), env.Recipient, strings.Join(x.Addresses, ">, <")))
	}
	return p
}

func (r *run) deliverPlan(ctx context.Context, p plan, start time.Time, size int) *Status {
	if p.st != nil {
		st := p.st
		if r.s.SoftBounce {
			st = st.SoftBounce()
		}
		r.opt.Log(LogLine(p.env, st, r.opt.Now().Sub(start), size))
		return st
	}
	sts := make([]*Status, len(p.dests))
	for i, d := range p.dests {
		e := p.env
		e.Recipient = d.addr
		if d.expanded && e.OrigRcpt == "" {
			e.OrigRcpt = p.env.Recipient // X-Original-To: what we were asked to deliver
		}
		st := r.dest(ctx, p.env.Recipient, e, d)
		if r.s.SoftBounce {
			st = st.SoftBounce()
		}
		sts[i] = st
		r.opt.Log(LogLine(e, st, r.opt.Now().Sub(start), size))
	}
	return combine(p, sts)
}

// combine is the one status of a recipient with several destinations: the worst, naming
// the destination it is about.
func combine(p plan, sts []*Status) *Status {
	if len(sts) == 1 && !p.dests[0].expanded {
		return sts[0]
	}
	w := Worst(sts)
	if w.OK() && len(sts) > 1 {
		return Delivered("expanded to %d addresses: all delivered", len(sts))
	}
	for i, st := range sts {
		if st == w {
			c := *w
			c.Reason = fmt.Sprintf("expanded to %s: %s", p.dests[i].addr, w.Reason)
			return &c
		}
	}
	return w
}

// dest delivers to one destination unless the journal or this run says it already has
// the message. rcpt is the recipient of the command line the destination came from.
func (r *run) dest(ctx context.Context, rcpt string, env Envelope, d target) (st *Status) {
	defer func() {
		if p := recover(); p != nil {
			st = Deferf(CodeSystem, fmt.Errorf("panic: %v", p), "internal error")
		}
	}()
	if st := r.checkEnvelope(env); st != nil {
		return st
	}
	var t *Target
	var key, dir string
	if d.forward {
		if st := r.forwardAs(ctx, rcpt); st != nil {
			return st
		}
		key = "forward:" + fold(d.addr)
	} else {
		if t, st = r.prepare(ctx, env); st != nil {
			return st
		}
		// The directory the message goes into: a +extension folder is a mailbox of its
		// own, so alice+a and alice+b in one run each get the message when both
		// folders exist (or are created), and once in INBOX when neither does. Without
		// vdeliver_extension_folders it is t.Path, with no disk access.
		dir = t.Path
		if t.Maildir {
			dir = r.folderPath(env, t)
		}
		key = "mailbox:" + dir
	}
	// The journal is opened only now: after the identity switch, so its files belong to
	// the delivering user.
	j, st := r.journal(ctx, env.QueueID)
	if st != nil {
		return st
	}
	jkey := fold(rcpt)
	switch {
	case r.seen[key]:
		st = Delivered("already delivered in this run")
	case j != nil && j.Done(jkey, key):
		st = Delivered("already delivered by an earlier attempt")
	case d.forward:
		st = r.forward(ctx, rcpt, env, d.addr)
	default:
		st = r.write(ctx, env, t, dir)
	}
	if st.OK() {
		r.seen[key] = true
		if j != nil {
			if err := j.Record(jkey, key); err != nil {
				r.opt.Log(fmt.Sprintf("%s: warning: delivery journal: %v: a retry may deliver to %s twice", env.QueueID, err, d.addr))
			}
		}
	}
	return st
}

// deadlineOf is ctx's deadline, zero without one.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// journal opens the run's journal on first use; nil when the run does not need one.
func (r *run) journal(ctx context.Context, queueID string) (*journal.Journal, *Status) {
	if !r.fanout || queueID == "" || r.opt.StateDir == "" {
		return nil, nil
	}
	if r.j == nil && r.jst == nil {
		j, err := journal.Open(r.opt.StateDir, queueID, journal.Options{MaxAge: r.s.QueueLifetime, Now: r.opt.Now, Deadline: deadlineOf(ctx)})
		if err != nil {
			// Delivering without it could deliver twice on the retry: defer before
			// anything is written.
			r.jst = Deferf(CodeConfig, fmt.Errorf("delivery journal in %s: %w", r.opt.StateDir, err),
				"mail system configuration error: cannot keep the delivery journal")
		}
		r.j = j
	}
	return r.j, r.jst
}

// finish removes the run's journal entries once the MTA will not retry: no recipient
// deferred.
func (r *run) finish(queueID string, rcpts []string, out []*Status) {
	if r.j == nil {
		return
	}
	for _, st := range out {
		if st.Temporary() {
			return
		}
	}
	folded := make([]string, len(rcpts))
	for i, rc := range rcpts {
		folded[i] = fold(rc)
	}
	if err := r.j.Forget(folded...); err != nil {
		r.opt.Log(fmt.Sprintf("%s: warning: delivery journal: %v", queueID, err))
	}
}

// checkEnvelope refuses what can never be delivered or forwarded: a sender or original
// recipient that could inject header lines, an empty message. It runs for every
// recipient and destination, but the message is the run's and the sender is shared by
// its envelopes, so their verdicts are made once (fixedChecks) and only the original
// recipient is looked at each time. The order of the checks is the order of the verdicts.
func (r *run) checkEnvelope(env Envelope) *Status {
	f := r.fixed
	if f == nil || f.sender != env.Sender {
		// A caller of RunEnvelopes may give an envelope a sender of its own; an LMTP
		// transaction's share MAIL FROM.
		f = &fixedChecks{sender: env.Sender, senderSt: checkSender(env.Sender), msgSt: checkMessage(r.msg)}
		r.fixed = f
	}
	if f.senderSt != nil {
		return f.senderSt.copy()
	}
	if st := checkOrigRcpt(env); st != nil {
		return st
	}
	return f.msgSt.copy()
}

// fixedChecks are the verdicts of checkEnvelope on the run's message and on one sender.
type fixedChecks struct {
	sender   string
	senderSt *Status // checkSender(sender)
	msgSt    *Status // checkMessage(run.msg)
}

// checkAddresses refuses an envelope whose sender or original recipient could inject
// header lines.
func checkAddresses(env Envelope) *Status {
	if st := checkSender(env.Sender); st != nil {
		return st
	}
	return checkOrigRcpt(env)
}

// copy gives each recipient a Status of its own, as a verdict made afresh would be; nil
// stays nil.
func (s *Status) copy() *Status {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func checkSender(sender string) *Status {
	if sender != "" && hasControl(sender) {
		return Bouncef(CodeBadSender, fmt.Errorf("sender %q", sender), "bad sender address syntax")
	}
	return nil
}

func checkOrigRcpt(env Envelope) *Status {
	if hasControl(env.OrigRcpt) {
		return Bouncef(CodeBadRcptSyntax, fmt.Errorf("original recipient %q", env.OrigRcpt), "bad original recipient address syntax")
	}
	return nil
}

func checkMessage(msg []byte) *Status {
	if len(msg) == 0 {
		return Bouncef(CodeBadMessage, nil, "message is empty")
	}
	return nil
}

// Accept answers, before the message is known, whether env.Recipient would be
// delivered: the delivery's own checks (envelope syntax, resolution, the base, the
// owner's identity) without writing anything or switching identity. nil accepts; a
// Status is what the delivery would answer, so an LMTP server rejects at RCPT with the
// pipe mode's code and text. The message-dependent checks (empty message, Delivered-To
// loop) and the writers' own come at delivery.
func (s *Settings) Accept(ctx context.Context, env Envelope) (st *Status) {
	defer func() {
		if p := recover(); p != nil {
			st = Deferf(CodeSystem, fmt.Errorf("panic: %v", p), "internal error")
		}
		if st != nil && s.SoftBounce {
			st = st.SoftBounce()
		}
	}()
	if st := checkAddresses(env); st != nil {
		return st
	}
	t, st := s.Resolve(ctx, env.Recipient)
	if st != nil {
		return st
	}
	if st := s.checkBase(); st != nil {
		return st
	}
	if err := canBecome(t.UID, t.GID); err != nil {
		return Deferf(CodeConfig, err, "mail system configuration error")
	}
	return nil
}

// checkBase refuses a relative or empty virtual_mailbox_base, as virtual(8) does.
func (s *Settings) checkBase() *Status {
	if !strings.HasPrefix(s.Base, "/") {
		return Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_base %q: do not specify a relative or empty pathname", s.Base),
			"mail system configuration error")
	}
	return nil
}

// prepare resolves one mailbox recipient and becomes its owner; nothing is written.
func (r *run) prepare(ctx context.Context, env Envelope) (*Target, *Status) {
	t, st := r.s.Resolve(ctx, env.Recipient)
	if st != nil {
		return nil, st
	}
	if !r.opt.NoLoopCheck && isLoop(r.loops, env.Recipient) {
		return nil, Bouncef(CodeLoop, nil, "mail forwarding loop for %s", env.Recipient)
	}
	if st := r.enter(t); st != nil {
		return nil, st
	}
	return t, nil
}

// enter becomes t's owner and opens the base, once per run: after the identity switch,
// so the confinement and every check beneath it are the recipient's. Explain's storage
// probe (probe.go) goes through the same steps.
func (r *run) enter(t *Target) *Status {
	if st := r.s.checkBase(); st != nil {
		return st
	}
	if err := r.id.become(t.UID, t.GID); err != nil {
		return Deferf(CodeConfig, err, "mail system configuration error")
	}
	if r.root == nil {
		root, err := beneath.Open(r.s.Base)
		if err != nil {
			return Deferf(CodeConfig, fmt.Errorf("virtual_mailbox_base: %w", err), "mail system configuration error")
		}
		r.root = root
	}
	return nil
}

// write puts the message into the prepared mailbox; for a Maildir, into dir, the Maildir
// or the +extension folder that dest chose (folderPath).
func (r *run) write(ctx context.Context, env Envelope, t *Target, dir string) *Status {
	hdr := prependedHeaders(env, r.s.OrigRcpt)
	if t.Maildir {
		opt := r.maildirOptions()
		opt.Seq = maildirSeq.Add(1)
		// The quota covers the whole Maildir, folders included: its maildirsize is the
		// Maildir's own, whichever folder the message goes to. The reservation comes
		// first, so that concurrent deliveries near the limit see each other's.
		res, st, unused := r.reserve(t, int64(len(hdr)+len(r.msg)))
		if st != nil {
			return st
		}
		ended := false
		defer func() {
			if !ended {
				// A panic between the reservation and its end (recovered into 4.3.0 by
				// dest): the message may be in new/ already, so the reservation stays
				// counted (an over-count until the next recalculation), but the lock
				// goes, or an LMTP process would hold it for the rest of its life.
				r.done(env, t, res, unused)
			}
		}()
		name, err := maildir.Deliver(r.root, dir, [][]byte{hdr, r.msg}, opt)
		ended = true
		if err != nil {
			r.cancel(env, t, res)
			return classify(err, true)
		}
		r.done(env, t, res, unused)
		return Delivered("delivered to maildir").withLog(r.s.Base + "/" + name)
	}
	if t.Quota != nil && t.Quota.Limit.Count > 0 {
		r.opt.Log(mboxCountNote(env, t.Quota))
	}
	err := mbox.Deliver(ctx, r.root, t.Path, mboxSender(env.Sender), hdr, r.msg, r.mboxOptions(t))
	if err != nil {
		return r.s.storageStatus(err, false)
	}
	return Delivered("delivered to mailbox").withLog(r.s.Base + "/" + t.Path)
}

// probe is write without writing: the checks the storage step makes before its first
// write, with the same arguments, classified the same way.
func (r *run) probe(env Envelope, t *Target) *Status {
	hdr := prependedHeaders(env, r.s.OrigRcpt)
	if t.Maildir {
		// In the delivery's order: the quota's reservation comes before the write.
		size := int64(len(hdr) + len(r.msg))
		if st := r.probeQuota(t, size); st != nil {
			return st
		}
		if err := maildir.Probe(r.root, t.Path, size, r.maildirOptions().Limit); err != nil {
			return classify(err, true)
		}
		return Delivered("delivered to maildir")
	}
	if err := mbox.Probe(r.root, t.Path, mboxSender(env.Sender), hdr, r.msg, r.mboxOptions(t)); err != nil {
		return r.s.storageStatus(err, false)
	}
	return Delivered("delivered to mailbox")
}

func (r *run) maildirOptions() maildir.Options {
	return maildir.Options{Hostname: r.opt.Hostname, Limit: r.s.Limit, Now: r.opt.Now, SizeInName: r.s.SizeInNames}
}

func (r *run) mboxOptions(t *Target) mbox.Options {
	return mbox.Options{
		Locks: r.s.Locks, Attempts: r.s.LockAttempts, Delay: r.s.LockDelay, StaleAge: r.s.StaleLock,
		Limit: r.s.Limit, Quota: t.Quota.mboxBytes(), Owner: int(t.UID), StrictOwner: r.s.StrictOwner, Now: r.opt.Now,
	}
}

// maildirSeq numbers the process's Maildir deliveries, so that a process that delivers
// message after message, or several at once (an LMTP server), never makes the same tmp
// name twice in one second.
var maildirSeq atomic.Uint64

// withLog records where the message went, for the log line only.
func (s *Status) withLog(path string) *Status {
	s.Err = fmt.Errorf("%s", path)
	return s
}

// LogLine is one line per recipient in the shape of Postfix's delivery agents, so
// existing log tools parse it.
func LogLine(env Envelope, st *Status, delay time.Duration, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: to=<%s>", queueLabel(env.QueueID), env.Recipient)
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
	fmt.Fprintf(&b, ", relay=vdeliver, delay=%s, size=%d, dsn=%s, status=%s (%s", formatDelay(delay), size, st.Code, word, st.Reason)
	if st.Err != nil {
		if st.OK() {
			fmt.Fprintf(&b, " %s", st.Err)
		} else {
			fmt.Fprintf(&b, ": %s", st.Err)
		}
	}
	b.WriteString(")")
	// Control characters are replaced by the one writer of log lines, main's logger.
	return b.String()
}

// formatDelay writes seconds as Postfix's format_tv() does in delay=: two significant
// digits, at most two after the point, no exponent ("0.02", "2.2", "1171", "0"), which is
// what log parsers such as pflogsumm expect.
func formatDelay(d time.Duration) string {
	sec := d.Seconds()
	var s string
	switch {
	case sec >= 10:
		s = strconv.FormatFloat(sec, 'f', 0, 64)
	case sec >= 1:
		s = strconv.FormatFloat(sec, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(sec, 'f', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"vdeliver/internal/beneath"
)

// Explanation is what a delivery to one recipient would do, step by step, without writing
// anything: `vdeliver explain`.
type Explanation struct {
	Recipient    string      `json:"recipient"`
	Folded       string      `json:"folded"`
	Domain       string      `json:"domain"`
	DomainListed bool        `json:"domain_listed"`
	Lookups      []ProbeView `json:"lookups"`
	Mailbox      string      `json:"mailbox,omitempty"`
	Path         string      `json:"path,omitempty"`
	Format       string      `json:"format,omitempty"` // "maildir" or "mbox"
	UID          *uint32     `json:"uid,omitempty"`
	GID          *uint32     `json:"gid,omitempty"`
	MinimumUID   uint64      `json:"minimum_uid"`
	Base         string      `json:"base"`
	Confinement  string      `json:"confinement"`
	Locks        []string    `json:"locks,omitempty"`
	LockAttempts int         `json:"lock_attempts,omitempty"`
	LockDelay    string      `json:"lock_delay,omitempty"`
	SizeLimit    int64       `json:"size_limit"`
	Status       string      `json:"status"`
	Exit         int         `json:"exit"`
	ProbedAs     string      `json:"probed_as,omitempty"` // the identity the storage checks ran as
	Detail       string      `json:"detail,omitempty"`
	Aliases      *AliasView  `json:"aliases,omitempty"` // virtual_alias_maps, see alias.go

	// vdeliver_extension_folders: the folder chosen ("INBOX" or ".name") and why.
	Folder     string `json:"folder,omitempty"`
	FolderNote string `json:"folder_note,omitempty"`

	// The quota (vdeliver_quota_maps, maildirsize): shown when vdeliver_quota_maps is set
	// or a Maildir has a maildirsize, so that a configuration without either explains as
	// before.
	Quota *QuotaView `json:"quota,omitempty"`
}

// ProbeView is one table query as explain shows it.
type ProbeView struct {
	Map    string `json:"map"`
	Table  string `json:"table,omitempty"` // the table of the list that answered or failed
	Key    string `json:"key"`
	Result string `json:"result"` // hit, miss or error
	Value  string `json:"value,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ExplainOptions are what a delivery would get besides the recipient.
type ExplainOptions struct {
	Env Envelope // sender and original recipient; Recipient is ignored
	// Message is the message as the delivery would read it; nil when none is given: the
	// size checks then use an empty one, and the empty-message and loop checks are left out.
	Message     []byte
	NoLoopCheck bool
	// Probe runs the storage probe as the recipient and returns its status. nil runs it
	// in this process, which is right only when this process does not have to switch
	// identity (not root): RunProbe switches for good.
	Probe func(StorageProbe) *Status
}

// Explain follows a delivery to rcpt up to the point of writing and says what it would
// do, step by step: the envelope checks, the resolution, and then the identity switch,
// the base opened after it and the storage step's checks, run as the recipient through
// opt.Probe. Nothing is written. The status is the one the delivery would give, unless
// something changes in between (a lock taken, a disk filling).
func (s *Settings) Explain(ctx context.Context, rcpt string, opt ExplainOptions) *Explanation {
	e := &Explanation{Recipient: rcpt, Folded: fold(rcpt), MinimumUID: s.MinUID, Base: s.Base, SizeLimit: s.Limit}
	_, e.Domain, _ = splitAt(e.Folded)
	e.Aliases = s.ExplainAliases(ctx, rcpt)
	env := opt.Env
	env.Recipient = rcpt
	var msg []byte
	if opt.Message != nil {
		msg = Normalize(opt.Message)
	}
	// The delivery's order: the envelope, then the resolution, the loop check, the
	// identity switch and the storage step.
	var st *Status
	if opt.Message != nil {
		st = (&run{s: s, msg: msg}).checkEnvelope(env)
	} else {
		st = (&run{s: s, msg: []byte("\n")}).checkEnvelope(env)
	}
	t, rst := s.Resolve(ctx, rcpt)
	e.DomainListed = rst == nil || rst.Code != CodeUnknownDomain
	for _, p := range t.Probes {
		v := ProbeView{Map: p.Map, Table: p.Table, Key: p.Key, Result: "miss"}
		switch {
		case p.Err != nil:
			v.Result, v.Error = "error", p.Err.Error()
		case p.Found:
			v.Result, v.Value = "hit", p.Value
		}
		e.Lookups = append(e.Lookups, v)
	}
	if t.Mailbox != "" {
		e.Mailbox = t.Mailbox
		e.Path = strings.TrimSuffix(s.Base, "/") + "/" + t.Path
		e.Format = "mbox"
		if t.Maildir {
			e.Format = "maildir"
		} else {
			e.Locks, e.LockAttempts, e.LockDelay = s.Locks, s.LockAttempts, s.LockDelay.String()
		}
	}
	if st == nil {
		st = rst
	}
	if st == nil && opt.Message != nil && !opt.NoLoopCheck && isLoop(deliveredTo(msg), rcpt) {
		st = Bouncef(CodeLoop, nil, "mail forwarding loop for %s", rcpt)
	}
	if rst == nil {
		e.UID, e.GID = &t.UID, &t.GID
		s.confinement(e, t)
	}
	path := t.Path
	if rst == nil && s.ExtensionFolders && t.Maildir {
		e.Folder, e.FolderNote, path = s.explainFolder(t)
	}
	if rst == nil {
		e.Quota = s.explainQuota(t, env, msg)
	}
	if st == nil {
		p := StorageProbe{Base: s.Base, Path: path, Maildir: t.Maildir, UID: t.UID, GID: t.GID, Limit: s.Limit,
			Quota: t.Quota.limit(), OverquotaDefer: s.OverquotaDefer,
			Locks: s.Locks, LockAttempts: s.LockAttempts, LockDelay: s.LockDelay, StaleLock: s.StaleLock,
			StrictOwner: s.StrictOwner, OrigRcpt: s.OrigRcpt, Env: env, Message: msg}
		if opt.Probe != nil {
			st = opt.Probe(p)
		} else {
			st = RunProbe(p)
		}
		e.ProbedAs = fmt.Sprintf("uid %d gid %d", t.UID, t.GID)
	}
	if e.Quota != nil && e.Quota.Source != "none" && e.Quota.Verdict == "" {
		// An mbox's verdict is the storage probe's, which measures the record.
		switch {
		case st.OK():
			e.Quota.Verdict = "fits"
		case quotaVerdict(st.Err) == "over quota":
			e.Quota.Verdict = "over quota"
		default:
			e.Quota.Verdict = "unknown"
		}
	}
	if v := quotaVerdict(st.Err); e.Quota != nil && t.Maildir && v != "" {
		// The view was read with explain's rights, the status as the recipient: where
		// they differ the recipient's read is the delivery's.
		e.Quota.Verdict = v
	}
	if s.SoftBounce {
		st = st.SoftBounce()
	}
	e.Status, e.Exit = st.Line(), st.Exit
	if st.Err != nil && !st.OK() {
		e.Detail = st.Err.Error()
	}
	return e
}

// confinement describes whether the mailbox path can be reached beneath the base without
// leaving it (a symlink that points outside, say), walking what exists of it with this
// process's rights. The status comes from the storage probe, run as the recipient.
func (s *Settings) confinement(e *Explanation, t *Target) {
	if !strings.HasPrefix(s.Base, "/") {
		e.Confinement = "base is not an absolute path"
		return
	}
	root, err := beneath.Open(s.Base)
	if err != nil {
		e.Confinement = fmt.Sprintf("base cannot be opened: %v", err)
		return
	}
	defer root.Close()
	p := strings.TrimSuffix(t.Path, "/")
	if p == "" {
		e.Confinement = "the base itself"
		return
	}
	_, err = root.Stat(p)
	switch {
	case err == nil:
		e.Confinement = "exists beneath the base"
	case errors.Is(err, fs.ErrNotExist):
		e.Confinement = "beneath the base (not created yet)"
	default:
		e.Confinement = fmt.Sprintf("refused: %v", err)
	}
}

// WriteText prints an explanation for a person, one step a line.
func (e *Explanation) WriteText(w io.Writer) {
	fmt.Fprintf(w, "recipient:    %s\n", e.Recipient)
	fmt.Fprintf(w, "folded:       %s\n", e.Folded)
	listed := "no"
	if e.DomainListed {
		listed = "yes"
	}
	fmt.Fprintf(w, "domain:       %s (virtual mailbox domain: %s)\n", e.Domain, listed)
	e.Aliases.writeText(w)
	for _, l := range e.Lookups {
		switch l.Result {
		case "hit":
			fmt.Fprintf(w, "lookup:       %s %q -> hit %q (%s)\n", l.Map, l.Key, l.Value, l.Table)
		case "error":
			fmt.Fprintf(w, "lookup:       %s %q -> error (%s): %s\n", l.Map, l.Key, l.Table, l.Error)
		default:
			fmt.Fprintf(w, "lookup:       %s %q -> miss\n", l.Map, l.Key)
		}
	}
	if e.Mailbox != "" {
		fmt.Fprintf(w, "mailbox:      %s (%s)\n", e.Path, e.Format)
	}
	if e.Folder != "" {
		fmt.Fprintf(w, "folder:       %s (%s)\n", e.Folder, e.FolderNote)
	}
	if e.UID != nil {
		fmt.Fprintf(w, "uid/gid:      %d/%d (virtual_minimum_uid %d: ok)\n", *e.UID, *e.GID, e.MinimumUID)
	}
	if e.Confinement != "" {
		fmt.Fprintf(w, "confinement:  %s: %s\n", e.Base, e.Confinement)
	}
	if e.Format == "mbox" {
		fmt.Fprintf(w, "locks:        %s (%d attempts, %s apart)\n", strings.Join(e.Locks, ", "), e.LockAttempts, e.LockDelay)
	}
	if e.ProbedAs != "" {
		fmt.Fprintf(w, "storage:      checked as %s, after the identity switch\n", e.ProbedAs)
	}
	limit := "none"
	if e.SizeLimit > 0 {
		limit = fmt.Sprintf("%d bytes", e.SizeLimit)
	}
	fmt.Fprintf(w, "size limit:   %s\n", limit)
	e.Quota.writeText(w)
	fmt.Fprintf(w, "status:       %s (exit %d)\n", e.Status, e.Exit)
	if e.Detail != "" {
		fmt.Fprintf(w, "detail:       %s\n", e.Detail)
	}
}

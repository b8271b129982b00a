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
	Detail       string      `json:"detail,omitempty"`
	Aliases      *AliasView  `json:"aliases,omitempty"` // virtual_alias_maps, see alias.go
}

// ProbeView is one table query as explain shows it.
type ProbeView struct {
	Map    string `json:"map"`
	Key    string `json:"key"`
	Result string `json:"result"` // hit, miss or error
	Value  string `json:"value,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Explain resolves rcpt and checks, without writing and without changing identity, what a
// delivery would find under the base.
func (s *Settings) Explain(ctx context.Context, rcpt string) *Explanation {
	e := &Explanation{Recipient: rcpt, Folded: fold(rcpt), MinimumUID: s.MinUID, Base: s.Base, SizeLimit: s.Limit}
	_, e.Domain, _ = splitAt(e.Folded)
	e.Aliases = s.ExplainAliases(ctx, rcpt)
	t, st := s.Resolve(ctx, rcpt)
	e.DomainListed = st == nil || st.Code != CodeUnknownDomain
	for _, p := range t.Probes {
		v := ProbeView{Map: p.Map, Key: p.Key, Result: "miss"}
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
		e.UID, e.GID = &t.UID, &t.GID
		st = s.confinement(e, t)
	}
	if st == nil {
		if t.Maildir {
			st = Delivered("delivered to maildir")
		} else {
			st = Delivered("delivered to mailbox")
		}
	}
	e.Status, e.Exit = st.Line(), st.Exit
	if st.Err != nil && !st.OK() {
		e.Detail = st.Err.Error()
	}
	return e
}

// confinement reports whether the mailbox path can be reached beneath the base without
// leaving it (a symlink that points outside, say), walking what exists of it.
func (s *Settings) confinement(e *Explanation, t *Target) *Status {
	if !strings.HasPrefix(s.Base, "/") {
		e.Confinement = "base is not an absolute path"
		return Deferf(CodeConfig, errors.New("virtual_mailbox_base is relative or empty"), "mail system configuration error")
	}
	root, err := beneath.Open(s.Base)
	if err != nil {
		e.Confinement = fmt.Sprintf("base cannot be opened: %v", err)
		return Deferf(CodeConfig, err, "mail system configuration error")
	}
	defer root.Close()
	p := strings.TrimSuffix(t.Path, "/")
	if p == "" {
		e.Confinement = "the base itself"
		return nil
	}
	_, err = root.Stat(p)
	switch {
	case err == nil:
		e.Confinement = "exists beneath the base"
	case errors.Is(err, fs.ErrNotExist):
		e.Confinement = "beneath the base (not created yet)"
	default:
		// What the delivery itself would meet: opening beneath the base fails, and the
		// storage step defers (4.2.0), as classify says for a refused open.
		e.Confinement = fmt.Sprintf("refused: %v", err)
		return Deferf(CodeMailboxBusy, err, "mailbox path leaves the base or cannot be reached: %s", errnoText(err))
	}
	return nil
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
			fmt.Fprintf(w, "lookup:       %s %q -> hit %q\n", l.Map, l.Key, l.Value)
		case "error":
			fmt.Fprintf(w, "lookup:       %s %q -> error: %s\n", l.Map, l.Key, l.Error)
		default:
			fmt.Fprintf(w, "lookup:       %s %q -> miss\n", l.Map, l.Key)
		}
	}
	if e.Mailbox != "" {
		fmt.Fprintf(w, "mailbox:      %s (%s)\n", e.Path, e.Format)
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
	limit := "none"
	if e.SizeLimit > 0 {
		limit = fmt.Sprintf("%d bytes", e.SizeLimit)
	}
	fmt.Fprintf(w, "size limit:   %s\n", limit)
	fmt.Fprintf(w, "status:       %s (exit %d)\n", e.Status, e.Exit)
	if e.Detail != "" {
		fmt.Fprintf(w, "detail:       %s\n", e.Detail)
	}
}

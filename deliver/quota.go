package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"vdeliver/internal/beneath"
	"vdeliver/mbox"
	"vdeliver/quota"
)

// Quota (vdeliver_quota_maps, docs/behaviour.md §13.25), beyond virtual(8). The policy
// lives here: where a recipient's quota comes from, what over quota answers, and that an
// mbox knows only bytes. Reading and updating maildirsize is package quota's; bounding an
// mbox file is package mbox's.

// ParseOverquotaStatus reads vdeliver_overquota_status: "bounce" (5.2.2, as Postfix
// answers EDQUOT and Dovecot answers by default) or "defer" (4.2.2), case-insensitive as
// Postfix's keyword parameters are. It reports whether over quota defers.
func ParseOverquotaStatus(v string) (deferred bool, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "bounce":
		return false, nil
	case "defer":
		return true, nil
	}
	return false, fmt.Errorf("vdeliver_overquota_status = %q: must be bounce or defer", v)
}

// ParseQuota reads a vdeliver_quota_maps result, a Maildir++ quota definition
// ("1000000S", "1000000S,1000C"). The delivery, explain and check all use it.
func ParseQuota(v string) (quota.Limit, error) {
	return quota.Parse(v)
}

// quotaOf looks t up in vdeliver_quota_maps with virtual_mailbox_maps' keys and order, and
// records the definition found, its table and key. No result is no error: the quota line
// of an existing maildirsize then counts (Maildir only). A result that is no quota
// definition defers 4.3.5, as other bad table results do: bouncing would lose the mail for
// a typo in a table, and delivering without the quota would ignore the administrator.
func (s *Settings) quotaOf(ctx context.Context, t *Target, keys []searchKey) *Status {
	if s.QuotaMaps == nil {
		return nil
	}
	v, found, err := t.find(ctx, "vdeliver_quota_maps", s.QuotaMaps, keys)
	if err != nil {
		return Deferf(CodeConfig, fmt.Errorf("vdeliver_quota_maps: %w", err), "mail system configuration error")
	}
	if !found {
		return nil
	}
	p := t.Probes[len(t.Probes)-1]
	l, err := ParseQuota(v)
	if err != nil {
		// The parser's error names the value.
		return Deferf(CodeConfig, fmt.Errorf("vdeliver_quota_maps: %s: the answer for %s: %w", p.Table, t.Folded, err),
			"mail system configuration error")
	}
	t.Quota = &TargetQuota{Limit: l, Table: p.Table, Key: p.Key}
	return nil
}

// TargetQuota is a recipient's quota from vdeliver_quota_maps.
type TargetQuota struct {
	Limit quota.Limit
	Table string // the table of the list that answered
	Key   string // the key it answered
}

// limit is the table's limit for quota.Reserve and quota.Inspect: nil without a table
// result, which lets an existing maildirsize's quota line count.
func (q *TargetQuota) limit() *quota.Limit {
	if q == nil {
		return nil
	}
	l := q.Limit
	return &l
}

// mboxBytes is the byte quota an mbox gets: the table's; an mbox has no maildirsize.
func (q *TargetQuota) mboxBytes() int64 {
	if q == nil {
		return 0
	}
	return q.Limit.Bytes
}

// overQuota is the status of a message refused for the quota, 5.2.2 or, with
// vdeliver_overquota_status = defer, 4.2.2. err names the limit and the usage, for the
// log only.
func (s *Settings) overQuota(err error) *Status {
	err = quotaMark{err, "over quota"}
	if s.OverquotaDefer {
		return Deferf(CodeMailboxFullTemp, err, "mailbox full")
	}
	return Bouncef(CodeMailboxFull, err, "mailbox full")
}

// quotaMark marks, in a Status's error chain, that the quota decided the status: over
// quota, or a quota that could not be read or kept ("unknown"). explain reads the verdict
// back with quotaVerdict, from this process's Status or from the probe child's
// (ProbeResult.Quota). The error's text is the marked error's own.
type quotaMark struct {
	error
	verdict string
}

func (m quotaMark) Unwrap() error { return m.error }

// quotaVerdict is the verdict of a quotaMark in err's chain, "" without one.
func quotaVerdict(err error) string {
	var m quotaMark
	if errors.As(err, &m) {
		return m.verdict
	}
	return ""
}

// isOverQuota reports whether err is a refusal by a quota: the Maildir++ quota or an
// mbox's byte quota.
func isOverQuota(err error) bool {
	return errors.Is(err, quota.ErrOverQuota) || errors.Is(err, mbox.ErrOverQuota)
}

// storageStatus is classify with the quota's status first.
func (s *Settings) storageStatus(err error, isMaildir bool) *Status {
	if isOverQuota(err) {
		var mb *mbox.Error
		if errors.As(err, &mb) {
			err = fmt.Errorf("%s: %w", mb.Path, err)
		}
		return s.overQuota(err)
	}
	return classify(err, isMaildir)
}

// mboxCountNote is the log line for an mbox recipient whose quota has a message count,
// which an mbox cannot keep: only the bytes apply.
func mboxCountNote(env Envelope, q *TargetQuota) string {
	applies := "no limit applies"
	if q.Limit.Bytes > 0 {
		applies = fmt.Sprintf("only the %d-byte limit applies", q.Limit.Bytes)
	}
	return fmt.Sprintf("%s: to=<%s>: quota %q of vdeliver_quota_maps: an mbox has no message count, %s",
		queueLabel(env.QueueID), env.Recipient, q.Limit.String(), applies)
}

// reserve takes size bytes and one message of t's Maildir++ quota before the message is
// written (quota.Reserve): nothing to do, and no file touched, without a table result and
// without a maildirsize. It runs as the recipient, beneath the base.
//
// When the quota cannot be read or kept (maildirsize unreadable, a Maildir that cannot be
// opened), a quota from vdeliver_quota_maps defers, as the errno says (4.2.0, or 4.3.0 for
// a full disk): delivering would ignore what the administrator set. Without a table
// result the delivery goes on without a quota: a maildirsize vdeliver cannot use never
// holds back mail that virtual(8) would deliver, and a Maildir that cannot be opened gets
// the delivery's own status. The error returned then is for a warning once the message
// is delivered.
func (r *run) reserve(t *Target, size int64) (res *quota.Reservation, st *Status, unused error) {
	res, err := quota.Reserve(r.root, t.Path, t.Quota.limit(), size, r.opt.Now())
	if err == nil {
		return res, nil, nil
	}
	where := fmt.Errorf("%s/%s: %w", strings.TrimSuffix(r.s.Base, "/"), t.Path, err)
	switch {
	case isOverQuota(err):
		return nil, r.s.overQuota(where), nil
	case errors.Is(err, quota.ErrBusy):
		// Another delivery into the same Maildir holds the quota lock through the whole
		// wait, as another can hold an mbox's lock.
		return nil, Deferf(CodeMailboxBusy, where, "maildir delivery failed: quota lock busy"), nil
	case t.Quota != nil:
		return nil, dsn(quotaMark{where, "unknown"}, CodeMailboxBusy, "maildir delivery failed: quota: "+errnoText(err)), nil
	}
	return nil, nil, err
}

// cancel gives a reservation back after the delivery failed, and done ends one whose
// message was delivered; both release the Maildir's quota lock. A failure of either
// leaves maildirsize counting wrong until the next recalculation, never the message
// lost, so it is logged and the status stands.
func (r *run) cancel(env Envelope, t *Target, res *quota.Reservation) {
	if err := res.Cancel(); err != nil {
		r.quotaWarning(env, t, "giving back the failed delivery's reservation", err)
	}
}

func (r *run) done(env Envelope, t *Target, res *quota.Reservation, unused error) {
	if unused != nil {
		r.quotaWarning(env, t, "delivered without a quota", unused)
	}
	if err := res.Done(); err != nil {
		r.quotaWarning(env, t, "after the delivery", err)
	}
}

func (r *run) quotaWarning(env Envelope, t *Target, what string, err error) {
	r.opt.Log(fmt.Sprintf("%s: warning: to=<%s>: quota of %s/%s: %s: %v",
		queueLabel(env.QueueID), env.Recipient, strings.TrimSuffix(r.s.Base, "/"), t.Path, what, err))
}

// QuotaView is the quota as explain shows it: where it comes from, the limit, the usage
// and the verdict for this message.
type QuotaView struct {
	// Source is "vdeliver_quota_maps" (Table and Key say which answer), "maildirsize"
	// (the quota line of the Maildir's file) or "none".
	Source     string `json:"source"`
	Table      string `json:"table,omitempty"`
	Key        string `json:"key,omitempty"`
	File       string `json:"file,omitempty"`  // the Maildir's maildirsize (Maildir only)
	Limit      string `json:"limit,omitempty"` // the Maildir++ definition that applies
	LimitBytes int64  `json:"limit_bytes"`
	LimitCount int64  `json:"limit_count"`
	UsageBytes int64  `json:"usage_bytes"`
	UsageCount int64  `json:"usage_count,omitempty"`   // Maildir only: an mbox has no count
	Message    int64  `json:"message_bytes,omitempty"` // what the delivery adds (Maildir)
	Verdict    string `json:"verdict"`                 // "fits", "over quota", "no quota" or "unknown"
	Note       string `json:"note,omitempty"`
	Error      string `json:"error,omitempty"`
}

// probeQuota is reserve without the reservation, for explain's storage probe: the
// Maildir's quota read as the recipient (quota.Inspect, which writes nothing) and judged
// with reserve's policy, so that explain predicts the delivery's status.
func (r *run) probeQuota(t *Target, size int64) *Status {
	l, u, _, err := quota.Inspect(r.root, t.Path, t.Quota.limit(), size)
	where := func(err error) error {
		return fmt.Errorf("%s/%s: %w", strings.TrimSuffix(r.s.Base, "/"), t.Path, err)
	}
	switch {
	case err != nil && t.Quota != nil:
		return dsn(quotaMark{where(err), "unknown"}, CodeMailboxBusy, "maildir delivery failed: quota: "+errnoText(err))
	case err != nil || l.Unlimited() || l.Allows(u, size):
		// Without a table result a quota that cannot be read is no quota (reserve).
		return nil
	}
	return r.s.overQuota(where(&quota.OverQuotaError{Limit: l, Usage: u, Size: size}))
}

// explainQuota is the quota a delivery to t would apply, read with this process's rights
// (as explain's confinement line is), never written: quota.Inspect for a Maildir, the
// file's size for an mbox. It returns nil when there is nothing to say (no
// vdeliver_quota_maps and no maildirsize quota). The verdict on the status is the storage
// probe's, which runs as the recipient (probeQuota).
func (s *Settings) explainQuota(t *Target, env Envelope, msg []byte) *QuotaView {
	v := &QuotaView{Source: "none", Verdict: "no quota"}
	if t.Quota != nil {
		v.Source, v.Table, v.Key = "vdeliver_quota_maps", t.Quota.Table, t.Quota.Key
		v.Limit, v.LimitBytes, v.LimitCount = t.Quota.Limit.String(), t.Quota.Limit.Bytes, t.Quota.Limit.Count
	}
	base := strings.TrimSuffix(s.Base, "/")
	if !t.Maildir {
		if t.Quota == nil {
			if s.QuotaMaps == nil {
				return nil
			}
			return v
		}
		if t.Quota.Limit.Count > 0 {
			v.Note = "an mbox has no message count: only the bytes apply"
		}
		root, err := beneath.Open(s.Base)
		if err != nil {
			v.Error = err.Error()
			return v
		}
		defer root.Close()
		fi, err := root.Stat(t.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			v.Error = err.Error()
			return v
		default:
			v.UsageBytes = fi.Size()
		}
		// The record adds the From_ line and the quoting to the message: the storage
		// probe, which builds it, gives the verdict (Explain).
		v.Verdict = ""
		return v
	}
	v.File = base + "/" + quota.FileName
	if dir := strings.TrimSuffix(t.Path, "/"); dir != "" {
		v.File = base + "/" + dir + "/" + quota.FileName
	}
	v.Message = int64(len(prependedHeaders(env, s.OrigRcpt)) + len(msg))
	// Without vdeliver_quota_maps a Maildir that cannot be looked at says nothing of a
	// quota, as the delivery then goes on without one; the confinement line and the
	// storage probe tell what is wrong with it.
	quiet := t.Quota == nil && s.QuotaMaps == nil
	root, err := beneath.Open(s.Base)
	if err != nil {
		if quiet {
			return nil
		}
		v.Verdict, v.Error = "unknown", err.Error()
		return v
	}
	defer root.Close()
	l, u, _, err := quota.Inspect(root, t.Path, t.Quota.limit(), v.Message)
	if err != nil {
		if quiet {
			return nil
		}
		v.Verdict, v.Error = "unknown", err.Error()
		return v
	}
	if l.Unlimited() {
		if quiet {
			return nil
		}
		return v
	}
	if t.Quota == nil {
		v.Source = "maildirsize"
		v.Limit, v.LimitBytes, v.LimitCount = l.String(), l.Bytes, l.Count
	}
	v.UsageBytes, v.UsageCount = u.Bytes, u.Count
	if !l.Allows(u, v.Message) {
		v.Verdict = "over quota"
		return v
	}
	v.Verdict = "fits"
	return v
}

// writeText prints the quota lines of explain.
func (v *QuotaView) writeText(w io.Writer) {
	if v == nil {
		return
	}
	switch v.Source {
	case "vdeliver_quota_maps":
		fmt.Fprintf(w, "quota:        %s (vdeliver_quota_maps %q, %s)\n", v.Limit, v.Key, v.Table)
	case "maildirsize":
		fmt.Fprintf(w, "quota:        %s (the quota line of %s)\n", v.Limit, v.File)
	default:
		fmt.Fprintf(w, "quota:        none\n")
	}
	if v.Source != "none" {
		if v.File != "" {
			fmt.Fprintf(w, "quota usage:  %d bytes in %d messages\n", v.UsageBytes, v.UsageCount)
		} else {
			fmt.Fprintf(w, "quota usage:  %d bytes (the mbox file)\n", v.UsageBytes)
		}
		if v.File != "" {
			fmt.Fprintf(w, "quota check:  %s (message %d bytes)\n", v.Verdict, v.Message)
		} else {
			fmt.Fprintf(w, "quota check:  %s\n", v.Verdict)
		}
	}
	if v.Note != "" {
		fmt.Fprintf(w, "quota note:   %s\n", v.Note)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "quota error:  %s\n", v.Error)
	}
}

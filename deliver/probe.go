package deliver

import (
	"errors"
	"time"

	"vdeliver/quota"
)

// StorageProbe is the last part of a delivery that explain runs for real: the identity
// switch, the base opened after it, and the storage step's checks up to its first write
// (maildir.Probe, mbox.Probe), for one resolved recipient. It carries everything that part
// reads, so that it can run in a process of its own: explain, started as root, cannot
// switch to the recipient and back, so it runs the probe in a child that does (see
// main's explain). The tables are not read there: the child may not be able to.
type StorageProbe struct {
	Base    string `json:"base"`
	Path    string `json:"path"`
	Maildir bool   `json:"maildir"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Limit   int64  `json:"limit"`
	// Quota is the recipient's quota from vdeliver_quota_maps, nil without a table result
	// (a Maildir's maildirsize may still hold one). The probe judges it as the recipient,
	// with the delivery's policy (run.probeQuota).
	Quota          *quota.Limit  `json:"quota,omitempty"`
	OverquotaDefer bool          `json:"overquota_defer,omitempty"`
	Locks          []string      `json:"locks"`
	LockAttempts   int           `json:"lock_attempts"`
	LockDelay      time.Duration `json:"lock_delay"`
	StaleLock      time.Duration `json:"stale_lock"`
	StrictOwner    bool          `json:"strict_owner"`
	OrigRcpt       bool          `json:"enable_original_recipient"`
	Env            Envelope      `json:"envelope"`
	Message        []byte        `json:"message"` // normalized, as Run writes it
}

// RunProbe runs p in this process, which must be the one that may switch to the
// recipient (root) or already is the recipient: the same steps as a delivery (run.enter,
// then the storage step's checks), and the status the delivery would give, or a 2.0.0
// when it would reach the write. It changes this process's identity for good.
func RunProbe(p StorageProbe) *Status {
	s := &Settings{Base: p.Base, Limit: p.Limit, Locks: p.Locks, LockAttempts: p.LockAttempts, LockDelay: p.LockDelay,
		StaleLock: p.StaleLock, StrictOwner: p.StrictOwner, OrigRcpt: p.OrigRcpt, OverquotaDefer: p.OverquotaDefer}
	r := &run{s: s, opt: Options{Now: time.Now}, msg: p.Message}
	defer r.close()
	t := &Target{Path: p.Path, Maildir: p.Maildir, UID: p.UID, GID: p.GID}
	if p.Quota != nil {
		t.Quota = &TargetQuota{Limit: *p.Quota}
	}
	if st := r.enter(t); st != nil {
		return st
	}
	return r.probe(p.Env, t)
}

// ProbeResult is a Status as the probe's process hands it back.
type ProbeResult struct {
	Exit   int    `json:"exit"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	Quota  string `json:"quota,omitempty"` // the quota's verdict when it decided (quotaMark)
}

// Result is st for the probe's caller.
func (st *Status) Result() ProbeResult {
	r := ProbeResult{Exit: st.Exit, Code: st.Code, Reason: st.Reason, Quota: quotaVerdict(st.Err)}
	if st.Err != nil {
		r.Detail = st.Err.Error()
	}
	return r
}

// Status is the Status r describes; a result that is not one a Status can be (a broken
// child) is a 4.3.0, as any unclassified failure.
func (r ProbeResult) Status() *Status {
	var err error
	if r.Detail != "" {
		err = errors.New(r.Detail)
		if r.Quota != "" {
			err = quotaMark{err, r.Quota}
		}
	}
	st := &Status{Exit: r.Exit, Code: r.Code, Reason: r.Reason, Err: err}
	if len(r.Code) < 5 || (r.Code[0] == '2') != (r.Exit == 0) || (r.Code[0] == '4') != (r.Exit == ExTempFail) || r.Reason == "" {
		return Deferf(CodeSystem, errors.Join(errors.New("storage probe gave a malformed answer"), err), "temporary failure")
	}
	return st
}

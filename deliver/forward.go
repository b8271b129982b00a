package deliver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"vdeliver/forward"
)

// aliasOwner is the uid and gid to forward as when vdeliver was started as root and no
// mailbox of the run has set them: virtual_uid_maps and virtual_gid_maps looked up with
// the alias, validated as for a mailbox.
func (s *Settings) aliasOwner(ctx context.Context, alias string) (uid, gid uint32, st *Status) {
	t := &Target{Recipient: alias, Folded: fold(alias)}
	keys, err := s.searchKeys(ctx, t.Folded)
	if err != nil {
		return 0, 0, Deferf(CodeConfig, fmt.Errorf("mydestination: %w", err), "mail system configuration error")
	}
	return s.owner(ctx, t, keys)
}

// forwardAs makes sure the forward command will not run as root: started as root, the
// run becomes the alias's owner (unless a mailbox already set the identity).
func (r *run) forwardAs(ctx context.Context, alias string) *Status {
	if r.id.switched || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, st := r.s.aliasOwner(ctx, alias)
	if st != nil {
		return st
	}
	if err := r.id.become(uid, gid); err != nil {
		return Deferf(CodeConfig, err, "mail system configuration error")
	}
	return nil
}

// forward hands the message for addr, an address outside the virtual mailbox domains, to
// the forward command (package forward). alias is the recipient whose expansion produced
// addr: the Delivered-To line names it, so that a forward that comes back is caught by
// the loop check, as local(8) does for .forward. Return-Path and X-Original-To are not
// added: they belong to final delivery.
//
// The command's end is read as pipe(8) reads a command's: 0 delivered; 75 (EX_TEMPFAIL)
// or 71 (EX_OSERR), death by a signal, our deadline, or a command that cannot be started
// defer (4.3.0); any other status bounces 5.3.0. Its output goes to the log only.
func (r *run) forward(ctx context.Context, alias string, env Envelope, addr string) *Status {
	// Belt and braces: forwardAs has switched identity; never hand root to a command.
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return Deferf(CodeConfig, errors.New("refusing to run the forward command as root"), "mail system configuration error")
	}
	sender := "<>"
	if env.Sender != "" {
		sender = Quote822Local(env.Sender)
	}
	res := forward.Run(ctx, forward.Command{
		Argv: r.opt.ForwardCommand, Sender: sender, Recipient: Quote822Local(alias), Address: Quote822Local(addr),
		Message: r.msg, Getenv: r.opt.Getenv,
	})
	detail := func(what string) error {
		return fmt.Errorf("forward command %q for %s: %s; output: %q", strings.Join(res.Args, " "), addr, what, res.Output)
	}
	switch {
	case ctx.Err() != nil:
		return Deferf(CodeSystem, detail(ctx.Err().Error()), "forward command time limit exceeded")
	case res.Err == nil:
		return Delivered("forwarded").withLog(strings.Join(res.Args, " "))
	case res.Signal != 0:
		return Deferf(CodeSystem, detail(res.Err.Error()), "forward command died with signal %d", res.Signal)
	case res.Exited:
		switch code := res.ExitCode; code {
		case ExTempFail, ExOSErr:
			return Deferf(CodeSystem, detail(res.Err.Error()), "forward command: temporary failure (exit status %d)", code)
		default:
			return Bouncef(CodeWriteError, detail(res.Err.Error()), "forward command failed with exit status %d", code)
		}
	}
	// Not started (missing, not executable): pipe(8)'s child would exit 75 here.
	return Deferf(CodeSystem, detail(res.Err.Error()), "forward command: temporary failure")
}

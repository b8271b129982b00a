package deliver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"vdeliver/maildir"
	"vdeliver/mbox"
)

// classify turns a storage error into the status the MTA sees, by the storage table of
// the package doc's "What bounces, what defers". The reason shown to the sender names no
// path; err keeps it for the log.
func classify(err error, isMaildir bool) *Status {
	var md *maildir.Error
	var mb *mbox.Error
	prefix := "delivery failed to mailbox: "
	if isMaildir {
		prefix = "maildir delivery failed: "
	}
	switch {
	case errors.As(err, &md):
		def := CodeMailboxBusy
		text := "create maildir file: " + errnoText(md.Err)
		if md.Op == "write" {
			def = CodeWriteError
			text = "error writing message: " + errnoText(md.Err)
		}
		if errors.Is(err, maildir.ErrTooLarge) {
			return Bouncef(CodeMailboxFull, err, "%serror writing message: File too large", prefix)
		}
		if errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w (create the maildir in advance, or give the recipient's uid write access to its parent directory)", err)
		}
		return dsn(err, def, prefix+text)
	case errors.As(err, &mb):
		switch {
		case errors.Is(err, mbox.ErrNotRegular):
			return Bouncef(CodeNotRegular, err, "mail system configuration error")
		case errors.Is(err, mbox.ErrTooLarge):
			return Bouncef(CodeMailboxFull, err, "%serror writing message: File too large", prefix)
		}
		def := CodeMailboxBusy
		if mb.Op == "write" {
			def = CodeWriteError
		}
		return dsn(err, def, prefix+mb.Reason())
	}
	return Deferf(CodeSystem, err, "temporary failure")
}

// dsn is mbox_dsn(): the errno decides where it knows better than the step's default.
func dsn(err error, def, reason string) *Status {
	var code string
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ESTALE):
		code = CodeMailboxBusy
	case errors.Is(err, syscall.ENOSPC):
		code = CodeSystem
	case errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		code = CodeMailboxFull
	default:
		code = def
	}
	if code[0] == '4' {
		return Deferf(code, err, "%s", reason)
	}
	return Bouncef(code, err, "%s", reason)
}

// errnoText is the strerror of the innermost errno, without the path an *os.PathError
// would add.
func errnoText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return capitalize(en.Error())
	}
	if err == nil {
		return "unknown error"
	}
	// The causes the storage packages name themselves, with no path in their text.
	for _, known := range []error{maildir.ErrTmpReplaced} {
		if errors.Is(err, known) {
			return capitalize(known.Error())
		}
	}
	// Not an errno (beneath.ErrEscapes, "path escapes from parent", say): keep the cause,
	// drop the path, which is for the log only.
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return capitalize(pe.Err.Error())
	case errors.As(err, &le):
		return capitalize(le.Err.Error())
	}
	return "unknown error"
}

// capitalize matches C's strerror() ("No space left on device"), which Go spells in
// lower case.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

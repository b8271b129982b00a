package deliver

import (
	"fmt"
	"strings"
)

// Exit codes of sysexits(3), as pipe(8) reads them (src/global/sys_exits.c). Only 75 and
// 71 defer; every other non-zero exit bounces.
const (
	ExOK          = 0
	ExUsage       = 64
	ExDataErr     = 65
	ExNoInput     = 66
	ExNoUser      = 67
	ExNoHost      = 68
	ExUnavailable = 69
	ExSoftware    = 70
	ExOSErr       = 71
	ExOSFile      = 72
	ExCantCreat   = 73
	ExIOErr       = 74
	ExTempFail    = 75
	ExProtocol    = 76
	ExNoPerm      = 77
	ExConfig      = 78
)

// Enhanced status codes (RFC 3463) that vdeliver answers with. No other file spells a code.
const (
	CodeDelivered   = "2.0.0" // delivered to mailbox or maildir
	CodeMailboxBusy = "4.2.0" // lock not obtained, mailbox refused by the safe-open rules
	// CodeMailboxFullTemp is over quota with vdeliver_overquota_status = defer.
	CodeMailboxFullTemp = "4.2.2"
	CodeSystem          = "4.3.0" // disk full, unclassified failure, panic
	CodeConfig          = "4.3.5" // configuration or table error, bad command line
	CodeUnknownUser     = "5.1.1" // not in virtual_mailbox_maps
	CodeUnknownDomain   = "5.1.2" // not a virtual mailbox domain
	CodeBadRcptSyntax   = "5.1.3" // recipient that cannot be a mail address
	CodeBadSender       = "5.1.7" // sender that cannot be a mail address
	CodeMailboxFull     = "5.2.2" // quota or virtual_mailbox_limit
	CodeWriteError      = "5.3.0" // write error other than space or quota
	CodeTooBig          = "5.3.4" // message larger than vdeliver holds
	CodeNotRegular      = "5.3.5" // mailbox is a device or other non-regular file
	CodeLoop            = "5.4.6" // Delivered-To loop
	CodeBadMessage      = "5.6.0" // message that cannot be delivered as it is

	// CodeAliasExpansion is cleanup(8)'s "4.6.0 Alias expansion error": an alias loop or
	// a virtual_alias_* limit hit.
	CodeAliasExpansion = "4.6.0"
)

// bounceExit pairs each permanent code with the sysexits value whose pipe(8) meaning is
// closest, so an MTA that reads only the exit status reaches the same verdict.
var bounceExit = map[string]int{
	CodeUnknownUser:   ExNoUser,
	CodeUnknownDomain: ExNoHost,
	CodeBadRcptSyntax: ExDataErr,
	CodeBadSender:     ExDataErr,
	CodeMailboxFull:   ExCantCreat,
	CodeWriteError:    ExIOErr,
	CodeTooBig:        ExCantCreat,
	CodeNotRegular:    ExConfig,
	CodeLoop:          ExUnavailable,
	CodeBadMessage:    ExDataErr,
}

// Status is the outcome of one delivery attempt as the MTA will see it: Exit for the
// process status, Code and Reason for the one line printed, Err for the log only (paths,
// table names and OS errors stay out of what the sender is shown).
type Status struct {
	Exit   int
	Code   string
	Reason string
	Err    error
}

// Deferf returns a temporary failure: exit 75 and a 4.x.x code.
func Deferf(code string, err error, format string, args ...any) *Status {
	if !strings.HasPrefix(code, "4.") {
		panic("deliver: Deferf with non-4.x.x code " + code)
	}
	return &Status{Exit: ExTempFail, Code: code, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Bouncef returns a permanent failure with the exit value paired with code.
func Bouncef(code string, err error, format string, args ...any) *Status {
	exit, ok := bounceExit[code]
	if !ok {
		panic("deliver: Bouncef with unpaired code " + code)
	}
	return &Status{Exit: exit, Code: code, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Delivered returns the success status.
func Delivered(format string, args ...any) *Status {
	return &Status{Exit: ExOK, Code: CodeDelivered, Reason: fmt.Sprintf(format, args...)}
}

func (s *Status) Error() string   { return s.Code + " " + s.Reason }
func (s *Status) Unwrap() error   { return s.Err }
func (s *Status) Temporary() bool { return strings.HasPrefix(s.Code, "4.") }
func (s *Status) OK() bool        { return s.Exit == ExOK }

// Line is the status as pipe(8) must read it: the code at offset 0, one space, and the
// reason made printable (control bytes and non-UTF-8 become '_', as pipe(8) would show
// them anyway), within Postfix's 4096-byte output buffer.
func (s *Status) Line() string {
	const max = 1000 // well inside pipe(8)'s 4096 bytes, room for the MTA's own prefix
	var b strings.Builder
	b.WriteString(s.Code)
	b.WriteByte(' ')
	for _, r := range strings.ToValidUTF8(s.Reason, "_") {
		if b.Len() >= max {
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SoftBounce turns a bounce into a deferral, for soft_bounce = yes (Postfix's safety net
// while a configuration is being tested).
func (s *Status) SoftBounce() *Status {
	if !strings.HasPrefix(s.Code, "5.") {
		return s
	}
	return &Status{Exit: ExTempFail, Code: "4" + s.Code[1:], Reason: s.Reason, Err: s.Err}
}

// Worst combines the outcomes of several recipients into the one exit status the caller
// sees: any deferral wins (the MTA retries and the journal-less retry may duplicate, which
// beats a loss), then any bounce, else success.
func Worst(all []*Status) *Status {
	var worst *Status
	rank := func(s *Status) int {
		switch {
		case s.Temporary():
			return 2
		case !s.OK():
			return 1
		}
		return 0
	}
	for _, s := range all {
		if worst == nil || rank(s) > rank(worst) {
			worst = s
		}
	}
	return worst
}

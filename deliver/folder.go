package deliver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"vdeliver/internal/beneath"
	"vdeliver/maildir"
)

// Extension folders (vdeliver_extension_folders, docs/behaviour.md §13.24): the
// recipient's address extension names a Maildir++ folder of its Maildir, as Dovecot's
// LDA and LMTP use the "detail". The choice of the folder is policy and lives here; the
// folder's creation is storage and lives in package maildir.

// folderChoice is where a Maildir recipient's message goes under extension folders.
type folderChoice struct {
	Ext    string // the address extension, "" when the address has none
	Dir    string // the folder's directory name (".lists"); "" for INBOX
	Reason string // why INBOX although there is an extension; "" when nothing to say
	Own    bool   // the address with its extension has a mailbox of its own: no warning
}

// maxFolderName is the longest directory name most file systems hold (NAME_MAX).
const maxFolderName = 255

// errOwnMailbox says why an address whose full form (extension included) has a mailbox
// of its own gets no folder: the administrator chose that mailbox.
var errOwnMailbox = errors.New("the address with its extension has a mailbox of its own")

// chooseFolder picks the folder name for t from its extension, without touching the disk.
// Only Maildir recipients with an extension get one, and only when the mailbox was found
// by a key without the extension.
func (s *Settings) chooseFolder(t *Target) folderChoice {
	if !s.ExtensionFolders || !t.Maildir {
		return folderChoice{}
	}
	local, domain, hasAt := splitAt(t.Folded)
	ext, split := splitExtension(local, s.Delimiters, s.DoubleBounce, s.OwnerRequest)
	if !split || ext.Ext == "" {
		return folderChoice{}
	}
	c := folderChoice{Ext: ext.Ext}
	full := map[string]bool{local: true, Quote822Local(local): true}
	if hasAt {
		full[local+"@"+domain] = true
		full[Quote822Local(local+"@"+domain)] = true
	}
	for _, p := range t.Probes {
		if p.Map == "virtual_mailbox_maps" && p.Found && full[p.Key] {
			c.Reason, c.Own = errOwnMailbox.Error(), true
			return c
		}
	}
	dir, err := folderDir(ext.Ext)
	if err != nil {
		c.Reason = err.Error()
		return c
	}
	c.Dir = dir
	return c
}

// folderDir turns an address extension into the directory name of its Maildir++ folder,
// as Dovecot stores the mailbox of that name in its default Maildir++ layout: folded to
// lower case, '.' separating the levels ("a.b" is the folder b inside a, directory
// ".a.b"), "inbox" being INBOX itself (dir "") and an "inbox." prefix written "INBOX.",
// and the name in modified UTF-7 (RFC 3501 5.1.3: '&' is "&-", non-ASCII text is
// "&<base64 of UTF-16>-"). It refuses what could leave the Maildir or what Dovecot would
// refuse or misread: '/', a leading or trailing '.', "..", control characters, invalid
// UTF-8 and a name too long for a directory.
func folderDir(ext string) (string, error) {
	switch {
	case ext == "":
		return "", errors.New("is empty")
	case strings.IndexByte(ext, '/') >= 0:
		return "", errors.New(`contains "/"`)
	case strings.Contains(ext, ".."):
		return "", errors.New(`contains ".."`)
	case strings.HasPrefix(ext, "."):
		return "", errors.New(`starts with "."`)
	case strings.HasSuffix(ext, "."):
		return "", errors.New(`ends with "."`)
	case hasControl(ext):
		return "", errors.New("contains a control character")
	case !utf8.ValidString(ext):
		return "", errors.New("is not valid UTF-8")
	}
	// Lower-casing valid UTF-8 never makes a '.', '/' or control character, so the
	// checks above hold for the folded name too.
	name := strings.ToLower(ext)
	if name == "inbox" {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(name, "inbox."); ok {
		name = "INBOX." + rest
	}
	dir := "." + mutf7(name)
	if len(dir) > maxFolderName {
		return "", fmt.Errorf("is too long for a folder (%d bytes, at most %d)", len(dir), maxFolderName)
	}
	return dir, nil
}

// mutf7Encoding is RFC 3501's modified BASE64: ',' for '/', no padding.
var mutf7Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// mutf7 is s (valid UTF-8) in IMAP's modified UTF-7: printable ASCII stands for itself
// except '&', written "&-"; every run of other characters is "&", the modified BASE64 of
// its UTF-16 big-endian bytes, and "-".
func mutf7(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		raw := make([]byte, 0, 2*len(u))
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(mutf7Encoding.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// folderPath is the maildir a message for t goes into under extension folders: the
// folder when it exists (or, with vdeliver_folder_autocreate, once it is created), else
// t's own Maildir (INBOX). Whenever the extension named a folder that cannot be used (a
// refused name, a name that is no directory, a failure to look or to create) the
// message goes to INBOX with a log line saying why, as Dovecot's delivery falls back
// to INBOX: a folder is a convenience, never a reason to hold mail back. It runs after
// run.enter: as the recipient, beneath the base.
func (r *run) folderPath(env Envelope, t *Target) string {
	c := r.s.chooseFolder(t)
	note := func(why string) string {
		r.opt.Log(fmt.Sprintf("%s: warning: to=<%s>: extension %q: %s: delivering to INBOX", queueLabel(env.QueueID), env.Recipient, c.Ext, why))
		return t.Path
	}
	if c.Dir == "" {
		if c.Reason != "" && !c.Own {
			return note("folder name refused: " + c.Reason)
		}
		return t.Path
	}
	ok, err := maildir.FolderExists(r.root, t.Path, c.Dir)
	switch {
	case ok:
		return folderOf(t.Path, c.Dir)
	case err != nil:
		return note(fmt.Sprintf("folder %s: %v", c.Dir, err))
	case !r.s.FolderAutocreate:
		return t.Path
	}
	if err := maildir.CreateFolder(r.root, t.Path, c.Dir); err != nil {
		return note(err.Error())
	}
	return folderOf(t.Path, c.Dir)
}

// folderOf is the maildir path of the folder dir of the maildir path: "" (the base
// itself) stays relative.
func folderOf(path, dir string) string {
	if p := strings.TrimRight(path, "/"); p != "" {
		return p + "/" + dir + "/"
	}
	return dir + "/"
}

// explainFolder is folderPath for explain: the folder a delivery would choose for t
// ("INBOX" or its directory name), why, and the maildir the storage probe should check.
// Whether the folder exists is looked at with this process's rights, as explain's
// confinement line is; nothing is created.
func (s *Settings) explainFolder(t *Target) (folder, note, path string) {
	c := s.chooseFolder(t)
	switch {
	case c.Ext == "":
		return "INBOX", "the address has no extension", t.Path
	case c.Dir == "" && c.Reason == "":
		return "INBOX", fmt.Sprintf("extension %q is INBOX", c.Ext), t.Path
	case c.Own:
		return "INBOX", c.Reason, t.Path
	case c.Dir == "":
		return "INBOX", fmt.Sprintf("extension %q: folder name refused: %s", c.Ext, c.Reason), t.Path
	}
	folderPath := folderOf(t.Path, c.Dir)
	root, err := beneath.Open(s.Base)
	if err != nil {
		return "INBOX", fmt.Sprintf("folder %s: base: %v", c.Dir, err), t.Path
	}
	defer root.Close()
	ok, err := maildir.FolderExists(root, t.Path, c.Dir)
	switch {
	case ok:
		return c.Dir, "exists", folderPath
	case err != nil:
		return "INBOX", fmt.Sprintf("folder %s: %v", c.Dir, err), t.Path
	case s.FolderAutocreate:
		return c.Dir, "does not exist: the delivery creates it, vdeliver_folder_autocreate = yes", folderPath
	}
	return "INBOX", fmt.Sprintf("%s does not exist and vdeliver_folder_autocreate = no", c.Dir), t.Path
}

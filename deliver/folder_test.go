package deliver

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// TestFolderDir: the directory names are the ones Dovecot 2.3's default Maildir++
// layout gives ("doveadm mailbox create" of the folded name), and every name that could
// leave the Maildir or that Dovecot refuses is refused.
func TestFolderDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ext, want string
		refused   string // a part of the reason; "" when accepted
	}{
		{"lists", ".lists", ""},
		{"Lists", ".lists", ""},
		{"a.b", ".a.b", ""},
		{"sp ace", ".sp ace", ""},
		{"p%q", ".p%q", ""},
		{"x&y", ".x&-y", ""},
		{"ü", ".&APw-", ""},
		{"Ü", ".&APw-", ""},
		{"a€b", ".a&IKw-b", ""},
		{"inbox", "", ""},
		{"INBOX", "", ""},
		{"inbox.x", ".INBOX.x", ""},
		{"inboxes", ".inboxes", ""},
		{"", "", "empty"},
		{"a/b", "", `"/"`},
		{"..", "", `".."`},
		{"a..b", "", `".."`},
		{".hidden", "", `starts with "."`},
		{"a.", "", `ends with "."`},
		{"tab\tx", "", "control"},
		{"nl\nx", "", "control"},
		{"del\x7f", "", "control"},
		{"bad\xff", "", "UTF-8"},
		{strings.Repeat("a", 254), "." + strings.Repeat("a", 254), ""},
		{strings.Repeat("a", 255), "", "too long"},
	}
	for _, tc := range tests {
		got, err := folderDir(tc.ext)
		switch {
		case tc.refused == "" && (err != nil || got != tc.want):
			t.Errorf("folderDir(%q) = %q, %v; want %q", tc.ext, got, err, tc.want)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("folderDir(%q) = %q, %v; want refused (%s)", tc.ext, got, err, tc.refused)
		}
	}
}

// TestChooseFolder: the extension is used only with vdeliver_extension_folders, only for
// a Maildir, and only when the mailbox was found without it.
func TestChooseFolder(t *testing.T) {
	t.Parallel()
	s := &Settings{ExtensionFolders: true, Delimiters: "+", DoubleBounce: "double-bounce", OwnerRequest: true}
	hit := func(key string) []Probe {
		return []Probe{{Map: "virtual_mailbox_maps", Key: "alice+lists@example.com"}, {Map: "virtual_mailbox_maps", Key: key, Found: true}}
	}
	tests := []struct {
		name   string
		s      *Settings
		t      Target
		dir    string
		reason string
	}{
		{"folder", s, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("alice@example.com")}, ".lists", ""},
		{"catch-all", s, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("@example.com")}, ".lists", ""},
		{"off", &Settings{Delimiters: "+"}, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("alice@example.com")}, "", ""},
		{"mbox", s, Target{Folded: "alice+lists@example.com", Probes: hit("alice@example.com")}, "", ""},
		{"no extension", s, Target{Folded: "alice@example.com", Maildir: true, Probes: hit("alice@example.com")}, "", ""},
		{"empty extension", s, Target{Folded: "alice+@example.com", Maildir: true, Probes: hit("alice@example.com")}, "", ""},
		{"no delimiter", &Settings{ExtensionFolders: true}, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("@example.com")}, "", ""},
		{"own mailbox", s, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("alice+lists@example.com")}, "", "own"},
		{"own mailbox, local domain", s, Target{Folded: "alice+lists@example.com", Maildir: true, Probes: hit("alice+lists")}, "", "own"},
		{"postmaster", s, Target{Folded: "postmaster@example.com", Maildir: true, Probes: hit("postmaster@example.com")}, "", ""},
		{"refused", s, Target{Folded: "alice+a..b@example.com", Maildir: true, Probes: hit("alice@example.com")}, "", `".."`},
	}
	for _, tc := range tests {
		c := tc.s.chooseFolder(&tc.t)
		if c.Dir != tc.dir || (tc.reason == "") != (c.Reason == "") || !strings.Contains(c.Reason, tc.reason) {
			t.Errorf("%s: chooseFolder = %+v; want dir %q, reason with %q", tc.name, c, tc.dir, tc.reason)
		}
	}
}

// unmutf7 decodes IMAP's modified UTF-7, independently of mutf7: for the fuzz target.
func unmutf7(s string) (string, bool) {
	var b strings.Builder
	enc := base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)
	for s != "" {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return "", false
		}
		chunk := s[i+1 : i+end]
		s = s[i+end+1:]
		if chunk == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := enc.DecodeString(chunk)
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		b.WriteString(string(utf16.Decode(u)))
	}
	return b.String(), true
}

// FuzzFolderDir: an accepted extension gives one path element that starts with '.', is
// not "." or "..", has no '/', no empty level and no control character, is printable
// ASCII, fits a directory name, and decodes (modified UTF-7) back to the folded
// extension; a refused one gives no name.
func FuzzFolderDir(f *testing.F) {
	for _, s := range []string{"lists", "a.b", "x&y", "ü€", "inbox", "inbox.x", "../x", ".a", "a.", "a\tb", "\xff", "😀&a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ext string) {
		dir, err := folderDir(ext)
		if err != nil {
			if dir != "" {
				t.Fatalf("folderDir(%q) = %q with error %v", ext, dir, err)
			}
			return
		}
		if dir == "" {
			if strings.ToLower(ext) != "inbox" {
				t.Fatalf("folderDir(%q) = INBOX", ext)
			}
			return
		}
		if !strings.HasPrefix(dir, ".") || dir == "." || dir == ".." || strings.Contains(dir, "/") ||
			strings.Contains(dir, "..") || strings.HasSuffix(dir, ".") || len(dir) > maxFolderName {
			t.Fatalf("folderDir(%q) = %q: not one Maildir++ folder element", ext, dir)
		}
		for i := 0; i < len(dir); i++ {
			if dir[i] < 0x20 || dir[i] > 0x7e {
				t.Fatalf("folderDir(%q) = %q: byte %#x", ext, dir, dir[i])
			}
		}
		back, ok := unmutf7(dir[1:])
		want := strings.ToLower(ext)
		if rest, cut := strings.CutPrefix(want, "inbox."); cut {
			want = "INBOX." + rest
		}
		if !ok || back != want || !utf8.ValidString(back) {
			t.Fatalf("folderDir(%q) = %q decodes to %q, %v; want %q", ext, dir, back, ok, want)
		}
	})
}

// TestFolderDirSurrogates: a character outside the BMP is a UTF-16 surrogate pair, as
// Dovecot writes it ("x😀&y" is ".x&2D3eAA-&-y").
func TestFolderDirSurrogates(t *testing.T) {
	t.Parallel()
	if got, err := folderDir("x😀&y"); err != nil || got != ".x&2D3eAA-&-y" {
		t.Errorf(`folderDir("x😀&y") = %q, %v; want ".x&2D3eAA-&-y"`, got, err)
	}
}

package maincf

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLogicalLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		text     string
		want     map[string]string // every explicit name and its raw value
		warnings []string
	}{
		{
			name: "name = value",
			text: "a = 1\nb=2\nc\t=\t3 \t\nd =\ne=\n",
			want: map[string]string{"a": "1", "b": "2", "c": "3", "d": "", "e": ""},
		},
		{
			name: "value keeps inner whitespace and equals signs",
			text: "a =  x  y = z  \n",
			want: map[string]string{"a": "x  y = z"},
		},
		{
			name: "comment only at line start",
			text: "# a = 1\n   # b = 2\n\t#c = 3\nd = 4 # not a comment\n",
			want: map[string]string{"d": "4 # not a comment"},
		},
		{
			name: "blank lines dropped",
			text: "\n\n   \n\t\na = 1\n\n",
			want: map[string]string{"a": "1"},
		},
		{
			name: "continuation keeps its leading whitespace",
			text: "a = b,\n   c\n\td\n",
			want: map[string]string{"a": "b,   c\td"},
		},
		{
			// docs/behaviour.md §9.1: comment and blank lines inside a logical line do not end it.
			name: "comment and blank line inside continuation",
			text: "k1 = v1\n\n  cont\n# c\n  more\nk2 = v2\n",
			want: map[string]string{"k1": "v1  cont  more", "k2": "v2"},
		},
		{
			name: "continuation of the name",
			text: "a\n = 1\n",
			want: map[string]string{"a": "1"},
		},
		{
			name: "leading continuation dropped with a warning",
			text: "  orphan = 1\n\tmore\na = 2\n",
			want: map[string]string{"a": "2"},
			warnings: []string{
				`main.cf:1: logical line must not start with whitespace: "  orphan = 1\tmore"`,
			},
		},
		{
			name: "CRLF line ends",
			text: "a = 1\r\n\r\nb = x,\r\n  y\r\n",
			want: map[string]string{"a": "1", "b": "x,\r  y"},
		},
		{
			name: "no final newline",
			text: "a = 1\nb = 2",
			want: map[string]string{"a": "1", "b": "2"},
		},
		{
			name: "empty file",
			text: "",
			want: map[string]string{},
		},
		{
			name: "names may hold any non-space character",
			text: "foo-bar.baz = 1\n",
			want: map[string]string{"foo-bar.baz": "1"},
		},
		{
			name: "later duplicate wins with a warning naming the old value",
			text: "dup = 1\ndup = 2\ndup = 2\n# x\ndup = 2\n\tcont\n",
			want: map[string]string{"dup": "2\tcont"},
			warnings: []string{
				"main.cf:2: overriding earlier entry: dup=1",
				"main.cf:5: overriding earlier entry: dup=2",
			},
		},
		{
			name: "text after NUL ignored",
			text: "a = 1\x002\nb = x\n\t\x00y\n",
			want: map[string]string{"a": "1", "b": "x"},
			warnings: []string{
				"main.cf:1: text after null byte may be ignored",
				"main.cf:2: text after null byte may be ignored",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(strings.NewReader(tc.text), "main.cf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := map[string]string{}
			for _, n := range c.Names() {
				got[n], _ = c.Raw(n)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
			var warnings []string
			for _, w := range c.Warnings() {
				warnings = append(warnings, w.String())
			}
			if d := cmp.Diff(tc.warnings, warnings); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want string
	}{
		{"missing equals", "a = 1\n\n# c\nfoo bar\n", `main.cf:4: missing '=' after attribute name: "foo bar"`},
		{"name only", "foo\n", `main.cf:1: missing '=' after attribute name: "foo"`},
		{"missing name", "a = 1\n= 2\n", `main.cf:2: missing attribute name: "= 2"`},
		{"error on first line of a continued line", "a = 1\nb\n  c\n", `main.cf:2: missing '=' after attribute name: "b  c"`},
		{"NUL first", "\x00a = 1\n", `main.cf:1: missing attribute name: ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(strings.NewReader(tc.text), "main.cf")
			if c != nil || err == nil || err.Error() != tc.want || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse = %v, %v; want nil and %q wrapping ErrSyntax", c, err, tc.want)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, fs.ErrPermission }

func TestParseReadError(t *testing.T) {
	t.Parallel()
	_, err := Parse(failingReader{}, "main.cf")
	if !errors.Is(err, fs.ErrPermission) || errors.Is(err, ErrSyntax) {
		t.Fatalf("Parse = %v; want the read error", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "main.cf")
	text := "virtual_mailbox_base = /var/mail/vhosts\nvirtual_mailbox_maps = hash:$config_directory/vmailbox\nvirtual_mailbox_base = /srv/vmail\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", c.Dir(), dir)
	}
	check := func(name, want string) {
		t.Helper()
		if got, err := c.Get(name); err != nil || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	check("config_directory", dir)
	check("virtual_mailbox_maps", "hash:"+dir+"/vmailbox")
	check("virtual_mailbox_domains", "hash:"+dir+"/vmailbox")
	check("virtual_mailbox_base", "/srv/vmail")
	if f, l := c.Line("virtual_mailbox_base"); f != file || l != 3 {
		t.Errorf("Line = %q, %d; want %q, 3", f, l, file)
	}
	want := []Warning{{File: file, Line: 3, Msg: "overriding earlier entry: virtual_mailbox_base=/var/mail/vhosts"}}
	if d := cmp.Diff(want, c.Warnings()); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(no main.cf) = %v; want fs.ErrNotExist", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(no directory) = %v; want fs.ErrNotExist", err)
	}
	// A directory where main.cf should be: the read fails, not the parse.
	bad := t.TempDir()
	if err := os.Mkdir(filepath.Join(bad, "main.cf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || errors.Is(err, ErrSyntax) {
		t.Errorf("Load(main.cf is a directory) = %v; want a read error", err)
	}
	syntax := t.TempDir()
	if err := os.WriteFile(filepath.Join(syntax, "main.cf"), []byte("a = 1\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(syntax, "main.cf") + `:2: missing '=' after attribute name: "b"`
	if _, err := Load(syntax); err == nil || err.Error() != want || !errors.Is(err, ErrSyntax) {
		t.Errorf("Load(bad line) = %v; want %q", err, want)
	}
}

func TestLoadUnreadable(t *testing.T) {
	if dir := os.Getenv("MAINCF_UNREADABLE"); dir != "" {
		// The child below, run as uid 5000.
		if _, err := Load(dir); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Load = %v; want fs.ErrPermission", err)
		}
		return
	}
	t.Parallel()
	top, err := os.MkdirTemp("", "maincf-unreadable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	dir := filepath.Join(top, "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("a = 1\n"), 0); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if _, err := Load(dir); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Load = %v; want fs.ErrPermission", err)
		}
		return
	}
	// Root reads any file: the same check runs in a child as uid 5000, which cannot.
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "maincf.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestLoadUnreadable$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "MAINCF_UNREADABLE="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 5000, Gid: 5000, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLoadUnreadable") {
		t.Fatalf("child as uid 5000: %v\n%s", err, out)
	}
}

func TestOverride(t *testing.T) {
	t.Parallel()
	c, err := Parse(strings.NewReader("virtual_mailbox_maps = hash:/a\nmyorigin = example.com\n"), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{
		"virtual_mailbox_domains=a.com,b.com",
		" recipient_delimiter = + ",
		"myorigin=",
		"virtual_mailbox_maps=hash:/b",
		"new_param = $virtual_mailbox_maps",
	} {
		if err := c.Override(o); err != nil {
			t.Fatalf("Override(%q): %v", o, err)
		}
	}
	want := map[string]string{
		"virtual_mailbox_domains": "a.com,b.com",
		"recipient_delimiter":     "+",
		"myorigin":                "",
		"virtual_mailbox_maps":    "hash:/b",
		"new_param":               "hash:/b",
	}
	for name, v := range want {
		if got, err := c.Get(name); err != nil || got != v {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, err, v)
		}
		if !c.IsSet(name) {
			t.Errorf("IsSet(%q) = false after Override", name)
		}
	}
	if f, l := c.Line("virtual_mailbox_maps"); f != "-o" || l != 4 {
		t.Errorf("Line(overridden) = %q, %d; want \"-o\", 4", f, l)
	}
	if d := cmp.Diff([]string{"myorigin", "new_param", "recipient_delimiter", "virtual_mailbox_domains", "virtual_mailbox_maps"}, c.Names()); d != "" {
		t.Errorf("Names (-want +got):\n%s", d)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("Override produced warnings: %v", c.Warnings())
	}

	for _, bad := range []string{"", "name", "name value", "=value", " = value", "   "} {
		before := c.Names()
		err := c.Override(bad)
		var oe *OverrideError
		if !errors.Is(err, ErrSyntax) || !errors.As(err, &oe) || oe.Setting != bad {
			t.Errorf("Override(%q) = %v; want an *OverrideError wrapping ErrSyntax", bad, err)
		}
		if d := cmp.Diff(before, c.Names()); d != "" {
			t.Errorf("failed Override(%q) changed the names:\n%s", bad, d)
		}
	}
}

func TestSetIsSetRawLine(t *testing.T) {
	t.Parallel()
	c, err := Parse(strings.NewReader("\n\nvirtual_mailbox_base = /srv\n"), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsSet("virtual_mailbox_base") || c.IsSet("virtual_mailbox_maps") || c.IsSet("nonsense") {
		t.Error("IsSet does not tell explicit settings from defaults")
	}
	if v, ok := c.Raw("virtual_mailbox_domains"); !ok || v != "$virtual_mailbox_maps" {
		t.Errorf("Raw(default) = %q, %v", v, ok)
	}
	if v, ok := c.Raw("nonsense"); ok || v != "" {
		t.Errorf("Raw(unknown) = %q, %v; want \"\", false", v, ok)
	}
	if f, l := c.Line("virtual_mailbox_base"); f != "main.cf" || l != 3 {
		t.Errorf("Line = %q, %d", f, l)
	}
	if f, l := c.Line("virtual_mailbox_maps"); f != "" || l != 0 {
		t.Errorf("Line(default) = %q, %d; want \"\", 0", f, l)
	}
	c.Set("virtual_mailbox_maps", "static:$virtual_mailbox_base")
	if v, ok := c.Raw("virtual_mailbox_maps"); !ok || v != "static:$virtual_mailbox_base" {
		t.Errorf("Raw after Set = %q, %v", v, ok)
	}
	if v, err := c.Get("virtual_mailbox_domains"); err != nil || v != "static:/srv" {
		t.Errorf("Get after Set = %q, %v", v, err)
	}
	if !c.IsSet("virtual_mailbox_maps") {
		t.Error("IsSet false after Set")
	}
	if f, l := c.Line("virtual_mailbox_maps"); f != "" || l != 0 {
		t.Errorf("Line after Set = %q, %d; want \"\", 0", f, l)
	}
	if v, err := c.Get("nonsense"); err != nil || v != "" {
		t.Errorf("Get(undefined) = %q, %v; want \"\", nil", v, err)
	}
}

// TestWarningsIsACopy: a caller appending to the slice must not change the Config.
func TestWarningsIsACopy(t *testing.T) {
	t.Parallel()
	c, err := Parse(strings.NewReader("a = 1\na = 2\n"), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	w[0].Msg = "changed"
	if c.Warnings()[0].Msg == "changed" {
		t.Error("Warnings returns the Config's own slice")
	}
}

// TestErrorPosition: every error about the text carries its position in fields, so that
// a caller never parses it out of the text, and the text is that position and Msg.
func TestErrorPosition(t *testing.T) {
	t.Parallel()
	text := "a = 1\nbad = ${x\nn = many\nd = 3x\n"
	c, err := Parse(strings.NewReader(text), "/etc/postfix/main.cf")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Override("ob = ${y"); err != nil {
		t.Fatal(err)
	}
	_, errInt := c.Int("n")
	_, errDur := c.Duration("d")
	_, errDefault := c.Expand("${z")
	_, errOverride := c.Get("ob")
	_, errParse := Parse(strings.NewReader("a = 1\n\nno equals\n"), "/x/main.cf")
	_, errGet := c.Get("bad")
	tests := []struct {
		name       string
		err        error
		file       string
		line       int
		msg        string
		wantString string
	}{
		{"parse", errParse, "/x/main.cf", 3, `missing '=' after attribute name: "no equals"`, `/x/main.cf:3: missing '=' after attribute name: "no equals"`},
		{"get", errGet, "/etc/postfix/main.cf", 2, `bad = ${x: truncated macro reference: "${x"`, `/etc/postfix/main.cf:2: bad = ${x: truncated macro reference: "${x"`},
		{"int", errInt, "/etc/postfix/main.cf", 3, "bad numerical configuration: n = many", "/etc/postfix/main.cf:3: bad numerical configuration: n = many"},
		{"duration", errDur, "/etc/postfix/main.cf", 4, "bad time configuration: d = 3x", "/etc/postfix/main.cf:4: bad time configuration: d = 3x"},
		{"override", errOverride, "-o", 1, `ob = ${y: truncated macro reference: "${y"`, `-o:1: ob = ${y: truncated macro reference: "${y"`},
		{"no position", errDefault, "", 0, `truncated macro reference: "${z"`, `truncated macro reference: "${z"`},
	}
	for _, tc := range tests {
		var pe *Error
		if !errors.As(tc.err, &pe) || !errors.Is(tc.err, ErrSyntax) {
			t.Errorf("%s: %v is not an *Error wrapping ErrSyntax", tc.name, tc.err)
			continue
		}
		if pe.File != tc.file || pe.Line != tc.line || pe.Msg != tc.msg || tc.err.Error() != tc.wantString {
			t.Errorf("%s: %#v, %q; want %s:%d %q, %q", tc.name, pe, tc.err, tc.file, tc.line, tc.msg, tc.wantString)
		}
	}
	err = c.Override("no-equals")
	want := `-o "no-equals": missing '=' after attribute name: syntax error`
	var oe *OverrideError
	if !errors.As(err, &oe) || oe.Setting != "no-equals" || oe.Reason != "missing '=' after attribute name" || err.Error() != want {
		t.Errorf("Override error %#v, %q; want %q", oe, err, want)
	}
}

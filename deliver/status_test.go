package deliver

import (
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"vdeliver/maildir"
)

// Every status vdeliver can answer keeps the pipe(8) contract: class 2 with exit 0, class 4
// with exit 75, class 5 with a bouncing sysexits value (64-78 but not 71 or 75).
func TestStatusInvariants(t *testing.T) {
	var all []*Status
	all = append(all, Delivered("delivered to maildir"))
	for _, code := range []string{CodeMailboxBusy, CodeSystem, CodeConfig} {
		all = append(all, Deferf(code, nil, "x"))
	}
	for code := range bounceExit {
		all = append(all, Bouncef(code, nil, "x"))
	}
	for _, s := range all {
		switch s.Code[0] {
		case '2':
			if s.Exit != 0 {
				t.Errorf("%s: exit %d, want 0", s.Code, s.Exit)
			}
		case '4':
			if s.Exit != ExTempFail || !s.Temporary() {
				t.Errorf("%s: exit %d, want 75", s.Code, s.Exit)
			}
		case '5':
			if s.Exit < 64 || s.Exit > 78 || s.Exit == ExTempFail || s.Exit == ExOSErr {
				t.Errorf("%s: exit %d does not bounce", s.Code, s.Exit)
			}
			soft := s.SoftBounce()
			if soft.Exit != ExTempFail || soft.Code != "4"+s.Code[1:] {
				t.Errorf("%s: soft bounce gives %s/%d", s.Code, soft.Code, soft.Exit)
			}
		default:
			t.Errorf("bad class %q", s.Code)
		}
		if !dsnValid(s.Line()) {
			t.Errorf("%q is not a status line pipe(8) recognises", s.Line())
		}
	}
}

func TestStatusConstructorsRefuseMismatch(t *testing.T) {
	for name, f := range map[string]func(){
		"defer with 5.x.x":  func() { Deferf(CodeUnknownUser, nil, "x") },
		"bounce with 4.x.x": func() { Bouncef(CodeConfig, nil, "x") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestWorst(t *testing.T) {
	ok, bounce, def := Delivered("a"), Bouncef(CodeUnknownUser, nil, "b"), Deferf(CodeConfig, nil, "c")
	for _, tc := range []struct {
		in   []*Status
		want *Status
	}{
		{[]*Status{ok, ok}, ok},
		{[]*Status{ok, bounce}, bounce},
		{[]*Status{bounce, def, ok}, def},
	} {
		if got := Worst(tc.in); got != tc.want {
			t.Errorf("Worst = %v, want %v", got, tc.want)
		}
	}
}

// dsnValid is pipe(8)'s dsn_valid() rule: a class digit, '.', 1-3 digits, '.', 1-3 digits,
// then the end or a space, at offset 0.
func dsnValid(line string) bool {
	if len(line) < 5 || !strings.ContainsRune("245", rune(line[0])) || line[1] != '.' {
		return false
	}
	i := 2
	for part := 0; part < 2; part++ {
		n := 0
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i++
			n++
		}
		if n < 1 || n > 3 {
			return false
		}
		if part == 0 {
			if i >= len(line) || line[i] != '.' {
				return false
			}
			i++
		}
	}
	return i == len(line) || line[i] == ' '
}

func FuzzStatusLine(f *testing.F) {
	f.Add("4.3.5", "mail system configuration error")
	f.Add("5.1.1", "<a@b>: unknown user: \"a@b\"\nsecond line\x00\t\xff")
	f.Add("2.0.0", strings.Repeat("long ", 3000))
	f.Fuzz(func(t *testing.T, code, reason string) {
		var s *Status
		switch {
		case strings.HasPrefix(code, "2"):
			s = Delivered("%s", reason)
		case strings.HasPrefix(code, "4"):
			s = Deferf(CodeConfig, nil, "%s", reason)
		default:
			s = Bouncef(CodeUnknownUser, nil, "%s", reason)
		}
		line := s.Line()
		if !dsnValid(line) {
			t.Fatalf("not recognised by pipe(8): %q", line)
		}
		if len(line) > 4096 || !utf8.ValidString(line) {
			t.Fatalf("line too long or not UTF-8: %d bytes", len(line))
		}
		for _, r := range line {
			if r < ' ' || r == 0x7f {
				t.Fatalf("control character %q in %q", r, line)
			}
		}
	})
}

// The sender's text names the cause where the storage package knows it, never a path and
// never "unknown error" for a cause that has a name.
func TestClassifyTexts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&maildir.Error{Op: "link", Path: "d/u/new/x", Err: maildir.ErrTmpReplaced},
			"4.2.0 maildir delivery failed: create maildir file: Tmp file was replaced before it was linked"},
		{&maildir.Error{Op: "create", Path: "d/u/tmp/x", Err: &fs.PathError{Op: "openat2", Path: "d/u/tmp/x", Err: syscall.ENOSPC}},
			"4.3.0 maildir delivery failed: create maildir file: No space left on device"},
	} {
		if got := classify(tc.err, true).Line(); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

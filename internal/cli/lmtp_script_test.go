package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["lmtp"] = cmdLMTP
	scriptCmds["unescape"] = cmdUnescape
}

// escapes are what a script file cannot hold (or a reader would not see): {CR} is a
// carriage return, {NOEOL} at the very end removes the final newline.
func unescape(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("{CR}"), []byte("\r"))
	if s, ok := bytes.CutSuffix(b, []byte("{NOEOL}\n")); ok {
		b = s
	}
	return b
}

// unescape file: rewrites the file with its escapes replaced.
func cmdUnescape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unescape file")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(os.WriteFile(p, unescape(b), 0o644))
}

// lmtp session replies [args...]: runs `vdeliver lmtp args...` as the delivery uid (a
// real subprocess: as root the test binary is copied where that uid can run it) with the
// session file on standard input, every LF made CRLF as a client sends it (escapes as in
// unescape), and writes standard output to the replies file with each CRLF made LF. It
// fails unless vdeliver exits 0, every reply line ends in CRLF and stderr is empty.
func cmdLMTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: lmtp session replies [args...]")
	}
	in, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	in = unescape(bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n")))
	bin := scriptBinary(ts)
	var out, errOut bytes.Buffer
	err = startRetrying(func() *exec.Cmd {
		out.Reset()
		errOut.Reset()
		cmd := exec.Command(bin, append([]string{"lmtp"}, args[2:]...)...)
		cmd.Dir = ts.Getenv("WORK")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC", "VDELIVER_SYSLOG_SOCKET=" + ts.Getenv("WORK") + "/no-syslog"}
		cmd.Stdin = bytes.NewReader(in)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if os.Geteuid() == 0 {
			uid, gid := deliveryUID()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		}
		return cmd
	}, true)
	var ee *exec.ExitError

	if errors.As(err, &ee) {
		ts.Fatalf("vdeliver lmtp exited %d; stderr %q", ee.ExitCode(), errOut.String())
	}
	ts.Check(err)
	if errOut.Len() > 0 {
		ts.Fatalf("stderr: %q", errOut.String())
	}
	o := out.String()
	if o != "" && !strings.HasSuffix(o, "\r\n") {
		ts.Fatalf("output does not end in CRLF: %q", o)
	}
	lines := strings.Split(strings.TrimSuffix(o, "\r\n"), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			ts.Fatalf("reply line with a bare CR or LF: %q", l)
		}
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(strings.ReplaceAll(o, "\r\n", "\n")), 0o644))
}

// scriptBinary is the vdeliver command of the scripts (this test binary under the name
// vdeliver), in a directory the delivery uid can reach.
func scriptBinary(ts *testscript.TestScript) string {
	var bin string
	for _, d := range filepath.SplitList(ts.Getenv("PATH")) {
		if p := filepath.Join(d, "vdeliver"); fileExists(p) {
			bin = p
			break
		}
	}
	if bin == "" {
		ts.Fatalf("vdeliver not in $PATH")
	}
	if os.Geteuid() != 0 {
		return bin
	}
	dst := filepath.Join(ts.Getenv("WORK"), ".lmtp-bin", "vdeliver")
	if fileExists(dst) {
		return dst
	}
	ts.Check(os.MkdirAll(filepath.Dir(dst), 0o755))
	src, err := os.Open(bin)
	ts.Check(err)
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	ts.Check(err)
	_, err = io.Copy(f, src)
	ts.Check(err)
	ts.Check(f.Close())
	return dst
}

// startRetrying starts the command mk makes (and, with wait, waits for it), making a
// new one while the start fails with ETXTBSY: a binary just copied by one test can be
// held open for writing by a child another test is forking at that moment, until that
// child's exec closes it.
func startRetrying(mk func() *exec.Cmd, wait bool) error {
	for i := 0; ; i++ {
		cmd := mk()
		err := cmd.Start()
		if errors.Is(err, syscall.ETXTBSY) && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil || !wait {
			return err
		}
		return cmd.Wait()
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

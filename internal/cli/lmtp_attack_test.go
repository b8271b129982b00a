package cli

// Attacks on the LMTP mode: who it runs as, and that it never writes as anyone else.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lmtpSession is one transaction for rcpt; the reply to its RCPT is the attack's status.
func lmtpSession(rcpt string) string {
	return strings.ReplaceAll("LHLO x\nMAIL FROM:<a@example.org>\nRCPT TO:<"+rcpt+">\nDATA\nSubject: x\n\ny\n.\nQUIT\n", "\n", "\r\n")
}

// rcptStatus is the enhanced code of the reply to the session's RCPT (the line after
// MAIL's "250 2.1.0 Ok"), or the first reply's code when the session never got there.
func rcptStatus(out string) string {
	lines := strings.Split(out, "\r\n")
	for i, l := range lines {
		if l == "250 2.1.0 Ok" && i+1 < len(lines) {
			f := strings.Fields(lines[i+1])
			if len(f) > 1 {
				return f[1]
			}
		}
	}
	if f := strings.Fields(out); len(f) > 1 {
		return f[1]
	}
	return ""
}

// Started as root directly (not through the setuid bit), vdeliver lmtp refuses to run:
// a long-lived process would have to switch identity per recipient and back.
func TestAttackLMTPStartedAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root")
	}
	in := newSetuidInstall(t, "")
	before, err := snapshotTree(in.dir, nil)
	must(t, err)
	exe, err := os.Executable()
	must(t, err)
	bin := filepath.Join(t.TempDir(), "vdeliver")
	b, err := os.ReadFile(exe)
	must(t, err)
	must(t, os.WriteFile(bin, b, 0o755))
	cmd, out, errOut := in.command(0, 0, nil, "lmtp", "-c", filepath.Join(in.dir, "etc"))
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.SysProcAttr = nil
	cmd.Stdin = strings.NewReader(lmtpSession("alice@example.com"))
	exit := exitCode(t, cmd.Run())
	after, err := snapshotTree(in.dir, nil)
	must(t, err)
	outside, _ := compareTrees(before, after, nil, 0, 0)
	got := rcptStatus(out.String())
	recordAttack("lmtp: started as root", "4.3.5", got, len(outside))
	if exit != 1 || !strings.HasPrefix(out.String(), "421 4.3.5 ") || !strings.Contains(errOut.String(), "refusing to run as root") || len(outside) > 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q, changed %v", exit, out, errOut, outside)
	}
}

// Installed setuid-root, `vdeliver lmtp` drops to its caller for good before anything is
// read: the MTA's user cannot use it to write as a recipient's uid, with the
// installed configuration or with one of its own.
func TestAttackLMTPSetuidRunsAsCaller(t *testing.T) {
	in := newSetuidInstall(t, "")
	evil := filepath.Join(in.dir, "evil")
	// The caller's own main.cf maps alice to her own uid 5001, under the real base.
	writeFile(t, filepath.Join(evil, "main.cf"), "virtual_mailbox_domains = example.com\n"+
		"virtual_mailbox_base = "+in.dir+"/vmail\nvirtual_mailbox_maps = static:alice/\n"+
		"virtual_uid_maps = static:5001\nvirtual_gid_maps = static:5000\n")
	must(t, os.Chown(filepath.Join(evil, "main.cf"), mtaUID, vmailGID))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"lmtp: setuid install, recipient with another uid", []string{"lmtp", "-c", filepath.Join(in.dir, "etc")}},
		{"lmtp: setuid install, caller's main.cf mapping to another uid", []string{"lmtp", "-c", evil}},
	} {
		skipBin := func(rel string) bool { return rel == "setuid-bin" || strings.HasPrefix(rel, "setuid-bin/") }
		before, err := snapshotTree(in.dir, skipBin)
		must(t, err)
		cmd, out, errOut := in.command(mtaUID, vmailGID, nil, tc.args...)
		cmd.Stdin = strings.NewReader(lmtpSession("alice@example.com"))
		exit := exitCode(t, cmd.Run())
		after, err := snapshotTree(in.dir, skipBin)
		must(t, err)
		outside, _ := compareTrees(before, after, nil, 0, 0)
		got := rcptStatus(out.String())
		recordAttack(tc.name, "4.3.5", got, len(outside))
		if exit != 0 || got != "4.3.5" || errOut.Len() > 0 || len(outside) > 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, changed %v", tc.name, exit, out, errOut, outside)
		}
	}
}

// Under spawn(8) as vmail: a table that maps a recipient to root, to a uid below
// virtual_minimum_uid or to another user is refused at RCPT (4.3.5) and nothing is
// written; the process's own uid is delivered. Runs as a real unprivileged process.
func TestAttackLMTPUIDMaps(t *testing.T) {
	in := newSetuidInstall(t, "")
	exe, err := os.Executable()
	must(t, err)
	b, err := os.ReadFile(exe)
	must(t, err)
	binDir := filepath.Join(in.dir, "plain-bin")
	must(t, os.MkdirAll(binDir, 0o755))
	bin := filepath.Join(binDir, "vdeliver")
	must(t, os.WriteFile(bin, b, 0o755))
	must(t, os.Chown(filepath.Join(in.dir, "vmail", "alice"), mtaUID, vmailGID))
	for _, tc := range []struct {
		name, uidMap, want string
		changes            bool
	}{
		{"lmtp: uid map result 0", "static:0", "4.3.5", false},
		{"lmtp: uid map result below virtual_minimum_uid", "static:99", "4.3.5", false},
		{"lmtp: uid map result another user", "static:5001", "4.3.5", false},
		{"lmtp: uid map result the process's own", "static:5000", "2.1.5", true},
	} {
		skip := func(rel string) bool {
			return rel == "plain-bin" || strings.HasPrefix(rel, "plain-bin/") || rel == "setuid-bin" || strings.HasPrefix(rel, "setuid-bin/")
		}
		before, err := snapshotTree(in.dir, skip)
		must(t, err)
		cmd, out, errOut := in.command(mtaUID, vmailGID, nil, "lmtp", "-c", filepath.Join(in.dir, "etc"), "-o", "virtual_uid_maps="+tc.uidMap, "-o", "virtual_minimum_uid=100")
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.Stdin = strings.NewReader(lmtpSession("alice@example.com"))
		exit := exitCode(t, cmd.Run())
		after, err := snapshotTree(in.dir, skip)
		must(t, err)
		var allowed []string
		if tc.changes {
			allowed = []string{"vmail/alice"}
		}
		outside, wrong := compareTrees(before, after, allowed, mtaUID, vmailGID)
		got := rcptStatus(out.String())
		recordAttack(tc.name, tc.want, got, len(outside))
		if exit != 0 || got != tc.want || errOut.Len() > 0 || len(outside) > 0 || len(wrong) > 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, changed outside %v, wrong owner %v", tc.name, exit, out, errOut, outside, wrong)
		}
		if tc.changes && !strings.Contains(out.String(), "250 2.0.0 delivered to maildir\r\n") {
			t.Errorf("%s: not delivered: %q", tc.name, out)
		}
	}
}

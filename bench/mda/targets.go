package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The envelope every delivery carries: the example configuration's Maildir user and mbox user.
const (
	sender      = "sender@example.org"
	maildirRcpt = "alice@example.com"
	mboxRcpt    = "bob@example.com"
)

// target is one delivery agent configured for one mailbox format: the command line pipe(8)
// would run, and where the mail lands.
type target struct {
	mda    string // "vdeliver", "dovecot-lda", "maildrop", "procmail", "readexit"
	format string // "maildir" or "mbox"
	argv   []string
	env    []string
	home   string   // working directory and $HOME
	mail   string   // the Maildir (holding new/) or the mbox file; "" for readexit
	out    *os.File // standard output and error of every run, for the failure report
}

// tools are the programs compared; setup fails when one is missing, since a benchmark that
// quietly drops a peer would report a comparison it did not make.
type tools struct {
	vdeliver, readexit, spawn, dovecotLDA, maildrop, procmail, strace string
	variants                                                          []variant
}

// variant is another build of vdeliver measured beside it, named "vdeliver-<label>", or
// the same build run with more environment (-variant-env).
type variant struct {
	name, path string
	env        []string
}

func findTools(vdeliver, readexit, spawn string, variants []variant) (tools, error) {
	t := tools{vdeliver: vdeliver, readexit: readexit, spawn: spawn, dovecotLDA: "/usr/lib/dovecot/dovecot-lda", variants: variants}
	var missing []string
	paths := []*string{&t.vdeliver, &t.readexit, &t.spawn, &t.dovecotLDA}
	for i := range t.variants {
		paths = append(paths, &t.variants[i].path)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p = abs
		}
		if fi, err := os.Stat(*p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, *p)
		}
	}
	for name, p := range map[string]*string{"maildrop": &t.maildrop, "procmail": &t.procmail, "strace": &t.strace} {
		path, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		*p = path
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing: %s (bench/mda/run.sh installs Debian's dovecot-core, maildrop, procmail and strace)", strings.Join(missing, ", "))
	}
	return t, nil
}

// setup writes a minimal configuration for every agent under work/home, owned by uid/gid,
// and returns the targets for Maildir and for mbox, vdeliver first in each.
func setup(work, config string, tl tools, uid, gid int) (map[string][]*target, error) {
	home := filepath.Join(work, "home")
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "USER=" + name, "LOGNAME=" + name, "SHELL=/bin/sh", "LANG=C"}
	files := map[string]string{}
	var dirs []string

	// vdeliver: the example configuration, copied so the run does not depend on who may
	// read the checkout; -o overrides as testdata/demo.sh does, plus Postfix's default of 20
	// lock attempts (the example's 3 is for the demo) so parallel runs wait instead of defer.
	vd := filepath.Join(home, "vdeliver")
	for _, f := range []string{"main.cf", "vmailbox", "virtual"} {
		b, err := os.ReadFile(filepath.Join(config, f))
		if err != nil {
			return nil, err
		}
		files[filepath.Join(vd, "etc", f)] = string(b)
	}
	vargs := func(bin, base, rcpt string) []string {
		return []string{bin, "-c", filepath.Join(vd, "etc"),
			"-o", "virtual_mailbox_base=" + base,
			"-o", fmt.Sprintf("virtual_uid_maps=static:%d", uid), "-o", fmt.Sprintf("virtual_gid_maps=static:%d", gid),
			"-o", "deliver_lock_attempts=20",
			"--log-file", filepath.Join(base, "log"),
			"-f", sender, "-a", rcpt, "-i", "BENCH", "--", rcpt}
	}

	// dovecot-lda: no -d, so no auth lookup: the user comes from $USER and $HOME, as when
	// a per-user pipe runs it. Indexes stay on (Dovecot's default, what its users run).
	dv := filepath.Join(home, "dovecot")
	dconf := func(loc string) string {
		return "protocols =\nssl = no\nlog_path = " + filepath.Join(dv, "log") + "\nbase_dir = " + filepath.Join(dv, "run") +
			"\nmail_location = " + loc + "\n"
	}
	files[filepath.Join(dv, "maildir.conf")] = dconf("maildir:" + filepath.Join(dv, "Maildir"))
	files[filepath.Join(dv, "mbox.conf")] = dconf("mbox:" + filepath.Join(dv, "mail") + ":INBOX=" + filepath.Join(dv, "mbox"))

	// maildrop: a filter file naming the mailbox (a directory is a Maildir, a file an mbox).
	md := filepath.Join(home, "maildrop")
	files[filepath.Join(md, "maildir.filter")] = fmt.Sprintf("to %q\n", filepath.Join(md, "Maildir")+"/")
	files[filepath.Join(md, "mbox.filter")] = fmt.Sprintf("to %q\n", filepath.Join(md, "mbox"))
	for _, d := range []string{"tmp", "new", "cur"} {
		dirs = append(dirs, filepath.Join(md, "Maildir", d)) // maildrop does not create a Maildir
	}

	// procmail: one recipe each; a trailing "/" means Maildir, ":0:" takes the local lock.
	pm := filepath.Join(home, "procmail")
	files[filepath.Join(pm, "maildir.rc")] = ":0\n" + filepath.Join(pm, "Maildir") + "/\n"
	files[filepath.Join(pm, "mbox.rc")] = ":0:\n" + filepath.Join(pm, "mbox") + "\n"

	dirs = append(dirs, filepath.Join(dv, "run"), filepath.Join(home, "readexit"))
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		// 0600: maildrop and procmail refuse a filter others may write.
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			return nil, err
		}
	}
	mk := func(mda, format, dir, mail string, extraEnv []string, argv ...string) (*target, error) {
		out, err := os.OpenFile(filepath.Join(work, "out."+mda+"."+format), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		return &target{mda: mda, format: format, argv: argv, env: append(slices.Clip(env), extraEnv...), home: dir, mail: mail, out: out}, nil
	}
	type spec struct {
		mda, format, dir, mail string
		argv                   []string
		env                    []string // added to env
	}
	// vdeliver and each variant build get a base of their own, so every mailbox's count
	// checks one binary.
	var specs []spec
	for _, v := range append([]variant{{name: "vdeliver", path: tl.vdeliver}}, tl.variants...) {
		base := filepath.Join(vd, v.name)
		if err := os.MkdirAll(filepath.Join(base, "example.com"), 0o700); err != nil {
			return nil, err
		}
		specs = append(specs,
			spec{v.name, "maildir", vd, filepath.Join(base, "example.com", "alice"), vargs(v.path, base, maildirRcpt), v.env},
			spec{v.name, "mbox", vd, filepath.Join(base, "example.com", "bob"), vargs(v.path, base, mboxRcpt), v.env})
	}
	set := map[string][]*target{}
	for _, spec := range append(specs, []spec{
		{"dovecot-lda", "maildir", dv, filepath.Join(dv, "Maildir"), []string{tl.dovecotLDA, "-c", filepath.Join(dv, "maildir.conf"), "-f", sender, "-a", maildirRcpt}, nil},
		{"dovecot-lda", "mbox", dv, filepath.Join(dv, "mbox"), []string{tl.dovecotLDA, "-c", filepath.Join(dv, "mbox.conf"), "-f", sender, "-a", mboxRcpt}, nil},
		{"maildrop", "maildir", md, filepath.Join(md, "Maildir"), []string{tl.maildrop, "-f", sender, filepath.Join(md, "maildir.filter")}, nil},
		{"maildrop", "mbox", md, filepath.Join(md, "mbox"), []string{tl.maildrop, "-f", sender, filepath.Join(md, "mbox.filter")}, nil},
		{"procmail", "maildir", pm, filepath.Join(pm, "Maildir"), []string{tl.procmail, "-f", sender, filepath.Join(pm, "maildir.rc")}, nil},
		{"procmail", "mbox", pm, filepath.Join(pm, "mbox"), []string{tl.procmail, "-f", sender, filepath.Join(pm, "mbox.rc")}, nil},
		{"readexit", "maildir", filepath.Join(home, "readexit"), "", []string{tl.readexit}, nil},
		{"readexit", "mbox", filepath.Join(home, "readexit"), "", []string{tl.readexit}, nil},
	}...) {
		t, err := mk(spec.mda, spec.format, spec.dir, spec.mail, spec.env, spec.argv...)
		if err != nil {
			return nil, err
		}
		set[spec.format] = append(set[spec.format], t)
	}
	return set, chownTree(home, uid, gid)
}

func chownTree(root string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// delivered counts what is in the mailbox: messages in a Maildir's new/ and cur/, bytes in
// an mbox (whose message count depends on each agent's quoting).
func (t *target) delivered() (messages int, bytes int64, err error) {
	if t.mail == "" {
		return 0, 0, nil
	}
	if t.format == "mbox" {
		fi, err := os.Stat(t.mail)
		if err != nil {
			return 0, 0, err
		}
		return 0, fi.Size(), nil
	}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(t.mail, sub))
		if err != nil {
			return 0, 0, err
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				return 0, 0, err
			}
			messages++
			bytes += fi.Size()
		}
	}
	return messages, bytes, nil
}

// Package setuid is the policy of a setuid-root run (README "Running setuid-root").
//
// Installed owner root, mode 4750, vdeliver starts with the caller's real uid and an
// effective uid of 0, so that it can honour per-recipient virtual_uid_maps although
// pipe(8) refuses user=root. Everything the caller controls is then hostile: the
// environment, the command line, the configuration it names. The rules, applied before
// anything is read or written:
//
//   - init clears the environment: only PATH (fixed to pipe(8)'s _PATH_DEFPATH) and a TZ
//     that names a zone, not a file of the caller's choosing, survive. The caller's
//     MAIL_CONFIG is remembered for the decision below and nothing else.
//   - An invocation whose first argument is not an option (an administrator's subcommand
//     such as explain, or a bare recipient) is not a delivery by an MTA: init drops to
//     the caller's own uid and gid for good before main runs, so a subcommand never reads
//     or writes as root.
//   - A delivery refuses (4.3.5, exit 75) when the binary, the configuration directory,
//     main.cf or any directory above them can be changed by anyone but root; and so, once
//     main.cf is read, when the mailbox base, a table file or a directory above either can
//     (CheckDelivery).
//   - Relative table names are taken in $queue_directory, never in the caller's working
//     directory (internal/cli, enterQueueDirectory).
//   - -c, -o and a MAIL_CONFIG other than the default directory are refused (4.3.5) unless
//     the caller's uid is listed in vdeliver_trusted_uids of the default main.cf, as
//     Postfix's set-gid commands refuse an unlisted configuration directory. A trusted
//     caller's directory must pass the same ownership check.
//   - --log-file is refused (4.3.5) for every caller that is not root: the log is opened
//     before the identity switch, so it would be a file of the caller's choosing written
//     as root. So is every option not known to be safe (callerOptions below).
//
// The delivery itself then switches to the recipient's uid and gid (deliver's identity
// switch, internal/privilege: groups, gid, uid — real, effective and saved — on every
// thread) before the base is opened, so nothing under the base is written as root.
//
// The package's init applies the first two rules. It runs before the command's own code
// reads the environment: internal/cli imports this package, and Go runs a package's init
// before the init of any package that imports it, and every init before main.
package setuid

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"vdeliver/deliver"
	"vdeliver/internal/privilege"
	"vdeliver/internal/rootonly"
	"vdeliver/lookup"
	"vdeliver/maincf"
)

// ConfigDir is the configuration directory of a setuid run. It can only be changed when
// the binary is linked (-ldflags "-X vdeliver/internal/setuid.ConfigDir=..."), never by a
// caller. (The tests of internal/cli point the copy of their binary that they install
// setuid-root at a directory of its own.)
var ConfigDir = "/etc/postfix"

// trustedUIDsParam is the main.cf parameter (of ConfigDir/main.cf) listing the uids that
// may use -c, -o and MAIL_CONFIG while vdeliver runs setuid-root.
const trustedUIDsParam = "vdeliver_trusted_uids"

// SafePath is the PATH of a setuid run: pipe(8)'s _PATH_DEFPATH, so no table helper
// (postmap) is ever looked up in a directory of the caller's choosing.
const SafePath = "/usr/bin:/bin"

// State is what the process knew about its caller when it started.
type State struct {
	Active     bool   // real uid is not root, effective uid is: installed setuid-root
	UID, GID   int    // the caller's real uid and gid
	mailConfig string // the caller's MAIL_CONFIG, read before the environment was cleared
}

// SelfExe is the running binary, checked for ownership.
const SelfExe = "/proc/self/exe"

// startup is filled once by init and never changed after.
var startup State

// Startup is the State init found. A run that init dropped to its caller is not active.
func Startup() State { return startup }

func init() {
	startup = State{UID: os.Getuid(), GID: os.Getgid()}
	startup.Active = startup.UID != 0 && os.Geteuid() == 0
	if !startup.Active {
		return
	}
	startup.mailConfig = os.Getenv("MAIL_CONFIG")
	// LD_PRELOAD, TMPDIR, a hostile PATH, GODEBUG, MAIL_CONFIG: nothing the caller put in
	// the environment reaches a table helper or our own decisions.
	tz, hasTZ := os.LookupEnv("TZ")
	os.Clearenv()
	os.Setenv("PATH", SafePath)
	if hasTZ && safeTZ(tz) {
		os.Setenv("TZ", tz)
	}
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		// Not a delivery as an MTA runs it (options first, then "--"): an administrator's
		// subcommand may read any table a main.cf names and write cdb files, so it runs
		// with the caller's own rights (reading root's files through a table, writing as
		// root).
		if err := privilege.Drop(startup.UID, startup.GID); err != nil {
			st := deliver.Deferf(deliver.CodeSystem, err, "cannot drop privileges")
			fmt.Fprintln(os.Stdout, st.Line())
			os.Exit(st.Exit)
		}
		startup.Active = false
	}
}

// safeTZ keeps a TZ that names a zone and refuses one that names a file elsewhere, as
// glibc does for set-uid programs: the time zone file is read before the identity switch,
// as root, and a FIFO or device there would hang us or worse.
func safeTZ(tz string) bool {
	if len(tz) > 256 || strings.Contains(tz, "..") {
		return false
	}
	for _, r := range tz {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	name := strings.TrimPrefix(tz, ":")
	if !strings.HasPrefix(name, "/") {
		return true
	}
	return name == "/etc/localtime" || strings.HasPrefix(name, "/usr/share/zoneinfo/")
}

// Options a caller that is not root may give a setuid-root vdeliver: what pipe(8)'s
// command line needs (callerOptions), and for vdeliver_trusted_uids also the choice of
// configuration (trustedOptions). Any other option is refused, so an option added later
// (one that names a file or a command, say) is never honoured as root until it is listed
// here. The value says whether the option takes an argument.
var (
	callerOptions = map[string]bool{
		"f": true, "sender": true, "a": true, "original-recipient": true, "i": true, "queue-id": true,
		"no-loop-check": false, "h": false, "help": false, "version": false,
	}
	trustedOptions = map[string]bool{"c": true, "config-directory": true, "o": true}
)

// givenOptions returns the names of the options on a delivery command line, scanned as
// urfave/cli does: up to "--" or the first argument that is not an option.
func givenOptions(args []string) []string {
	var names []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		names = append(names, name)
		takes, ok := callerOptions[name]
		if !ok {
			takes = trustedOptions[name]
		}
		if takes && !inline {
			i++
		}
	}
	return names
}

// Request is what the setuid rules decide about in one delivery command line.
type Request struct {
	ConfigDir string         // -c as given; on success the directory that was checked
	LogFile   string         // --log-file; cleared in a setuid run
	Config    *maincf.Config // set when the delivery reads ConfigDir/main.cf: as Policy read it
}

// Policy applies the setuid rules to one delivery command line (args, as parsed into r),
// before the log file is opened and before main.cf is read. st is the status the command
// line already earned (a usage error), returned unchanged if not nil. Outside setuid mode
// it does nothing.
//
// It clears r.LogFile (which would be opened as root), and sets r.ConfigDir to the
// directory that was checked, so no environment variable is consulted afterwards. Every
// refusal is 4.3.5 (exit 75): the mail waits while the administrator fixes the install,
// and the details go to the log only.
func (s State) Policy(args []string, r *Request, st *deliver.Status) *deliver.Status {
	if !s.Active {
		return st
	}
	refuse := func(err error) *deliver.Status {
		return deliver.Deferf(deliver.CodeConfig, fmt.Errorf("setuid-root run by uid %d: %w", s.UID, err), "mail system configuration error")
	}
	r.LogFile = ""
	if st != nil {
		return st
	}
	if err := rootOnlyFile(SelfExe, false); err != nil {
		return refuse(fmt.Errorf("the vdeliver binary: %w", err))
	}
	if err := rootOnlyConfig(ConfigDir); err != nil {
		return refuse(err)
	}
	cf, err := maincf.Load(ConfigDir)
	if err != nil {
		return refuse(err)
	}
	trusted, err := trustedUID(cf, s.UID)
	if err != nil {
		return refuse(err)
	}
	for _, name := range givenOptions(args) {
		if _, ok := callerOptions[name]; ok {
			continue
		}
		if _, ok := trustedOptions[name]; ok && trusted {
			continue
		}
		// --log-file, -c and -o of an untrusted caller, and any option not vetted for a
		// setuid run.
		dash := "--"
		if len(name) == 1 {
			dash = "-"
		}
		return refuse(fmt.Errorf("option %s%s is not allowed (only root may use it; -c and -o also the uids in %s of %s/main.cf)",
			dash, name, trustedUIDsParam, ConfigDir))
	}
	dir := ConfigDir
	if r.ConfigDir != "" {
		dir = r.ConfigDir
	} else if s.mailConfig != "" {
		dir = s.mailConfig
	}
	if filepath.Clean(dir) != filepath.Clean(ConfigDir) {
		// pipe(8) exports MAIL_CONFIG, normally naming the default directory; another one
		// is the caller's choice of configuration, as -c.
		if !trusted {
			return refuse(fmt.Errorf("MAIL_CONFIG=%s is not allowed: uid %d is not listed in %s of %s/main.cf",
				dir, s.UID, trustedUIDsParam, ConfigDir))
		}
		if !filepath.IsAbs(dir) {
			return refuse(fmt.Errorf("configuration directory %q is not absolute", dir))
		}
		if err := rootOnlyConfig(dir); err != nil {
			return refuse(err)
		}
	}
	r.ConfigDir = dir
	if filepath.Clean(dir) == filepath.Clean(ConfigDir) {
		r.Config = cf
	}
	return nil
}

// trustedUID reports whether uid is listed in vdeliver_trusted_uids (decimal uids,
// separated by commas or whitespace). A malformed entry is an error, not a miss.
func trustedUID(cf *maincf.Config, uid int) (bool, error) {
	v, err := cf.Get(trustedUIDsParam)
	if err != nil {
		return false, err
	}
	found := false
	for _, f := range lookup.SplitList(v) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return false, fmt.Errorf("%s: bad uid %q", trustedUIDsParam, f)
		}
		if int64(n) == int64(uid) {
			found = true
		}
	}
	return found, nil
}

// rootOnlyConfig checks dir and dir/main.cf as the configuration of a setuid run: both
// must be owned by root and writable by nobody else, and so must every directory above
// (where a world-writable directory is allowed only with the sticky bit, as /tmp).
//
// The directories above are walked once, for dir (as written and with symbolic links
// resolved). They are main.cf's directories too, unless main.cf is itself a symbolic
// link: only then does main.cf get its own walk, for the directories above its target.
func rootOnlyConfig(dir string) error {
	if err := rootOnlyFile(dir, true); err != nil {
		return fmt.Errorf("configuration directory: %w", err)
	}
	cf := filepath.Join(dir, "main.cf")
	fi, err := os.Lstat(cf)
	chain := err != nil || fi.Mode()&fs.ModeSymlink != 0 // a missing main.cf: the same error as before
	if err := rootOnlyFile(cf, chain); err != nil {
		return fmt.Errorf("main.cf: %w", err)
	}
	return nil
}

// rootOnlyFile is rootonly.Check: only root can change path (and, with chain, every
// directory above it).
func rootOnlyFile(path string, chain bool) error { return rootonly.Check(path, chain) }

// setuidListParams are the main.cf lists whose tables and files decide, in a delivery,
// where mail lands, as whom and whether at all (a quota too: it decides whether).
var setuidListParams = []string{"virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps",
	"virtual_alias_maps", "virtual_mailbox_domains", "mydestination", "vdeliver_quota_maps"}

// CheckDelivery checks, for a setuid-root run, what main.cf points a delivery at: the
// base and every directory above it, and every table file (a /file of a domain list too)
// with every directory above it, must be changeable by root alone. Whoever can rename the
// base or a directory above it can put a symlink in its place, and whoever can write a
// table chooses uid and path: either way the caller would choose where each recipient's
// mail is written, as that recipient. Relative table names are taken in the working
// directory, $queue_directory by then. Outside setuid mode it checks nothing. Its error
// refuses the delivery (4.3.5).
func (s State) CheckDelivery(cf *maincf.Config) *deliver.Status {
	if !s.Active {
		return nil
	}
	if err := rootOnlyDelivery(cf); err != nil {
		return deliver.Deferf(deliver.CodeConfig, fmt.Errorf("setuid-root run by uid %d: %w", s.UID, err), "mail system configuration error")
	}
	return nil
}

func rootOnlyDelivery(cf *maincf.Config) error {
	base, err := cf.Get("virtual_mailbox_base")
	if err != nil {
		return err
	}
	if base != "" && filepath.IsAbs(base) {
		// A missing base is the delivery's own error (4.3.5 too).
		if err := rootOnlyFile(base, true); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("virtual_mailbox_base: %w", err)
		}
	}
	for _, param := range setuidListParams {
		list, err := cf.Get(param)
		if err != nil {
			return err
		}
		for _, it := range rootonly.ListFiles(list) {
			if err := rootOnlyFile(it.File, true); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: %s: %w", param, it.Item, err)
			}
		}
	}
	return nil
}

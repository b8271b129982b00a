package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	sender = "sender@example.org"
	rcpt   = "alice@example.com"
)

var (
	binPlain string // go build
	binFault string // go build -tags faultinject
	full     = os.Getenv("VDELIVER_FAULTS") == "full"
)

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "vdeliver-faults-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		return 0, err
	}
	binPlain = filepath.Join(dir, "vdeliver")
	binFault = filepath.Join(dir, "vdeliver-faultinject")
	for _, b := range []struct{ out, tags string }{{binPlain, ""}, {binFault, "faultinject"}} {
		cmd := exec.Command(goTool, "build", "-tags="+b.tags, "-o", b.out, "vdeliver")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build -tags=%q: %v\n%s", b.tags, err, out)
		}
	}
	code := m.Run()
	fmt.Print(tally.String())
	if p := os.Getenv("VDELIVER_FAULTS_TABLE"); p != "" {
		os.WriteFile(p, []byte(tally.String()), 0o644)
	}
	return code, nil
}

// deliveryIDs are the uid and gid deliveries run as: 5000 as root (the drop is
// real), ourselves otherwise.
func deliveryIDs() (uid, gid int) {
	if os.Geteuid() == 0 {
		return 5000, 5000
	}
	return os.Getuid(), os.Getgid()
}

// ---- the table ----

type row struct {
	fault, format                       string
	runs, lost, dup, partial, wrongStat int
}

type table struct {
	mu   sync.Mutex
	rows map[string]*row
	kps  map[string]bool // distinct kill points that fired
}

var tally = &table{rows: map[string]*row{}, kps: map[string]bool{}}

func (tb *table) add(fault, format string, f func(r *row)) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	k := fault + "\x00" + format
	r := tb.rows[k]
	if r == nil {
		r = &row{fault: fault, format: format}
		tb.rows[k] = r
	}
	f(r)
}

func (tb *table) killpoint(name string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.kps[name] = true
}

func (tb *table) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) == 0 {
		return ""
	}
	var rows []*row
	for _, r := range tb.rows {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].fault != rows[j].fault {
			return rows[i].fault < rows[j].fault
		}
		return rows[i].format < rows[j].format
	})
	var b strings.Builder
	mode := "short"
	if full {
		mode = "full"
	}
	fmt.Fprintf(&b, "\nfault matrix (%s)\n", mode)
	fmt.Fprintf(&b, "%-14s %-8s %6s %5s %10s %8s %12s\n", "fault", "format", "runs", "lost", "duplicated", "partial", "wrong status")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-14s %-8s %6d %5d %10d %8d %12d\n", r.fault, r.format, r.runs, r.lost, r.dup, r.partial, r.wrongStat)
	}
	var kps []string
	for k := range tb.kps {
		kps = append(kps, k)
	}
	sort.Strings(kps)
	fmt.Fprintf(&b, "distinct kill points exercised: %d (%s)\n", len(kps), strings.Join(kps, " "))
	return b.String()
}

// ---- messages ----

// message is one test message: its own headers carry its id and the SHA-256
// of its body, so a fragment can be told from the whole.
func message(id string, bodySize int) []byte {
	var body bytes.Buffer
	for i := 0; body.Len() < bodySize; i++ {
		fmt.Fprintf(&body, "line %d of message %s, text to make interleaving visible\n", i, id)
	}
	// The body ends a line, as vdeliver stores it, so its X-Fault-Sum is
	// also the sum of the stored body that other readers check.
	body.Truncate(bodySize - 1)
	body.WriteByte('\n')
	return withHeaders(id, body.Bytes())
}

// withHeaders puts the fault headers in front of body.
func withHeaders(id string, body []byte) []byte {
	sum := sha256.Sum256(body)
	h := fmt.Sprintf("Subject: fault test %s\nX-Fault-Id: %s\nX-Fault-Sum: %s\n\n", id, id, hex.EncodeToString(sum[:]))
	return append([]byte(h), body...)
}

var idRE = regexp.MustCompile(`(?m)^X-Fault-Id: (\S+)\r?$`)

// normalize is what vdeliver stores of what it read (deliver.Normalize): CRLF
// becomes LF and a final newline is added. It is written out here so that a
// change of that rule shows as a failure rather than moving both sides.
func normalize(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// quote is mboxo quoting: ">" before every line that starts "From ".
func quote(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		b = append([]byte(">"), b...)
	}
	return bytes.ReplaceAll(b, []byte("\nFrom "), []byte("\n>From "))
}

// ---- a mailbox under test ----

type box struct {
	t      *testing.T
	format string // "maildir" or "mbox"
	dir    string // config directory: main.cf, vmailbox
	base   string // virtual_mailbox_base
	want   map[string][]byte
	// seen are the partial findings already counted: a fragment stays in
	// the mailbox and is found again by every later check.
	seen map[string]bool
}

// mailboxPath is the mailbox relative to the base.
func (b *box) mailboxPath() string {
	if b.format == "maildir" {
		return "alice/"
	}
	return "alice"
}

// newBox makes a config directory and a base owned by the delivery uid. With
// mount set (root only), the base is a tmpfs of that size.
func newBox(t *testing.T, format string, mount string) *box {
	t.Helper()
	dir, err := os.MkdirTemp("", "vdeliver-faults-")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "vmail")
	t.Cleanup(func() {
		if mount != "" {
			syscall.Unmount(base, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Mkdir(base, 0o755))
	if mount != "" {
		if os.Geteuid() != 0 {
			t.Skip("mounting a tmpfs needs root; run as root (CI does)")
		}
		must(t, syscall.Mount("tmpfs", base, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+mount+",mode=0755"))
	}
	uid, gid := deliveryIDs()
	must(t, os.Chown(base, uid, gid))
	cf := fmt.Sprintf(`virtual_mailbox_domains = example.com
virtual_mailbox_base = %s
virtual_mailbox_maps = texthash:$config_directory/vmailbox
virtual_uid_maps = static:%d
virtual_gid_maps = static:%d
virtual_minimum_uid = 1
`, base, uid, gid)
	must(t, os.WriteFile(filepath.Join(dir, "main.cf"), []byte(cf), 0o644))
	b := &box{t: t, format: format, dir: dir, base: base, want: map[string][]byte{}, seen: map[string]bool{}}
	must(t, os.WriteFile(filepath.Join(dir, "vmailbox"), []byte(rcpt+"  "+b.mailboxPath()+"\n"), 0o644))
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// result of one vdeliver run.
type result struct {
	exit   int // -1 when killed by a signal, -2 when it could not be run
	signal syscall.Signal
	stdout string
	stderr string
	dur    time.Duration
}

func (r result) String() string {
	if r.exit < 0 {
		return fmt.Sprintf("killed by %v after %v, stdout %q", r.signal, r.dur, r.stdout)
	}
	return fmt.Sprintf("exit %d after %v, stdout %q, stderr %q", r.exit, r.dur, r.stdout, r.stderr)
}

// run options.
type runOpt struct {
	bin   string   // binFault when "", or binPlain
	env   []string // VDELIVER_KILL_AT=..., VDELIVER_FAULT=...
	o     []string // -o overrides
	stdin *os.File // instead of msg
	kill  time.Duration
}

// deliver runs vdeliver with msg on stdin and records what msg should become
// on disk under its X-Fault-Id.
func (b *box) deliver(msg []byte, opt runOpt) result {
	b.t.Helper()
	if m := idRE.FindSubmatch(msg); m != nil {
		b.expect(string(m[1]), msg)
	}
	return b.deliverQuiet(msg, opt)
}

// deliverQuiet is deliver without recording the expected bytes, safe to call
// from several goroutines once expect has been called for msg.
func (b *box) deliverQuiet(msg []byte, opt runOpt) result {
	bin := opt.bin
	if bin == "" {
		bin = binFault
	}
	args := []string{"-c", b.dir, "-f", sender, "-i", "FAULTS"}
	for _, o := range opt.o {
		args = append(args, "-o", o)
	}
	args = append(args, "--", rcpt)
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TZ=UTC"}, opt.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if opt.stdin != nil {
		cmd.Stdin = opt.stdin
	} else {
		cmd.Stdin = bytes.NewReader(msg)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.t.Error(err)
		return result{exit: -2}
	}
	if opt.kill > 0 {
		tm := time.AfterFunc(opt.kill, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer tm.Stop()
	}
	err := cmd.Wait()
	r := result{stdout: out.String(), stderr: errOut.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.exit, r.signal = -1, ws.Signal()
		} else {
			r.exit = ws.ExitStatus()
		}
	default:
		b.t.Errorf("running vdeliver: %v", err)
		r.exit = -2
	}
	return r
}

// expect records the bytes msg becomes in the mailbox (without the From_ line
// and the trailing blank line of mbox).
func (b *box) expect(id string, msg []byte) {
	hdr := "Return-Path: <" + sender + ">\nDelivered-To: " + rcpt + "\n"
	b.want[id] = append([]byte(hdr), normalize(msg)...)
}

// inventory reads the mailbox back: how many whole copies of each expected
// message it holds, and a description of everything else (fragments,
// foreign files, bytes that are no record).
type inventory struct {
	count   map[string]int
	partial []string
	tmp     int // maildir: files left in tmp/
}

var fromLine = regexp.MustCompile(`^From ` + regexp.QuoteMeta(sender) + `  [A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}\n`)

func (b *box) inventory() inventory {
	b.t.Helper()
	inv, _ := b.inventoryPending(false)
	return inv
}

// intentName is the mbox intent record beside the mailbox (mbox/doc.go,
// "Torn writes").
func (b *box) intentName() string {
	return filepath.Join(b.base, b.mailboxPath()+".vdeliver-append")
}

var intentHeader = regexp.MustCompile(`\Avdeliver-append 2\ndev [0-9]+ ino [0-9]+ size ([0-9]+) length ([0-9]+) crc32c ([0-9a-f]{8})\n`)

// pendingCut is where the next delivery will cut the mailbox data back to,
// or -1: the mbox intent record left by a killed delivery must be whole and
// its copy of the record must begin with exactly the bytes after its old
// size, which must be fewer than the record's. This is the harness's own
// reading of the format, so that a recovery that cuts too much or too little
// shows as a difference in the next check.
func (b *box) pendingCut(data []byte) (cut int, desc string) {
	raw, err := os.ReadFile(b.intentName())
	if err != nil {
		return -1, ""
	}
	m := intentHeader.FindSubmatch(raw)
	if m == nil {
		return -1, fmt.Sprintf("intent record of %d bytes does not parse", len(raw))
	}
	size, _ := strconv.Atoi(string(m[1]))
	length, _ := strconv.Atoi(string(m[2]))
	rec := raw[len(m[0]):]
	sum := crc32.Checksum(rec, crc32.MakeTable(crc32.Castagnoli))
	if len(rec) != length || fmt.Sprintf("%08x", sum) != string(m[3]) {
		return -1, "intent record is not whole"
	}
	if len(data) <= size || len(data) >= size+length || !bytes.Equal(data[size:], rec[:len(data)-size]) {
		return -1, fmt.Sprintf("intent record (old size %d, length %d) leaves %d bytes alone", size, length, len(data))
	}
	return size, fmt.Sprintf("fragment of %d of %d bytes pending recovery", len(data)-size, length)
}

// inventoryPending is inventory; with pending set, an mbox fragment that
// the intent record left by a killed delivery proves recoverable
// (pendingCut) is left out, as the next delivery will cut it off. That next
// delivery's check is strict, so a recovery that does not happen still
// counts as partial there.
func (b *box) inventoryPending(pending bool) (inventory, string) {
	b.t.Helper()
	inv := inventory{count: map[string]int{}}
	classify := func(where string, data []byte) {
		m := idRE.FindSubmatch(data)
		if m == nil {
			inv.partial = append(inv.partial, fmt.Sprintf("%s: %d bytes without X-Fault-Id: %.80q", where, len(data), data))
			return
		}
		id := string(m[1])
		if want, ok := b.want[id]; !ok || !bytes.Equal(data, want) {
			inv.partial = append(inv.partial, fmt.Sprintf("%s: message %s is not whole (%d bytes, want %d)", where, id, len(data), len(want)))
			return
		}
		inv.count[id]++
	}
	mb := filepath.Join(b.base, b.mailboxPath())
	if b.format == "maildir" {
		for _, sub := range []string{"new", "cur"} {
			ents, err := os.ReadDir(filepath.Join(mb, sub))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				b.t.Fatal(err)
			}
			for _, e := range ents {
				data, err := os.ReadFile(filepath.Join(mb, sub, e.Name()))
				must(b.t, err)
				classify(sub+"/"+e.Name(), data)
			}
		}
		tmps, _ := os.ReadDir(filepath.Join(mb, "tmp"))
		inv.tmp = len(tmps)
		return inv, ""
	}
	data, err := os.ReadFile(mb)
	if errors.Is(err, fs.ErrNotExist) {
		return inv, ""
	}
	must(b.t, err)
	note := ""
	if pending {
		if cut, desc := b.pendingCut(data); cut >= 0 {
			data, note = data[:cut], desc
		}
	}
	for i, rec := range splitMbox(data) {
		loc := fromLine.FindIndex(rec)
		if loc == nil || !bytes.HasSuffix(rec, []byte("\n\n")) {
			what := "bytes"
			if m := idRE.FindSubmatch(rec); m != nil {
				what = "message " + string(m[1])
			}
			inv.partial = append(inv.partial, fmt.Sprintf("record %d: %s not framed: %.60q ... %q", i, what, rec, rec[max(0, len(rec)-20):]))
			continue
		}
		body := rec[loc[1] : len(rec)-1]
		// Undo nothing: compare against the quoted form of what was sent.
		m := idRE.FindSubmatch(body)
		if m != nil {
			if want, ok := b.want[string(m[1])]; ok && bytes.Equal(body, quote(want)) {
				inv.count[string(m[1])]++
				continue
			}
		}
		classify(fmt.Sprintf("record %d", i), body)
	}
	return inv, note
}

// splitMbox cuts an mbox at every line that starts "From ".
func splitMbox(data []byte) [][]byte {
	var recs [][]byte
	start := 0
	for i := 0; i < len(data); {
		j := bytes.Index(data[i:], []byte("\nFrom "))
		if j < 0 {
			break
		}
		cut := i + j + 1
		recs = append(recs, data[start:cut])
		start = cut
		i = cut
	}
	if start < len(data) {
		recs = append(recs, data[start:])
	}
	return recs
}

// snapshot is every file under the base with its contents' hash: "the
// mailbox is exactly as it was" is snapshot equality.
func (b *box) snapshot() map[string]string {
	b.t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(b.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.base, p)
		if rel == "filler" || rel == "lost+found" {
			return nil
		}
		if d.IsDir() {
			snap[rel+"/"] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		snap[rel] = fmt.Sprintf("%d:%x", len(data), sum[:8])
		return nil
	})
	must(b.t, err)
	return snap
}

func diffSnap(before, after map[string]string) string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return strings.Join(d, ", ")
}

// check compares the inventory with how many copies of each id must be
// there (lo..hi), adds the counts to the table row and fails the test on any.
func (b *box) check(fault string, bounds map[string][2]int) inventory {
	b.t.Helper()
	return b.checkInv(fault, bounds, false)
}

// checkKilled is check right after a delivery was killed: a fragment the
// mbox intent record proves recoverable is not counted (see
// inventoryPending); the check after the next delivery is strict.
func (b *box) checkKilled(fault string, bounds map[string][2]int) inventory {
	b.t.Helper()
	return b.checkInv(fault, bounds, true)
}

func (b *box) checkInv(fault string, bounds map[string][2]int, pending bool) inventory {
	b.t.Helper()
	inv, note := b.inventoryPending(pending)
	if note != "" && testing.Verbose() {
		b.t.Logf("%s/%s: %s", fault, b.format, note)
	}
	if b.format == "mbox" && !pending {
		// A delivery that ran to its end, or the recovery of the next
		// one, removes the intent record.
		if _, err := os.Lstat(b.intentName()); err == nil {
			inv.partial = append(inv.partial, "intent record left after a finished delivery")
		}
	}
	var lost, dup int
	for id, lh := range bounds {
		n := inv.count[id]
		if n < lh[0] {
			lost++
			b.t.Errorf("%s/%s: message %s lost (%d copies, want at least %d)", fault, b.format, id, n, lh[0])
		}
		if n > lh[1] {
			dup++
			b.t.Errorf("%s/%s: message %s duplicated (%d copies, want at most %d)", fault, b.format, id, n, lh[1])
		}
	}
	partial := 0
	for _, p := range inv.partial {
		key := partialID(p) // a fragment once framed reads differently
		if key == "" {
			key = p
		}
		if b.seen[key] {
			continue
		}
		b.seen[key] = true
		partial++
		b.t.Errorf("%s/%s: partial: %s", fault, b.format, p)
	}
	tally.add(fault, b.format, func(r *row) {
		r.lost += lost
		r.dup += dup
		r.partial += partial
	})
	return inv
}

var partialIDRE = regexp.MustCompile(`message (\S+) `)

// partialID is the message a partial finding is about, or "".
func partialID(desc string) string {
	if m := partialIDRE.FindStringSubmatch(desc); m != nil {
		return m[1]
	}
	return ""
}

// status checks exit code and status line; a mismatch counts as wrong status.
func (b *box) status(fault string, r result, exit int, line string) bool {
	b.t.Helper()
	if r.exit == exit && (r.stdout == line+"\n" || (strings.HasSuffix(line, "*") && strings.HasPrefix(r.stdout, strings.TrimSuffix(line, "*")))) && r.stderr == "" {
		return true
	}
	b.t.Errorf("%s/%s: %v; want exit %d, stdout %q", fault, b.format, r, exit, line)
	tally.add(fault, b.format, func(r *row) { r.wrongStat++ })
	return false
}

func (b *box) run1(fault string) {
	tally.add(fault, b.format, func(r *row) { r.runs++ })
}

func delivered(format string) string {
	if format == "maildir" {
		return "2.0.0 delivered to maildir"
	}
	return "2.0.0 delivered to mailbox"
}

// failPrefix is the reason prefix of a failed delivery (classify in deliver/).
func failPrefix(format string) string {
	if format == "maildir" {
		return "maildir delivery failed: "
	}
	return "delivery failed to mailbox: "
}

var formats = []string{"maildir", "mbox"}

func itoa(i int) string { return strconv.Itoa(i) }

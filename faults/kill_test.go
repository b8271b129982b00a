package faults

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Low stale_lock_time so a dotlock left by a killed delivery goes stale
// quickly; deliver_lock_delay is Postfix's default of 1s.
var lockOpts = []string{"stale_lock_time=1s", "deliver_lock_delay=1s", "deliver_lock_attempts=20"}

// followUpLimit: a follow-up must get through within stale_lock_time plus
// two lock delays (the attempt that finds the lock not yet stale sleeps up
// to 1.25 s), plus slack for a loaded machine.
const followUpLimit = 1*time.Second + 2500*time.Millisecond + 2*time.Second

type killCase struct {
	point string // VDELIVER_KILL_AT
	fresh bool   // the mailbox does not exist yet
	fault string // VDELIVER_FAULT armed at the same time
	locks string // virtual_mailbox_lock, "" for the default (fcntl, dotlock)
	torn  bool   // a delivery killed mid-write went before: the killed one recovers
}

func killCases(format string) []killCase {
	if format == "maildir" {
		cs := []killCase{}
		for _, p := range []string{"maildir:start", "maildir:tmp-created", "maildir:half-write", "maildir:half-write#2",
			"maildir:written", "maildir:synced", "maildir:closed", "maildir:linked", "maildir:tmp-removed", "maildir:done"} {
			cs = append(cs, killCase{point: p})
		}
		// A new maildir: alice/, tmp/, new/, cur/ are made one by one.
		for _, p := range []string{"maildir:mkdir#1", "maildir:mkdir#2", "maildir:mkdir#3", "maildir:mkdir#4",
			"maildir:tmp-created", "maildir:linked", "maildir:done"} {
			cs = append(cs, killCase{point: p, fresh: true})
		}
		// The rename fallback when link(2) is refused.
		cs = append(cs, killCase{point: "maildir:renamed", fault: "maildir:link-eperm"},
			killCase{point: "maildir:tmp-removed", fault: "maildir:link-eperm"})
		return cs
	}
	var cs []killCase
	points := []string{"mbox:start", "mbox:dotlocked", "mbox:opened", "mbox:fcntl-locked", "mbox:checked",
		"mbox:half-write", "mbox:written", "mbox:synced", "mbox:closed"}
	for _, p := range points {
		cs = append(cs, killCase{point: p})
	}
	for _, p := range []string{"mbox:dotlocked", "mbox:opened", "mbox:half-write", "mbox:synced", "mbox:closed"} {
		cs = append(cs, killCase{point: p, fresh: true})
	}
	// All three lock kinds, and a roll-back that is itself interrupted.
	for _, p := range []string{"mbox:flocked", "mbox:fcntl-locked", "mbox:half-write", "mbox:closed"} {
		cs = append(cs, killCase{point: p, locks: "flock, fcntl, dotlock"})
	}
	cs = append(cs, killCase{point: "mbox:rolled-back", fault: "mbox:half-eio"},
		killCase{point: "mbox:rolled-back", fault: "mbox:fsync-eio"})
	// The intent record (mbox/doc.go, "Torn writes"): killed while making
	// it, half through its header (#1) or its copy of the record (#2), and
	// after its removal.
	for _, p := range []string{"mbox:intent-created", "mbox:intent-half", "mbox:intent-half#2", "mbox:intent-synced", "mbox:intent-removed"} {
		cs = append(cs, killCase{point: p})
	}
	cs = append(cs, killCase{point: "mbox:intent-synced", fresh: true}, killCase{point: "mbox:half-write", locks: "flock"},
		killCase{point: "mbox:half-write", locks: "dotlock"})
	// The recovery itself killed: after the truncation, after the record's
	// removal, and a second tear of the delivery that recovered.
	for _, p := range []string{"mbox:recovered", "mbox:intent-cleared", "mbox:half-write"} {
		cs = append(cs, killCase{point: p, torn: true})
	}
	cs = append(cs, killCase{point: "mbox:recovered", torn: true, fresh: true})
	return cs
}

// TestKill: a delivery SIGKILLed at a kill point leaves the mailbox with
// nothing new or the whole message, and the next delivery succeeds within
// the stale-lock rules.
func TestKill(t *testing.T) {
	reps := 1
	if full {
		reps = 5
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			for _, kc := range killCases(format) {
				name := kc.point
				if kc.fresh {
					name += "/new"
				}
				if kc.fault != "" {
					name += "/" + kc.fault
				}
				if kc.locks != "" {
					name += "/" + strings.ReplaceAll(strings.ReplaceAll(kc.locks, ", ", "+"), "flock+fcntl+dotlock", "all-locks")
				}
				if kc.torn {
					name += "/after-torn"
				}
				t.Run(name, func(t *testing.T) {
					for i := range reps {
						killOnce(t, format, kc, i)
					}
				})
			}
		})
	}
}

func killOnce(t *testing.T, format string, kc killCase, rep int) {
	b := newBox(t, format, "")
	opts := append([]string{}, lockOpts...)
	if kc.locks != "" {
		opts = append(opts, "virtual_mailbox_lock="+kc.locks)
	}
	bounds := map[string][2]int{}
	if !kc.fresh {
		r := b.deliver(message("seed", 3000), runOpt{bin: binPlain, o: opts})
		if r.exit != 0 {
			t.Fatalf("seed delivery: %v", r)
		}
		bounds["seed"] = [2]int{1, 1}
	}
	fault := "kill"
	id := fmt.Sprintf("killed-%d", rep)
	if strings.HasPrefix(kc.point, "mbox:half-write") || kc.torn {
		// SIGKILL during write(2) leaves the part written so far and no
		// process to truncate it; the intent record lets the next
		// delivery cut it off (mbox/doc.go, "Torn writes").
		fault = "kill-torn"
	}
	if kc.torn {
		torn := fmt.Sprintf("torn-%d", rep)
		r := b.deliver(message(torn, 20000), runOpt{env: []string{"VDELIVER_KILL_AT=mbox:half-write"}, o: opts})
		if r.exit != -1 || r.signal != syscall.SIGKILL {
			t.Fatalf("the tearing delivery was not killed: %v", r)
		}
		bounds[torn] = [2]int{0, 0}
		b.checkKilled(fault, bounds)
		if _, err := os.Lstat(b.intentName()); err != nil {
			t.Fatalf("the torn delivery left no intent record: %v", err)
		}
		// Its dotlock is left behind; the recovering delivery, killed
		// below, must first find it stale (stale_lock_time=1s).
	}
	b.run1(fault)
	env := []string{"VDELIVER_KILL_AT=" + kc.point}
	if kc.fault != "" {
		env = append(env, "VDELIVER_FAULT="+kc.fault)
	}
	r := b.deliver(message(id, 20000), runOpt{env: env, o: opts})
	if r.exit != -1 || r.signal != syscall.SIGKILL {
		t.Fatalf("kill point %s was not reached: %v", kc.point, r)
	}
	tally.killpoint(kc.point)
	bounds[id] = [2]int{0, 1}
	inv := b.checkKilled(fault, bounds)

	// The follow-up, by the normal build, as Postfix's retry or the next
	// message would come.
	r2 := b.deliver(message("next", 5000), runOpt{bin: binPlain, o: opts})
	b.status(fault, r2, 0, delivered(format))
	if r2.dur > followUpLimit {
		t.Errorf("follow-up took %v, more than stale_lock_time allows (%v)", r2.dur, followUpLimit)
		tally.add(fault, format, func(r *row) { r.wrongStat++ })
	}
	bounds["next"] = [2]int{1, 1}
	inv2 := b.check(fault, bounds)
	if inv2.count[id] != inv.count[id] {
		t.Errorf("the killed delivery's message went from %d to %d copies", inv.count[id], inv2.count[id])
	}
	if format == "mbox" {
		if _, err := os.Lstat(filepath.Join(b.base, "alice.lock")); err == nil {
			t.Errorf("alice.lock still there after the follow-up")
		}
	}
	if testing.Verbose() {
		t.Logf("%s: killed message present %d, tmp/ leftovers %d", kc.point, inv.count[id], inv2.tmp)
	}
}

// TestKillRandom: SIGKILL at a random moment of a delivery of a 4 MB message,
// where no kill point is, then a follow-up delivery.
func TestKillRandom(t *testing.T) {
	runs := 6
	if full {
		runs = 100
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			b := newBox(t, format, "")
			// 100 messages of 4 MB pass the default 51200000 limit.
			opts := append([]string{"virtual_mailbox_limit=0"}, lockOpts...)
			r := b.deliver(message("seed", 4<<20), runOpt{bin: binPlain, o: opts})
			if r.exit != 0 {
				t.Fatalf("seed delivery: %v", r)
			}
			span := r.dur
			bounds := map[string][2]int{"seed": {1, 1}}
			killed := 0
			for i := range runs {
				b.run1("kill-random")
				id := fmt.Sprintf("random-%d", i)
				d := time.Duration(rand.Int64N(int64(span) + 1))
				r := b.deliver(message(id, 4<<20), runOpt{bin: binPlain, o: opts, kill: d})
				switch {
				case r.exit == -1:
					killed++
					bounds[id] = [2]int{0, 1}
				case r.exit == 0:
					bounds[id] = [2]int{1, 1}
					b.status("kill-random", r, 0, delivered(format))
				default:
					b.status("kill-random", r, 0, delivered(format))
				}
				// The kill may land inside write(2): the fragment
				// waits for the next delivery (kill-torn).
				b.checkKilled("kill-random", bounds)
				next := fmt.Sprintf("random-next-%d", i)
				r2 := b.deliver(message(next, 2000), runOpt{bin: binPlain, o: opts})
				b.status("kill-random", r2, 0, delivered(format))
				bounds[next] = [2]int{1, 1}
				b.check("kill-random", bounds)
			}
			if killed == 0 {
				t.Errorf("no run out of %d was killed before it finished", runs)
			}
			t.Logf("%d of %d runs killed mid-delivery", killed, runs)
		})
	}
}

// TestKillRecovery: byte for byte, a delivery killed in the middle of its
// mbox write leaves the old mailbox, the fragment and an intent record; the
// next delivery (the normal build) puts the mailbox back to its old bytes
// before appending its own record, and removes the record. Run with each
// lock that allows recovery.
func TestKillRecovery(t *testing.T) {
	for _, locks := range []string{"fcntl, dotlock", "flock", "fcntl", "dotlock"} {
		t.Run(strings.ReplaceAll(locks, ", ", "+"), func(t *testing.T) {
			b := newBox(t, "mbox", "")
			opts := append([]string{"virtual_mailbox_lock=" + locks}, lockOpts...)
			if r := b.deliver(message("seed", 3000), runOpt{bin: binPlain, o: opts}); r.exit != 0 {
				t.Fatalf("seed delivery: %v", r)
			}
			mb := filepath.Join(b.base, b.mailboxPath())
			before, err := os.ReadFile(mb)
			must(t, err)

			b.run1("kill-torn")
			r := b.deliver(message("torn", 50000), runOpt{env: []string{"VDELIVER_KILL_AT=mbox:half-write"}, o: opts})
			if r.exit != -1 || r.signal != syscall.SIGKILL {
				t.Fatalf("not killed: %v", r)
			}
			tally.killpoint("mbox:half-write")
			torn, err := os.ReadFile(mb)
			must(t, err)
			if !bytes.HasPrefix(torn, before) || len(torn) == len(before) {
				t.Fatalf("the killed delivery left %d bytes after the old %d: no fragment to recover", len(torn)-len(before), len(before))
			}
			if cut, desc := b.pendingCut(torn); cut != len(before) {
				t.Fatalf("intent record does not describe the fragment: cut %d, want %d (%s)", cut, len(before), desc)
			}

			r2 := b.deliver(message("next", 5000), runOpt{bin: binPlain, o: opts})
			b.status("kill-torn", r2, 0, delivered("mbox"))
			after, err := os.ReadFile(mb)
			must(t, err)
			if !bytes.HasPrefix(after, before) {
				t.Fatalf("the old mailbox bytes changed: %d bytes now, %d before", len(after), len(before))
			}
			rec := after[len(before):]
			loc := fromLine.FindIndex(rec)
			want := append(quote(b.want["next"]), '\n')
			if loc == nil || loc[0] != 0 || !bytes.Equal(rec[loc[1]:], want) {
				t.Errorf("after the old bytes: %.100q...; want exactly one From_ line and the next message", rec)
				tally.add("kill-torn", "mbox", func(r *row) { r.partial++ })
			}
			if _, err := os.Lstat(b.intentName()); err == nil {
				t.Errorf("intent record left after the recovering delivery")
			}
			b.check("kill-torn", map[string][2]int{"seed": {1, 1}, "torn": {0, 0}, "next": {1, 1}})
		})
	}
}

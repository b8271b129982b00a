// Package faultinject is the switchboard of the fault-injection build (tag faultinject),
// shared by maildir/ and mbox/: the faults/ suite arms it through the environment to kill
// a delivery at a named step or to make a seam fail. Only the tagged files of those
// packages import it, so a normal build contains none of it.
//
// VDELIVER_KILL_AT=name or name#n makes the n-th (default first) pass through the kill
// point name SIGKILL the process. VDELIVER_FAULT is a comma-separated list of armed fault
// names; each package documents its own.
package faultinject

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// Armed counts a pass through the kill point name and reports whether this is the pass
// VDELIVER_KILL_AT asks to die at.
func Armed(name string) bool {
	want, nth, _ := strings.Cut(os.Getenv("VDELIVER_KILL_AT"), "#")
	if want != name {
		return false
	}
	n := 1
	if nth != "" {
		n, _ = strconv.Atoi(nth)
	}
	mu.Lock()
	defer mu.Unlock()
	hits[name]++
	return hits[name] == n
}

// Die kills the process with SIGKILL and never returns into the delivery.
func Die() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught
}

// Kill dies if the kill point name is armed for this pass.
func Kill(name string) {
	if Armed(name) {
		Die()
	}
}

// Fault reports whether VDELIVER_FAULT arms the fault name. A fault that fires is
// appended as a line to the file $VDELIVER_FAULT_LOG, when set, so that a test whose
// delivery succeeds anyway can tell that the fault was reached.
func Fault(name string) bool {
	for _, f := range strings.Split(os.Getenv("VDELIVER_FAULT"), ",") {
		if f == name {
			if p := os.Getenv("VDELIVER_FAULT_LOG"); p != "" {
				if l, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666); err == nil {
					l.WriteString(name + "\n")
					l.Close()
				}
			}
			return true
		}
	}
	return false
}

package privilege

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// A switch cannot be undone in the test process, so each runs in a child: this test
// binary again, with VDELIVER_PRIVILEGE_CHILD naming the switch. The child checks the ids
// of every one of its threads and prints "ok" or what is wrong.
func TestMain(m *testing.M) {
	if what := os.Getenv("VDELIVER_PRIVILEGE_CHILD"); what != "" {
		if err := child(what); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ok")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const uid, gid = 5000, 5001

// threadIDs returns, for every thread of the process, its Uid, Gid and Groups lines
// from /proc (real, effective, saved and file-system ids).
func threadIDs() ([]string, error) {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) < 2 {
		return nil, fmt.Errorf("%d threads (%v), want several", len(tasks), err)
	}
	var out []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
				ids = append(ids, strings.Join(strings.Fields(l), " "))
			}
		}
		out = append(out, strings.Join(ids, "; "))
	}
	return out, nil
}

// allThreads checks that every thread has the ids want.
func allThreads(want string) error {
	ids, err := threadIDs()
	if err != nil {
		return err
	}
	for _, got := range ids {
		if got != want {
			return fmt.Errorf("a thread has %q, want %q", got, want)
		}
	}
	return nil
}

func child(what string) error {
	// Threads that exist before the switch, each locked to its goroutine.
	for range 4 {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	// Supplementary groups to clear or keep, as a caller's or root's would be; set the
	// way the standard library sets them, on every thread.
	if err := syscall.Setgroups([]int{7, 5000}); err != nil {
		return err
	}
	before, err := threadIDs()
	if err != nil {
		return err
	}
	groups := strings.SplitN(before[0], "; ", 3)[2]
	if groups != "Groups: 7 5000" {
		return fmt.Errorf("set up: %q", before[0])
	}
	switch what {
	case "Become":
		if err := Become(uid, gid); err != nil {
			return err
		}
		return allThreads("Uid: 5000 5000 5000 5000; Gid: 5001 5001 5001 5001; Groups:")
	case "Drop":
		if err := Drop(uid, gid); err != nil {
			return err
		}
		return allThreads("Uid: 5000 5000 5000 5000; Gid: 5001 5001 5001 5001; " + groups)
	case "Effective":
		restore, err := Effective(uid, gid)
		if err != nil {
			return err
		}
		if err := allThreads("Uid: 0 5000 0 5000; Gid: 0 5001 0 5001; Groups: 5001"); err != nil {
			return err
		}
		if err := restore(); err != nil {
			return err
		}
		return allThreads(before[0])
	}
	return fmt.Errorf("unknown switch %q", what)
}

func TestSwitches(t *testing.T) {
	if os.Geteuid() != 0 || os.Getuid() != 0 || os.Getgid() != 0 {
		t.Skip("not root: only root changes its ids (CI runs as root)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"Become", "Drop", "Effective"} {
		t.Run(what, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "VDELIVER_PRIVILEGE_CHILD="+what)
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "ok\n" {
				t.Fatalf("%s: %v: %s", what, err, out)
			}
		})
	}
}

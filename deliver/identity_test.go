package deliver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The identity switch is irreversible, so it runs in a child copy of the test binary.
// The child starts several OS threads first, switches, then reports every thread's
// Uid/Gid/Groups lines from /proc/self/task/*/status.
func TestIdentitySwitchesEveryThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the switch from root to the recipient is what is tested (CI runs as root)")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VDELIVER_IDENTITY_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	threads := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "task ") {
			continue
		}
		threads++
		if !strings.Contains(l, "Uid:\t5000\t5000\t5000\t5000") || !strings.Contains(l, "Gid:\t5000\t5000\t5000\t5000") ||
			!strings.Contains(l, "Groups:|") {
			t.Errorf("thread not switched: %s", l)
		}
	}
	if threads < 4 {
		t.Fatalf("only %d threads reported:\n%s", threads, out)
	}
}

// TestMain runs identityChild instead of the tests in the child that
// TestIdentitySwitchesEveryThread starts.
func TestMain(m *testing.M) {
	if os.Getenv("VDELIVER_IDENTITY_CHILD") == "1" {
		if err := identityChild(); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func identityChild() error {
	// Hold several goroutines on their own OS threads across the switch.
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < 4; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			runtime.LockOSThread()
			ready.Done()
			<-release
			done.Done()
		}()
	}
	ready.Wait()
	var id identity
	if err := id.become(5000, 5000); err != nil {
		return err
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
				keep = append(keep, strings.TrimSpace(l))
			}
		}
		fmt.Printf("task %s %s|\n", filepath.Base(filepath.Dir(p)), strings.Join(keep, " "))
	}
	close(release)
	done.Wait()
	// A second, different identity in the same run is refused; the same one is fine.
	if err := id.become(5000, 5000); err != nil {
		return err
	}
	if err := id.become(5001, 5000); err == nil {
		return fmt.Errorf("switched identity twice")
	}
	return nil
}

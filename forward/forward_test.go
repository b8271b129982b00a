package forward

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnviron(t *testing.T) {
	env := map[string]string{"TZ": "UTC", "HOME": "/root", "MAIL_CONFIG": "/etc/postfix", "PATH": "/sbin", "LD_PRELOAD": "/x.so"}
	got := Environ(func(k string) string { return env[k] })
	want := []string{"PATH=/usr/bin:/bin", "TZ=UTC", "MAIL_CONFIG=/etc/postfix"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Environ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/usr/bin:/bin"}, Environ(nil)); diff != "" {
		t.Errorf("Environ(nil) (-want +got):\n%s", diff)
	}
}

// Run against real commands: what the command gets (arguments, stdin, directory,
// environment) and how each way of ending is reported.
func TestRun(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script, "sh"} }
	msg := []byte("Subject: hi\n\nbody\n")
	getenv := func(k string) string { return map[string]string{"TZ": "UTC", "HOME": "/root"}[k] }
	for _, tc := range []struct {
		name   string
		argv   []string
		ctx    time.Duration // a deadline, if set
		want   Result        // Err compared by presence only
		output string        // if set, exact
	}{
		{name: "what the command gets", argv: sh(`printf '[%s]' "$@"; echo; pwd; env | sort | grep -v '^PWD=\|^SHLVL=\|^_='; cat`),
			want:   Result{Args: []string{"/bin/sh", "-c", "", "sh", "-f", `"a b"@x`, "--", "c@y"}},
			output: "[-f][\"a b\"@x][--][c@y]\n/\nPATH=/usr/bin:/bin\nTZ=UTC\nDelivered-To: r@z\nSubject: hi\n\nbody\n"},
		{name: "exit 75", argv: sh("exit 75"), want: Result{Exited: true, ExitCode: 75}},
		{name: "exit 67", argv: sh("echo no such user >&2; exit 67"), want: Result{Exited: true, ExitCode: 67}, output: "no such user\n"},
		{name: "killed by a signal", argv: sh("kill -TERM $$"), want: Result{Signal: syscall.SIGTERM}},
		{name: "not started", argv: []string{"/nonexistent/sendmail"}, want: Result{}},
		{name: "output kept to 4096 bytes", argv: sh("head -c 10000 /dev/zero | tr '\\0' x"), output: strings.Repeat("x", 4096)},
		{name: "the deadline kills the process group", argv: sh("sleep 60 & echo $!; wait"), ctx: 500 * time.Millisecond,
			want: Result{Signal: syscall.SIGKILL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			got := Run(ctx, Command{Argv: tc.argv, Sender: `"a b"@x`, Recipient: "r@z", Address: "c@y", Message: msg, Getenv: getenv})
			wantErr := tc.want.Exited || tc.want.Signal != 0 || tc.name == "not started"
			if (got.Err != nil) != wantErr {
				t.Errorf("Err = %v, want an error: %v", got.Err, wantErr)
			}
			if got.Exited != tc.want.Exited || got.ExitCode != tc.want.ExitCode || got.Signal != tc.want.Signal {
				t.Errorf("Exited %v ExitCode %d Signal %d, want %v %d %d", got.Exited, got.ExitCode, got.Signal, tc.want.Exited, tc.want.ExitCode, tc.want.Signal)
			}
			if tc.want.Args != nil {
				tc.want.Args[2] = tc.argv[2]
				if diff := cmp.Diff(tc.want.Args, got.Args); diff != "" {
					t.Errorf("Args (-want +got):\n%s", diff)
				}
			}
			if tc.output != "" && got.Output != tc.output {
				t.Errorf("Output = %q, want %q", got.Output, tc.output)
			}
			if tc.ctx > 0 {
				// The command's own child dies with it. It may still be on its way out
				// when Run returns: wait for that, far less than its 60 s of sleep.
				pid := strings.TrimSpace(got.Output)
				for i := 0; alive(pid); i++ {
					if i == 100 {
						t.Errorf("the command's child %s outlived it", pid)
						if n, err := strconv.Atoi(pid); err == nil {
							syscall.Kill(n, syscall.SIGKILL)
						}
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
}

// alive reports whether pid names a process that is neither gone nor a zombie.
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

package cli

import (
	"strings"
	"testing"
)

// The rule internal/setuid's init drops privileges by (the first argument does not start with
// "-") and the rule run routes to the subcommands by must agree: every subcommand line
// runs with the caller's own rights, and a run that keeps root's is a delivery.
func TestSubcommandsDropPrivileges(t *testing.T) {
	names := []string{"help", "h"}
	for _, c := range adminCommands(&cmdIO{}) {
		names = append(names, c.Name)
		names = append(names, c.Aliases...)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "-") || n == "" {
			t.Errorf("command %q starts with \"-\": internal/setuid's init would not drop privileges for it", n)
		}
		if !routesToAdmin([]string{"vdeliver", n}, true) {
			t.Errorf("vdeliver %s is not routed to the subcommands", n)
		}
	}
	for _, tc := range []struct {
		args   []string
		setuid bool
		admin  bool
	}{
		{[]string{"vdeliver", "--generate-bash-completion"}, false, true},
		{[]string{"vdeliver", "--generate-bash-completion"}, true, false},
		{[]string{"vdeliver", "-f", "s", "--no-", "--generate-bash-completion"}, true, false},
		{[]string{"vdeliver", "-f", "s", "--", "--generate-bash-completion"}, false, false},
		{[]string{"vdeliver", "--", "check"}, false, false},
		{[]string{"vdeliver", "-f", "s", "--", "help"}, false, false},
		{[]string{"vdeliver", "-c", "check", "--", "a@b"}, false, false},
		{[]string{"vdeliver", "a@example.com"}, false, false},
		{[]string{"vdeliver", "check", "-c", "x"}, true, true},
		{[]string{"vdeliver", "explain-probe"}, true, true},
		{[]string{"vdeliver"}, false, false},
	} {
		if got := routesToAdmin(tc.args, tc.setuid); got != tc.admin {
			t.Errorf("routesToAdmin(%q, setuid %v) = %v, want %v", tc.args, tc.setuid, got, tc.admin)
		}
	}
}

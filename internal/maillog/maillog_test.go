package maillog

import (
	"strings"
	"testing"
)

func TestLineSeverity(t *testing.T) {
	for _, tc := range []struct {
		line string
		sev  int
	}{
		{"8DeF4: to=<a@b>, relay=vdeliver, delay=0, size=1, dsn=2.0.0, status=sent (x)", sevInfo},
		{"warning: /etc/postfix/vmailbox.db is older than its source", sevWarning},
		{"NOQUEUE: warning: 2 destinations and no queue id", sevWarning},
		{"8DeF4: warning: delivery journal: x", sevWarning},
		{"error: x", sevError},
		{"fatal: x", sevCrit},
		{"8DeF4: to=<warning: x>, status=sent", sevInfo},
		{"8DeF4: alias <a@b> expanded to <warning: @x>", sevInfo},
	} {
		if got := lineSeverity(tc.line); got != tc.sev {
			t.Errorf("lineSeverity(%q) = %d, want %d", tc.line, got, tc.sev)
		}
	}
}

// FuzzLineSeverity: every line gets one of Postfix's severities, and a line without a
// severity word is informational.
func FuzzLineSeverity(f *testing.F) {
	for _, s := range []string{"8DeF4: to=<a@b>, status=sent", "warning: x", "NOQUEUE: warning: y", "a: b: error: c", "fatal: z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sev := lineSeverity(s)
		switch sev {
		case sevInfo, sevWarning, sevError, sevCrit:
		default:
			t.Fatalf("lineSeverity(%q) = %d", s, sev)
		}
		words := []string{"warning: ", "error: ", "fatal: ", "panic: "}
		has := false
		for _, w := range words {
			has = has || strings.Contains(s, w)
		}
		if !has && sev != sevInfo {
			t.Fatalf("lineSeverity(%q) = %d without a severity word", s, sev)
		}
	})
}

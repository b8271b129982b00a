package lmtp

import "testing"

// TestReplyCode pins the basic reply code for each kind of status, after DATA and at
// RCPT; a full mailbox is 552 when it bounces and 452 when it defers, as Dovecot's LMTP
// answers over quota.
func TestReplyCode(t *testing.T) {
	for _, tc := range []struct {
		enh       string
		afterData bool
		want      int
	}{
		{"2.0.0", true, 250},
		{"4.2.0", true, 450},
		{"4.2.2", true, 452},
		{"4.5.3", false, 452},
		{"4.3.5", false, 451},
		{"4.3.0", true, 451},
		{"5.1.1", false, 550},
		{"5.2.2", true, 552},
		{"5.3.4", true, 552},
		{"5.4.6", true, 554},
		{"5.4.6", false, 550},
	} {
		if got := replyCode(tc.enh, tc.afterData); got != tc.want {
			t.Errorf("replyCode(%q, %v) = %d, want %d", tc.enh, tc.afterData, got, tc.want)
		}
	}
}

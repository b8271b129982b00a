package deliver

import (
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\nb", "a\nb\n"},
		{"a\rb\n", "a\rb\n"},
		{"a\r\n\r\nb", "a\n\nb\n"},
		{"", ""},
		{"x\x00y", "x\x00y\n"},
	} {
		if got := string(Normalize([]byte(tc.in))); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPrependedHeaders(t *testing.T) {
	for _, tc := range []struct {
		env  Envelope
		orig bool
		want string
	}{
		{Envelope{Sender: "a@x", OrigRcpt: "Joe@X", Recipient: "Joe@X"}, true,
			"Return-Path: <a@x>\nX-Original-To: Joe@X\nDelivered-To: Joe@X\n"},
		{Envelope{Sender: "", OrigRcpt: "", Recipient: "joe@x"}, true,
			"Return-Path: <>\nDelivered-To: joe@x\n"},
		{Envelope{Sender: "john doe@x", OrigRcpt: "o@x", Recipient: "j@x"}, false,
			"Return-Path: <\"john doe\"@x>\nDelivered-To: j@x\n"},
	} {
		if got := string(prependedHeaders(tc.env, tc.orig)); got != tc.want {
			t.Errorf("prependedHeaders(%+v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestDeliveredTo(t *testing.T) {
	msg := "Received: x\n\tcontinued Delivered-To: hidden@x\nDelivered-To: \t Joe@X\n" +
		"delivered-to: <angle@x>\nDelivered-To : spaced@x\nDelivered-To: blank@x \nDelivered-To: tab@x\t\n" +
		"\nDelivered-To: body@x\n"
	seen := deliveredTo([]byte(msg))
	for addr, want := range map[string]bool{
		"joe@x": true, "JOE@x": true, "spaced@x": true, "hidden@x": false, "body@x": false, "angle@x": false,
		"blank@x": false, "tab@x": false,
	} {
		if got := isLoop(seen, addr); got != want {
			t.Errorf("isLoop(%q) = %v, want %v (seen %v)", addr, got, want, seen)
		}
	}
}

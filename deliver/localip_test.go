package deliver

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// The [ip] literals of resolve_local() used to go through the net package; parseIP and
// ifaddrs.List replace it (start-up cost, bench/mda/README.md). These tests hold them
// to what net answered.

func TestParseIPAsNet(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "10.1.2.3", "::1", "fe80::1", "::ffff:192.0.2.1", "2001:db8::1",
		"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "fe80::1%eth0", "::ffff:1.2.3.4%x",
		"1.2.3.4 ", " 1.2.3.4", "[::1]", "::1]", "ipv6:::1", "0:0:0:0:0:0:0:1", "::",
		"0.0.0.0", "1::2::3", "abcd", "1.2.3.04",
	} {
		checkParseIP(t, s)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:1.2.3.4", "fe80::1%lo", "1.2.3.04"} {
		f.Add(s)
	}
	f.Fuzz(checkParseIP)
}

func checkParseIP(t *testing.T, s string) {
	got, ok := parseIP(s)
	want := net.ParseIP(s)
	if ok != (want != nil) {
		t.Fatalf("parseIP(%q) ok=%v, net.ParseIP=%v", s, ok, want)
	}
	if !ok {
		return
	}
	w, _ := netip.AddrFromSlice(want)
	if w.Unmap() != got {
		t.Fatalf("parseIP(%q) = %v, net.ParseIP = %v", s, got, want)
	}
}

func TestIsLocalLiteral(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		ifaces []string
		domain string
		want   bool
	}{
		{[]string{"all"}, "[127.0.0.1]", true},
		{[]string{"all"}, "[ipv6:::1]", true},
		{[]string{"all"}, "[192.0.2.77]", false},
		{[]string{"all"}, "[::ffff:127.0.0.1]", true},
		{[]string{"all"}, "[127.0.0.1%lo]", false},
		{[]string{"loopback-only"}, "[127.0.0.2]", true},
		{[]string{"loopback-only"}, "[::ffff:127.0.0.2]", true},
		{[]string{"loopback-only"}, "[ipv6:::1]", true},
		{[]string{"loopback-only"}, "[10.0.0.1]", false},
		{[]string{"192.0.2.1", "[2001:db8::1]"}, "[192.0.2.1]", true},
		{[]string{"192.0.2.1", "[2001:db8::1]"}, "[ipv6:2001:db8:0::1]", true},
		{[]string{"192.0.2.1", "[2001:db8::1]"}, "[::ffff:192.0.2.1]", true},
		{[]string{"192.0.2.1"}, "[192.0.2.2]", false},
		{[]string{"192.0.2.1"}, "[192.0.2.1.]", false},
		{[]string{"192.0.2.1"}, "[192.0.2.1]", true},
		{[]string{"192.0.2.1"}, "[192.0.2.1].", true},
	} {
		s := &Settings{Interfaces: tc.ifaces, MyDestination: &DomainList{}}
		got, err := s.isLocal(ctx, tc.domain)
		if err != nil || got != tc.want {
			t.Errorf("interfaces %q: isLocal(%q) = %v, %v; want %v", tc.ifaces, tc.domain, got, err, tc.want)
		}
	}
}

package ifaddrs

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

// List replaced net.InterfaceAddrs (start-up cost, bench/mda/README.md): it must answer
// what net answers.
func TestListAsNet(t *testing.T) {
	got, err := List()
	if err != nil {
		t.Fatal(err)
	}
	list, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for _, a := range list {
		ip, _ := netip.AddrFromSlice(a.(*net.IPNet).IP)
		want = append(want, ip.Unmap())
	}
	for i := range got {
		got[i] = got[i].Unmap()
	}
	slices.SortFunc(got, netip.Addr.Compare)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("List = %v, net.InterfaceAddrs = %v", got, want)
	}
	if !slices.Contains(got, netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("no 127.0.0.1 among %v", got)
	}
}

//go:build !linux

package ifaddrs

import (
	"net"
	"net/netip"
)

// List lists this host's interface addresses (ifaddrs_linux.go reads them
// without the net package).
func List() ([]netip.Addr, error) {
	list, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, a := range list {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				addrs = append(addrs, ip)
			}
		}
	}
	return addrs, nil
}

//go:build !linux

package deliver

import (
	"net"
	"net/netip"
)

// interfaceAddrs lists this host's interface addresses (ifaddrs_linux.go reads them
// without the net package).
func interfaceAddrs() ([]netip.Addr, error) {
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

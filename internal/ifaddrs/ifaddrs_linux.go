package ifaddrs

import (
	"net/netip"
	"syscall"
)

// List lists this host's interface addresses as net.InterfaceAddrs does on
// Linux, through one rtnetlink RTM_GETADDR dump, without linking the net package (whose
// start-up cost every delivery would pay; the command needs no network otherwise).
//
// As net does: an IPv4 address with an IFA_LOCAL attribute is a point-to-point link
// whose IFA_ADDRESS is the peer's, so only IFA_LOCAL counts there.
func List() ([]netip.Addr, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, m := range msgs {
		if m.Header.Type == syscall.NLMSG_DONE {
			break
		}
		if m.Header.Type != syscall.RTM_NEWADDR {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		pointToPoint := false
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFA_LOCAL {
				pointToPoint = true
			}
		}
		for _, a := range attrs {
			if pointToPoint && a.Attr.Type == syscall.IFA_ADDRESS {
				continue
			}
			if a.Attr.Type != syscall.IFA_ADDRESS && a.Attr.Type != syscall.IFA_LOCAL {
				continue
			}
			if ip, ok := netip.AddrFromSlice(a.Value); ok {
				addrs = append(addrs, ip)
			}
		}
	}
	return addrs, nil
}

// Package ifaddrs lists this host's interface addresses, as getifaddrs(3) and
// net.InterfaceAddrs do: the delivery needs them to tell whether an [ip] address literal
// names this host (Postfix's resolve_local()). On Linux it reads them without the net
// package, whose start-up cost every delivery process would pay (bench/mda/README.md).
package ifaddrs

package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// bindAddr is a listening address as far as clashes go: an IP (possibly
// unspecified), an empty host (every address, IPv4 and IPv6) or a name.
type bindAddr struct {
	ip   netip.Addr // invalid for "" and names
	name string     // lower-case host name; "" with !ip.IsValid() is every address
	port uint16
}

func parseBindAddr(addr string) (bindAddr, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bindAddr{}, false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		p, lerr := net.LookupPort("tcp", port) // a service name; no network
		if lerr != nil {
			return bindAddr{}, false
		}
		n = uint64(p)
	}
	b := bindAddr{port: uint16(n)}
	if ip, err := netip.ParseAddr(host); err == nil {
		b.ip = ip.Unmap()
	} else {
		b.name = strings.ToLower(host)
	}
	return b, true
}

// all reports whether b listens on every address, IPv4 and IPv6: "" or
// "::" (Linux binds "[::]" dual-stack, so it takes the IPv4 port too).
func (b bindAddr) all() bool {
	return b.name == "" && (!b.ip.IsValid() || b.ip == netip.IPv6Unspecified())
}

// covers reports whether listening on b takes the port of ip too.
func (b bindAddr) coversIP(ip netip.Addr) bool {
	switch {
	case b.all():
		return true
	case b.ip == netip.IPv4Unspecified():
		return ip.Is4()
	case b.ip.IsValid():
		return b.ip == ip
	}
	return b.name == "localhost" && ip.IsLoopback()
}

// hostsOverlap reports whether two listeners on the same port would clash.
// Two different names that may resolve to one address are not caught.
func hostsOverlap(a, b bindAddr) bool {
	switch {
	case a.all() || b.all():
		return true
	case a.ip.IsValid() && b.ip.IsValid():
		return a.coversIP(b.ip) || b.coversIP(a.ip)
	case a.ip.IsValid():
		return a.coversIP(netip.IPv4Unspecified()) || b.coversIP(a.ip)
	case b.ip.IsValid():
		return b.coversIP(netip.IPv4Unspecified()) || a.coversIP(b.ip)
	}
	return a.name == b.name
}

// ListenersOverlap reports whether listening on both host:port addresses
// would clash: the same port on the same host, or on hosts where one
// includes the other ("0.0.0.0:21" and "127.0.0.1:21"; "[::]:21" and
// "0.0.0.0:21", as Linux binds "[::]" dual-stack). Unparsable addresses
// never overlap (checkHostPort reports them), nor do port 0 ones (the
// system picks a free port).
func ListenersOverlap(a, b string) bool {
	x, ok1 := parseBindAddr(a)
	y, ok2 := parseBindAddr(b)
	return ok1 && ok2 && x.port != 0 && x.port == y.port && hostsOverlap(x, y)
}

// checkAddressClashes reports listeners that would take each other's
// address and listeners whose port lies in the passive range (passive ports
// are opened on the control connection's local address, that is on a
// listener's host).
func (c Config) checkAddressClashes() []error {
	var errs []error
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d].address", i)
		for j := range i {
			if ListenersOverlap(c.Listeners[j].Address, l.Address) {
				errs = append(errs, confkey.Errorf(key, "%s clashes with listeners[%d] (%s): both would listen on one port", l.Address, j, c.Listeners[j].Address))
				break
			}
		}
		if b, ok := parseBindAddr(l.Address); ok && c.Passive.Ports.Contains(b.port) {
			errs = append(errs, confkey.Errorf("passive.ports", "%s includes port %d of listeners[%d] (%s)", c.Passive.Ports, b.port, i, l.Address))
		}
	}
	return errs
}

// CheckOtherListener reports a problem of key if addr (another listener of
// this process, such as the admin API) clashes with a client listener or
// has its port in the passive range on a listener's host. Non-TCP
// addresses (unix:...) never clash.
func (c Config) CheckOtherListener(key, addr string) error {
	b, ok := parseBindAddr(addr)
	if !ok {
		return nil
	}
	for i, l := range c.Listeners {
		if ListenersOverlap(l.Address, addr) {
			return confkey.Errorf(key, "%s clashes with listeners[%d] (%s)", addr, i, l.Address)
		}
	}
	if !c.Passive.Ports.Contains(b.port) {
		return nil
	}
	for i, l := range c.Listeners {
		if lb, ok := parseBindAddr(l.Address); ok && hostsOverlap(lb, b) {
			return confkey.Errorf(key, "port %d is in the passive range %s (on the host of listeners[%d], %s)", b.port, c.Passive.Ports, i, l.Address)
		}
	}
	return nil
}

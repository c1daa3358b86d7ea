package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseNetwork reads one entry of an address list in the configuration: a
// CIDR ("10.0.0.0/8", "2001:db8::/32") or a single address. Client
// addresses are compared unmapped, so an IPv4-mapped entry means its IPv4
// network (::ffff:10.0.0.0/104 is 10.0.0.0/8); a mapped prefix shorter
// than /96 names no IPv4 network and is refused, as is an address with a
// zone. The prefix is masked.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if pre, err := netip.ParsePrefix(s); err == nil {
		if !pre.Addr().Is4In6() {
			return pre.Masked(), nil
		}
		if pre.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		return netip.PrefixFrom(pre.Addr().Unmap(), pre.Bits()-96).Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
)

// PublicName is passive.public_host given as a DNS name. It is resolved
// when the configuration is loaded and again by Refresh (on SIGHUP); 227
// replies advertise the last IPv4 address it resolved to. A failed Refresh
// keeps the previous address.
type PublicName struct {
	Name string
	// Resolve looks a name up. Nil: the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)

	addr atomic.Pointer[netip.Addr]
}

// Addr is the address last resolved; invalid before a successful Refresh.
func (n *PublicName) Addr() netip.Addr {
	if a := n.addr.Load(); a != nil {
		return *a
	}
	return netip.Addr{}
}

// Refresh resolves the name and keeps its first IPv4 address. It reports
// the address, or why there is none (the previous one stays in use).
func (n *PublicName) Refresh(ctx context.Context) (netip.Addr, error) {
	resolve := n.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		}
	}
	addrs, err := resolve(ctx, n.Name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s does not resolve: %w", n.Name, err)
	}
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			n.addr.Store(&a)
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s resolves to no IPv4 address (227 replies carry IPv4 only)", n.Name)
}

// CheckHostName reports whether s can be a DNS name: letters, digits,
// hyphens and dots, labels of 1 to 63 characters, not all numeric at the
// end (a mistyped IPv4 address is not a name).
func CheckHostName(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is neither an IP address nor a DNS name", s)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is neither an IP address nor a DNS name", s)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is neither an IP address nor a DNS name", s)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("not an IP address: " + s)
	}
	return nil
}

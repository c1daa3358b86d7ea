package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Rule allows destinations: an address range (Prefix) or one DNS name
// (Host, compared without case), and a port range Lo..Hi.
type Rule struct {
	Prefix netip.Prefix
	Host   string
	Lo, Hi uint16
}

// ParseRule parses "ADDR:PORTS", where ADDR is an IP address, a CIDR
// prefix or a DNS name (IPv6 in brackets: "[fd00::/64]:21") and PORTS is a
// port or a range "40000-40100". Examples: "10.0.0.5:21",
// "10.0.0.0/24:40000-40100", "ftp.lan:21".
func ParseRule(s string) (Rule, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Rule{}, fmt.Errorf("%q: want ADDR:PORT or ADDR:LOW-HIGH", s)
	}
	host, ports := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return Rule{}, fmt.Errorf("%q: an IPv6 address goes in brackets", s)
	}
	var r Rule
	var err error
	lo, hi, ok := strings.Cut(ports, "-")
	if r.Lo, err = parsePort(lo); err != nil {
		return Rule{}, fmt.Errorf("%q: %w", s, err)
	}
	r.Hi = r.Lo
	if ok {
		if r.Hi, err = parsePort(hi); err != nil {
			return Rule{}, fmt.Errorf("%q: %w", s, err)
		}
		if r.Hi < r.Lo {
			return Rule{}, fmt.Errorf("%q: port range ends before it starts", s)
		}
	}
	switch {
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: %w", s, err)
		}
		if p != p.Masked() {
			return Rule{}, fmt.Errorf("%q: prefix has host bits set (want %s)", s, p.Masked())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // requests are matched as IPv4
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		r.Prefix = p
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				return Rule{}, fmt.Errorf("%q: no zones", s)
			}
			if a = a.Unmap(); a.IsUnspecified() {
				return Rule{}, fmt.Errorf("%q: %s is not a destination (a connection to it reaches the agent's own host)", s, a)
			}
			r.Prefix = netip.PrefixFrom(a, a.BitLen())
		} else if host != "" && validHost(host) {
			r.Host = strings.ToLower(host)
		} else {
			return Rule{}, fmt.Errorf("%q: want an IP address, a CIDR prefix or a DNS name", s)
		}
	}
	return r, nil
}

func (r Rule) String() string {
	h := r.Host
	if r.Prefix.IsValid() {
		h = r.Prefix.String()
		if r.Prefix.IsSingleIP() {
			h = r.Prefix.Addr().String()
		}
		if r.Prefix.Addr().Is6() {
			h = "[" + h + "]"
		}
	}
	if r.Lo == r.Hi {
		return fmt.Sprintf("%s:%d", h, r.Lo)
	}
	return fmt.Sprintf("%s:%d-%d", h, r.Lo, r.Hi)
}

// AllowList is the destinations an agent connects to; empty allows none.
type AllowList []Rule

// ParseAllowList parses each rule; an error is a *confkey.Error naming the
// index ("allow[2]").
func ParseAllowList(rules []string) (AllowList, error) {
	a := make(AllowList, 0, len(rules))
	for i, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			return nil, confkey.New(fmt.Sprintf("allow[%d]", i), err)
		}
		a = append(a, r)
	}
	return a, nil
}

// Allows says whether address ("host:port", as in a Request) is allowed.
// An IP address must fall in a rule's prefix (an IPv4-mapped IPv6 address
// counts as IPv4; 0.0.0.0 and ::, which reach the agent's own host, never
// do); a DNS name must be a rule's name: names are not resolved to match
// prefixes.
func (a AllowList) Allows(address string) bool {
	_, ok := a.Match(address)
	return ok
}

// Match returns the first rule that allows address, as Allows judges it.
func (a AllowList) Match(address string) (Rule, bool) {
	host, p, err := net.SplitHostPort(address)
	if err != nil {
		return Rule{}, false
	}
	port, err := parsePort(p)
	if err != nil {
		return Rule{}, false
	}
	ip, err := netip.ParseAddr(host)
	isIP := err == nil
	if isIP {
		if ip.Zone() != "" {
			return Rule{}, false
		}
		ip = ip.Unmap()
		if ip.IsUnspecified() { // reaches the agent's own host
			return Rule{}, false
		}
	}
	for _, r := range a {
		if port < r.Lo || port > r.Hi {
			continue
		}
		if isIP && r.Prefix.IsValid() && r.Prefix.Contains(ip) {
			return r, true
		}
		if !isIP && r.Host != "" && strings.EqualFold(r.Host, host) {
			return r, true
		}
	}
	return Rule{}, false
}

// quietPorts is the widest port range a rule may allow without a warning:
// a backend's passive range is rarely wider.
const quietPorts = 1024

// reach describes how far a rule reaches when that is more than one
// address and a backend's ports, or "" when it does not: "N addresses",
// "N ports on each address" or both.
func (r Rule) reach() string {
	var parts []string
	if r.Prefix.IsValid() {
		if host := r.Prefix.Addr().BitLen() - r.Prefix.Bits(); host > 0 {
			if host <= 24 {
				parts = append(parts, fmt.Sprintf("%d addresses", 1<<host))
			} else {
				parts = append(parts, fmt.Sprintf("2^%d addresses", host))
			}
		}
	}
	if ports := int(r.Hi) - int(r.Lo) + 1; ports > quietPorts {
		parts = append(parts, fmt.Sprintf("%d ports on each address", ports))
	}
	return strings.Join(parts, ", ")
}

// Warning is a setting of the agent's configuration that lets a
// compromised gateway reach more than one backend's ports, or that trusts
// more than the gateway's own certificate. Key names agent.yaml's key.
type Warning struct{ Key, Text string }

func (w Warning) String() string { return w.Key + ": " + w.Text }

// Warnings lists the agent's settings that a compromised gateway (or a
// certificate authority) could take advantage of, in configuration order:
// allow rules wider than one address or a passive range (more than 1024
// ports), allow rules naming a DNS name, and a gateway CA without pins.
func (c *AgentConfig) Warnings() []Warning {
	var ws []Warning
	for i, r := range c.Allow {
		key := fmt.Sprintf("allow[%d]", i)
		if s := r.reach(); s != "" {
			ws = append(ws, Warning{key, fmt.Sprintf("%s reaches %s; a compromised gateway can connect to all of them", r, s)})
		}
		if r.Host != "" {
			ws = append(ws, Warning{key, fmt.Sprintf("%s names a DNS name: the agent connects wherever the LAN's resolver points it", r)})
		}
	}
	if c.GatewayCA != nil && len(c.GatewayPins) == 0 {
		ws = append(ws, Warning{"gateway_ca_file", "set without gateway_pins: the agent trusts any certificate this CA issues for the gateway's name"})
	}
	return ws
}

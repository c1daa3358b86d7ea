package upstream

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Request is what the routing rules may look at, all known when a session
// logs in.
type Request struct {
	User     string   // the authenticated user (passthrough: the USER argument)
	Groups   []string // the user's groups (auth.mode gateway); nil otherwise
	Host     string   // what HOST named (RFC 7151), "" if none
	Listener string   // the listener's name
	Client   netip.Addr
}

// Rule sends the sessions it matches to Target (a backend or a pool). Each
// non-empty condition must hold (and); within one condition any listed
// value may match (or). A rule without conditions matches every session.
type Rule struct {
	Users     []string       // exact, case-sensitive
	Groups    []string       // exact, case-sensitive; any of the user's groups
	Hosts     []string       // case-insensitive; "*.example.com" matches any name under example.com
	Listeners []string       // listener names
	Networks  []netip.Prefix // the client's address
	Target    string
}

// Matches reports whether r applies to req.
func (r Rule) Matches(req Request) bool {
	if len(r.Users) > 0 && !slices.Contains(r.Users, req.User) {
		return false
	}
	if len(r.Groups) > 0 && !slices.ContainsFunc(req.Groups, func(g string) bool { return slices.Contains(r.Groups, g) }) {
		return false
	}
	if len(r.Hosts) > 0 {
		h := NormalizeHost(req.Host)
		if h == "" || !slices.ContainsFunc(r.Hosts, func(p string) bool { return hostMatches(NormalizeHost(p), h) }) {
			return false
		}
	}
	if len(r.Listeners) > 0 && !slices.Contains(r.Listeners, req.Listener) {
		return false
	}
	if len(r.Networks) > 0 {
		ip := req.Client.Unmap()
		if !ip.IsValid() || !slices.ContainsFunc(r.Networks, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			return false
		}
	}
	return true
}

// NormalizeHost is the form HOST names are compared in: trimmed, lower
// case, without a trailing dot, an IPv6 literal without its brackets and
// in its canonical spelling (2001:db8::1, however it was written). A
// name with a space, a control byte or a slash is no host: "".
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() && a.Zone() == "" {
		h = a.String()
	}
	for _, c := range h {
		if c <= ' ' || c == 0x7f || c == '/' || c == '\\' {
			return ""
		}
	}
	return h
}

// MaxHostLength is the longest name HOST takes (RFC 1035: 253 characters
// without the trailing dot).
const MaxHostLength = 253

// CheckHost reports what is wrong with the argument of a client's HOST
// (RFC 7151): it must be a host name (labels of letters, digits, '-' and
// '_', each 1 to 63 characters, a trailing dot allowed), an IPv4 address,
// or an IPv6 address, in brackets as RFC 7151 writes it or bare.
// Internationalised names come as A-labels (xn--...).
func CheckHost(h string) error {
	h = strings.TrimSpace(h)
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if a, err := netip.ParseAddr(inner); !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return errors.New("not an IPv6 address in brackets")
		}
		return nil
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	switch {
	case name == "":
		return errors.New("no host name")
	case len(name) > MaxHostLength:
		return fmt.Errorf("a host name of %d characters (at most %d)", len(name), MaxHostLength)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("a host name label must have 1 to 63 characters")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("a host name holds only letters, digits, '-', '_' and dots")
			}
		}
	}
	return nil
}

// hostMatches compares pattern (normalised, maybe "*.suffix") to the
// normalised host h.
func hostMatches(pattern, h string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(h, "."+suffix) && len(h) > len(suffix)+1
	}
	return pattern == h
}

// CheckHostPattern reports a routing host pattern that can never match:
// what it names (after "*.") must be a name or address HOST takes
// (CheckHost).
func CheckHostPattern(p string) error {
	n := NormalizeHost(p)
	if n == "" {
		return fmt.Errorf("%q is not a host name", p)
	}
	rest := strings.TrimPrefix(strings.TrimSpace(p), "*.")
	if strings.Contains(rest, "*") {
		return fmt.Errorf("%q: a wildcard is only allowed as the whole first label (*.example.com)", p)
	}
	if err := CheckHost(rest); err != nil {
		return fmt.Errorf("%q can never match a HOST: %w", p, err)
	}
	return nil
}

// Balance is how a pool spreads new sessions over its healthy members.
type Balance int

// The balance modes.
const (
	RoundRobin    Balance = iota // in turn
	LeastSessions                // the member with the fewest sessions now (ties: in turn)
)

// ParseBalance parses "round_robin" (or "") and "least_sessions".
func ParseBalance(s string) (Balance, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "round_robin":
		return RoundRobin, nil
	case "least_sessions":
		return LeastSessions, nil
	}
	return 0, fmt.Errorf("%q is not a balance mode (want round_robin or least_sessions)", s)
}

func (b Balance) String() string {
	switch b {
	case RoundRobin:
		return "round_robin"
	case LeastSessions:
		return "least_sessions"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// Pool is a routing target made of equivalent backends (shared storage):
// a session may go to any of them.
type Pool struct {
	Name    string
	Members []string // backend names
	Balance Balance
}

// Config is the routing: the backends' names, the pools, the rules (in
// order, first match wins) and the default target, taken when no rule
// matches.
type Config struct {
	Backends []string
	Pools    []Pool
	Rules    []Rule
	Default  string
}

// Validate checks names and references. Each problem is a *confkey.Error
// naming its key as the configuration file does (pools[1].members,
// routing.rules[0].target).
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, confkey.Errorf(key, format, a...))
	}
	names := map[string]bool{}
	for _, b := range c.Backends {
		names[b] = true
	}
	for i, p := range c.Pools {
		key := fmt.Sprintf("pools[%d]", i)
		switch {
		case p.Name == "":
			add(key+".name", "must be set")
		case names[p.Name]:
			add(key+".name", "%q is already the name of a backend or pool", p.Name)
		}
		names[p.Name] = true
		if len(p.Members) == 0 {
			add(key+".members", "at least one backend is required")
		}
		seen := map[string]bool{}
		for _, m := range p.Members {
			if !slices.Contains(c.Backends, m) {
				add(key+".members", "%q is not a backend", m)
			}
			if seen[m] {
				add(key+".members", "%q is listed twice", m)
			}
			seen[m] = true
		}
	}
	for i, r := range c.Rules {
		key := fmt.Sprintf("routing.rules[%d]", i)
		if r.Target == "" {
			add(key+".target", "must be set")
		} else if !names[r.Target] {
			add(key+".target", "%q is neither a backend nor a pool", r.Target)
		}
		for _, h := range r.Hosts {
			if err := CheckHostPattern(h); err != nil {
				add(key+".hosts", "%v", err)
			}
		}
	}
	if c.Default == "" {
		add("routing.default", "must be set when there are several backends")
	} else if !names[c.Default] {
		add("routing.default", "%q is neither a backend nor a pool", c.Default)
	}
	return errors.Join(errs...)
}

// Route returns the target for req: the first matching rule's, or the
// default.
func (c Config) Route(req Request) string {
	for _, r := range c.Rules {
		if r.Matches(req) {
			return r.Target
		}
	}
	return c.Default
}

// Members returns the backends of target: a pool's members, or the backend
// itself.
func (c Config) Members(target string) []string {
	for _, p := range c.Pools {
		if p.Name == target {
			return p.Members
		}
	}
	return []string{target}
}

// BalanceOf returns the balance mode of target (a lone backend: RoundRobin).
func (c Config) BalanceOf(target string) Balance {
	for _, p := range c.Pools {
		if p.Name == target {
			return p.Balance
		}
	}
	return RoundRobin
}

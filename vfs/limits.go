package vfs

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/policy"
)

// Limits are a profile's limits; zero values limit nothing.
type Limits struct {
	// MaxSessions bounds the sessions one user of the profile holds at
	// once (0: only limits.max_sessions_per_user applies).
	MaxSessions int
	// Bandwidth bounds each session of the profile, in bytes per second,
	// as a size ("1MiB", "1MiB/s"); "" or "0": only the global limits
	// apply.
	Bandwidth string
	// Networks are the client addresses (CIDRs or single addresses) the
	// profile's users may come from; empty: any.
	Networks []string
	// Listeners are the listener names (listeners[].name) the profile's
	// users may log in on; empty: any.
	Listeners []string
}

// ParseSize reads a size in bytes: a whole number with an optional unit
// (case-insensitive, a space allowed before it): B; the binary KiB, MiB,
// GiB, TiB (1024^n), also written K, M, G, T; the decimal KB, MB, GB, TB
// (1000^n, as SI and disk vendors count). "" is 0. Fractions, negative
// sizes and sizes beyond int64 are errors.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	i := 0
	if t[0] == '-' || t[0] == '+' {
		i = 1
	}
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return 0, fmt.Errorf("%q is not a size (want e.g. 1048576, 100MiB, 2GB)", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("%q: a size cannot be negative", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want B, KiB, MiB, GiB, TiB, K, M, G, T, KB, MB, GB or TB)", s, t[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// compileLimits fills pol's limits and max_upload from p; errors' keys are
// relative to the profile.
func compileLimits(pol *Policy, p *Profile) error {
	var errs []error
	var err error
	if pol.MaxUpload, err = ParseSize(p.MaxUpload); err != nil {
		errs = append(errs, confkey.New("max_upload", err))
	}
	l := p.Limits
	if l.MaxSessions < 0 {
		errs = append(errs, confkey.Errorf("limits.max_sessions", "%d: cannot be negative (0: no limit of its own)", l.MaxSessions))
	}
	pol.MaxSessions = max(l.MaxSessions, 0)
	if pol.Bandwidth, err = ParseSize(strings.TrimSuffix(strings.TrimSpace(l.Bandwidth), "/s")); err != nil {
		errs = append(errs, confkey.New("limits.bandwidth", err))
	}
	for i, s := range l.Networks {
		pre, err := policy.ParseNetwork(s)
		if err != nil {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("limits.networks[%d]", i), "%w", err))
			continue
		}
		pol.Networks = append(pol.Networks, pre)
	}
	for i, s := range l.Listeners {
		if strings.TrimSpace(s) == "" {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("limits.listeners[%d]", i), "empty listener name"))
		}
		pol.Listeners = append(pol.Listeners, strings.TrimSpace(s))
	}
	return errors.Join(errs...)
}

// CheckSource decides whether a user of the profile may log in from
// client on the listener named listener. A nil policy allows.
func (p *Policy) CheckSource(client netip.Addr, listener string) Decision {
	if p == nil || p.rules == nil {
		return allowAll
	}
	key := p.rules.key
	if len(p.Networks) > 0 {
		c := client.Unmap()
		if !slices.ContainsFunc(p.Networks, func(n netip.Prefix) bool { return n.Contains(c) }) {
			return Decision{Rule: key + ".limits.networks"}
		}
	}
	if len(p.Listeners) > 0 && !slices.Contains(p.Listeners, listener) {
		return Decision{Rule: key + ".limits.listeners"}
	}
	return Decision{Allowed: true, Rule: key + ".limits"}
}

package policy

import (
	"net/netip"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":           "10.0.0.0/8",
		" 10.1.2.3/8 ":         "10.0.0.0/8",
		"192.0.2.7":            "192.0.2.7/32",
		"::ffff:10.0.0.0/104":  "10.0.0.0/8",
		"::ffff:192.0.2.7":     "192.0.2.7/32",
		"::ffff:192.0.2.7/128": "192.0.2.7/32",
		"2001:db8::1/32":       "2001:db8::/32",
		"2001:db8::1":          "2001:db8::1/128",
	} {
		got, err := ParseNetwork(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("ParseNetwork(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "::ffff:0:0/80", "fe80::1%eth0", "example.com", "10.0.0.0/8/8"} {
		if got, err := ParseNetwork(in); err == nil {
			t.Errorf("ParseNetwork(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseNetwork: what it returns is masked, holds no IPv4-mapped
// address, and reads back to itself.
func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "2001:db8::/32", "192.0.2.7", "::ffff:0:0/80", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseNetwork(s)
		if err != nil {
			return
		}
		if p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParseNetwork(%q) = %v", s, p)
		}
		if q, err := ParseNetwork(p.String()); err != nil || q != p {
			t.Fatalf("%v reads back as %v, %v", p, q, err)
		}
	})
}

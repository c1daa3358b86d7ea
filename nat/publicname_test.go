package nat

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPublicNameRefresh(t *testing.T) {
	answers := map[string][]netip.Addr{
		"gw.example.test": {netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:203.0.113.7"), netip.MustParseAddr("203.0.113.8")},
		"v6.example.test": {netip.MustParseAddr("2001:db8::2")},
	}
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := answers[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	ctx := context.Background()
	n := &PublicName{Name: "gw.example.test", Resolve: resolve}
	c := Config{Ports: PortRange{50000, 50019}, PublicName: n}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "public_host: gw.example.test has not resolved") {
		t.Fatalf("unresolved name: Validate = %v", err)
	}
	if a, err := n.Refresh(ctx); err != nil || a != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("Refresh = %v, %v; want the first IPv4 address, unmapped", a, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddr("10.1.2.3")
	if got := c.Advertise(local); got != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("Advertise = %v", got)
	}
	// A new answer is picked up; a failed lookup keeps the last address.
	answers["gw.example.test"] = []netip.Addr{netip.MustParseAddr("203.0.113.9")}
	if a, err := n.Refresh(ctx); err != nil || c.Advertise(local) != a || a != netip.MustParseAddr("203.0.113.9") {
		t.Fatalf("Refresh = %v, %v; Advertise %v", a, err, c.Advertise(local))
	}
	delete(answers, "gw.example.test")
	if _, err := n.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "gw.example.test does not resolve") {
		t.Fatalf("Refresh of a gone name = %v", err)
	}
	if got := c.Advertise(local); got != netip.MustParseAddr("203.0.113.9") {
		t.Fatalf("after a failed refresh Advertise = %v, want the last address", got)
	}
	v6 := &PublicName{Name: "v6.example.test", Resolve: resolve}
	if _, err := v6.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "no IPv4 address") {
		t.Fatalf("IPv6-only name: %v", err)
	}
	c.PublicHost = netip.MustParseAddr("203.0.113.10")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "public_host: both") {
		t.Fatalf("address and name: %v", err)
	}
}

func TestCheckHostName(t *testing.T) {
	for s, ok := range map[string]bool{
		"localhost": true, "ftp.example.com": true, "ftp.example.com.": true, "a-b.c0": true,
		"": false, "-a.com": false, "a..b": false, "a_b.com": false, "203.0.113.999": false, "1.2.3": false,
		"ftp example": false, strings.Repeat("a", 64) + ".com": false,
	} {
		if err := CheckHostName(s); (err == nil) != ok {
			t.Errorf("CheckHostName(%q) = %v, want ok %v", s, err, ok)
		}
	}
}

package tunnel

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestAllowList(t *testing.T) {
	a, err := ParseAllowList([]string{"10.0.0.5:21", "10.0.0.5:40000-40100", "192.168.7.0/24:990", "[fd00::/64]:21", "FTP.lan:2121"})
	if err != nil {
		t.Fatal(err)
	}
	// want: the rule that allows the address ("" for none).
	for addr, want := range map[string]string{
		"10.0.0.5:21":          "10.0.0.5:21",
		"10.0.0.5:40000":       "10.0.0.5:40000-40100",
		"10.0.0.5:40100":       "10.0.0.5:40000-40100",
		"10.0.0.5:40101":       "",
		"10.0.0.5:22":          "",
		"10.0.0.6:21":          "",
		"192.168.7.200:990":    "192.168.7.0/24:990",
		"192.168.8.1:990":      "",
		"[fd00::1234]:21":      "[fd00::/64]:21",
		"[fd01::1]:21":         "",
		"[::ffff:10.0.0.5]:21": "10.0.0.5:21",
		"ftp.lan:2121":         "ftp.lan:2121",
		"ftp.LAN:2121":         "ftp.lan:2121",
		"ftp.lan:21":           "",
		"other.lan:2121":       "",
		"10.0.0.5":             "",
		"garbage":              "",
	} {
		if got := a.Allows(addr); got != (want != "") {
			t.Errorf("Allows(%q) = %v, want %v", addr, got, want != "")
		}
		r, ok := a.Match(addr)
		if got := r.String(); ok != (want != "") || ok && got != want {
			t.Errorf("Match(%q) = %q, %v; want %q", addr, got, ok, want)
		}
	}
	if (AllowList{}).Allows("10.0.0.5:21") {
		t.Error("an empty allow list allowed a destination")
	}
	for _, bad := range []string{"10.0.0.5", "10.0.0.5:0", "10.0.0.5:100-99", "10.0.0.5:1-70000", "10.0.0.1/24:21", "fd00::1:21", "[fd00::1]:x", ":21", "a b:21", "10.0.0.0/33:21"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
	for _, s := range []string{"10.0.0.5:21", "10.0.0.0/24:40000-40100", "[fd00::/64]:21", "[::1]:21", "ftp.lan:21"} {
		r, err := ParseRule(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRule(%q).String() = %q, %v", s, r.String(), err)
		}
	}
}

// TestBackoff: the wait doubles from min to max, each drawn from the upper
// half of its step (jitter).
func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n, step := range map[int]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 5: 16 * lo, 6: hi, 40: hi} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := backoff(lo, hi, n)
			if d < step/2 || d > step {
				t.Fatalf("backoff after %d failures: %v, want within [%v, %v]", n, d, step/2, step)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff after %d failures: no jitter", n)
		}
	}
}

func TestAgentWarnings(t *testing.T) {
	allow, err := ParseAllowList([]string{
		"10.0.0.5:21",             // one host, one port: quiet
		"10.0.0.5:40000-40999",    // a passive range: quiet
		"10.0.0.0/24:21",          // 256 addresses
		"10.0.0.5:1-65535",        // every port
		"ftp.lan:21",              // a DNS name
		"[fd00::/64]:21",          // 2^64 addresses
		"[fd00::1]:40000-41023",   // 1024 ports: quiet
		"192.168.1.0/31:100-2000", // 2 addresses and 1901 ports
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := AgentConfig{Allow: allow}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		"allow[2]: 10.0.0.0/24:21 reaches 256 addresses; a compromised gateway can connect to all of them",
		"allow[3]: 10.0.0.5:1-65535 reaches 65535 ports on each address; a compromised gateway can connect to all of them",
		"allow[4]: ftp.lan:21 names a DNS name: the agent connects wherever the LAN's resolver points it",
		"allow[5]: [fd00::/64]:21 reaches 2^64 addresses; a compromised gateway can connect to all of them",
		"allow[7]: 192.168.1.0/31:100-2000 reaches 2 addresses, 1901 ports on each address; a compromised gateway can connect to all of them",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A CA without pins trusts whatever the CA issues; with a pin, quiet.
	cfg = AgentConfig{GatewayCA: x509.NewCertPool()}
	if ws := cfg.Warnings(); len(ws) != 1 || ws[0].Key != "gateway_ca_file" || !strings.Contains(ws[0].Text, "trusts any certificate this CA issues") {
		t.Errorf("CA without pins: %v", ws)
	}
	cfg.GatewayPins = [][32]byte{{1}}
	if ws := cfg.Warnings(); len(ws) != 0 {
		t.Errorf("CA with pins: %v", ws)
	}
}

// TestAllowMapped: a rule written as an IPv4-mapped IPv6 address or prefix
// is the IPv4 one (requests are matched as IPv4): it used to allow nothing.
func TestAllowMapped(t *testing.T) {
	a, err := ParseAllowList([]string{"[::ffff:10.0.0.5]:21", "[::ffff:192.168.7.0/120]:990"})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"10.0.0.5:21", "[::ffff:10.0.0.5]:21", "192.168.7.9:990"} {
		if !a.Allows(addr) {
			t.Errorf("Allows(%q) = false", addr)
		}
	}
	if s := a[1].String(); s != "192.168.7.0/24:990" {
		t.Errorf("String() = %q", s)
	}
}

// TestAllowUnspecified: 0.0.0.0 and :: are not destinations: a connection
// to either reaches the agent's own host, which no prefix rule names.
func TestAllowUnspecified(t *testing.T) {
	a, err := ParseAllowList([]string{"0.0.0.0/8:21", "[::/64]:21"})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:21", "[::]:21", "[::ffff:0.0.0.0]:21"} {
		if a.Allows(addr) {
			t.Errorf("Allows(%q) = true", addr)
		}
	}
	for _, bad := range []string{"0.0.0.0:21", "[::]:21"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/upstream"
)

const twoBackends = `
listeners: [{name: public, address: "127.0.0.1:2121", tls: explicit}]
backends:
  - name: a
    address: "127.0.0.1:2021"
    health: {interval: 2s, rise: 1, fall: 2}
  - name: b
    address: "127.0.0.1:2022"
    tls: explicit
    insecure_skip_verify: true
    data_ports: "40000-40099"
    health: {interval: 5s, timeout: 1s, tls: true, user: probe, password_file: PASSFILE}
pools:
  - {name: shared, members: [a, b], balance: least_sessions}
routing:
  default: shared
  rules:
    - {users: [alice], target: a}
    - {hosts: ["ftp.example.com"], target: b}
    - {networks: ["127.0.0.2/32"], listeners: [public], target: b}
`

// TestBackendsConfig: a backends list with pools and routing loads into
// typed values; the probe password comes from its file.
func TestBackendsConfig(t *testing.T) {
	text := strings.Replace(twoBackends, "PASSFILE", secretFile(t, "probe-secret"), 1)
	l, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	c := l.proxy
	if len(c.Backends) != 2 || c.Backend.Address != "" {
		t.Fatalf("backends %+v, backend %+v", c.Backends, c.Backend)
	}
	a, b := c.Backends[0], c.Backends[1]
	if a.Name != "a" || a.Health.Interval != 2*time.Second || a.Health.Rise != 1 || a.Health.Fall != 2 {
		t.Errorf("a: %+v", a)
	}
	if b.TLS != proxy.TLSExplicit || !b.Health.TLS || b.Health.User != "probe" || b.Health.Password != "probe-secret" ||
		b.Health.Timeout != time.Second || b.DataPorts.Low != 40000 {
		t.Errorf("b: %+v", b)
	}
	if len(c.Pools) != 1 || c.Pools[0].Balance != upstream.LeastSessions {
		t.Errorf("pools %+v", c.Pools)
	}
	r := c.Routing
	if r.Default != "shared" || len(r.Rules) != 3 || r.Rules[2].Networks[0] != netip.MustParsePrefix("127.0.0.2/32") {
		t.Errorf("routing %+v", r)
	}
}

// TestBackendsConfigErrors: each mistake is reported with its key.
func TestBackendsConfigErrors(t *testing.T) {
	base := strings.Replace(twoBackends, "PASSFILE", secretFile(t, "x"), 1)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"both backend and backends", "backends:\n", "backend: {address: \"127.0.0.1:21\"}\nbackends:\n", "backends: set either backend"},
		{"a backend key besides backends", "backends:\n", "backend: {tls: explicit}\nbackends:\n", "backend: set either backend"},
		{"duplicate name", "name: b\n", "name: a\n", "backends[1].name: duplicate"},
		{"unknown pool member", "members: [a, b]", "members: [a, c]", `pools[0].members: "c" is not a backend`},
		{"bad balance", "least_sessions", "random", "pools[0].balance"},
		{"unknown target", "target: a}", "target: z}", "routing.rules[0].target"},
		{"unknown listener", "listeners: [public]", "listeners: [private]", "routing.rules[2].listeners"},
		{"bad network", "127.0.0.2/32", "127.0.0.300", "routing.rules[2].networks"},
		{"no default", "default: shared\n", "", "routing.default: must be set"},
		{"timeout over interval", "timeout: 1s", "timeout: 9s", "backends[1].health.timeout"},
		{"health tls on a plain backend", "{interval: 2s, rise: 1, fall: 2}", "{interval: 2s, tls: true}", "backends[0].health.tls"},
		{"probe user without password", "{interval: 2s, rise: 1, fall: 2}", "{interval: 2s, user: probe}", "backends[0].health.password_file"},
		{"bad interval", "interval: 2s", "interval: often", "backends[0].health.interval"},
		{"interval in nanoseconds", "interval: 2s", "interval: 2ns", "backends[0].health.interval: 2ns is shorter than 100ms"},
		{"timeout in microseconds", "timeout: 1s", "timeout: 1us", "backends[1].health.timeout: 1µs is shorter than 10ms"},
		{"missing address", "address: \"127.0.0.1:2021\"", "address: \"\"", "backends[0].address"},
	} {
		text := strings.Replace(base, tc.old, tc.new, 1)
		if text == base {
			t.Fatalf("%s: %q not in the config", tc.name, tc.old)
		}
		_, err := loadFile(writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestBackendSectionIsDefault: the backend section alone is one backend
// named default (the existing configurations), health checks and via
// included, with environment overrides.
func TestBackendSectionIsDefault(t *testing.T) {
	t.Setenv("FTPSGATE_BACKEND_HEALTH_INTERVAL", "3s")
	text := "listeners: [{name: a, address: \"127.0.0.1:2121\", tls: explicit}]\nbackend: {address: \"127.0.0.1:21\"}\n"
	l, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if b := l.proxy.Backend; b.Address != "127.0.0.1:21" || b.Health.Interval != 3*time.Second || len(l.proxy.Backends) != 0 {
		t.Errorf("backend %+v", b)
	}
	if _, err := loadFile(writeConfig(t, text+"routing: {default: x}\n")); err == nil || !strings.Contains(err.Error(), "routing.default") {
		t.Errorf("a routing default naming no backend: %v", err)
	}
}

// TestPrefixesUnmap: client addresses are compared unmapped, so an
// IPv4-mapped prefix or address in a list means its IPv4 network (it used
// to be kept as IPv6 and never matched).
func TestPrefixesUnmap(t *testing.T) {
	var p problems
	got := prefixes(&p, "k", []string{"::ffff:10.0.0.0/104", "::ffff:192.0.2.7", "2001:db8::/32", "10.1.0.0/16"})
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.1.0.0/16"),
	}
	if len(p.list) != 0 || !slices.Equal(got, want) {
		t.Errorf("prefixes = %v (problems %v), want %v", got, p.list, want)
	}
	if !got[0].Contains(netip.MustParseAddr("10.2.3.4")) {
		t.Error("the mapped /104 does not hold an IPv4 client")
	}
}

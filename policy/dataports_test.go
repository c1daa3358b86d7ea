package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBackendDataPorts(t *testing.T) {
	ap := netip.MustParseAddrPort
	own := []netip.AddrPort{ap("0.0.0.0:2121"), ap("127.0.0.1:9090"), ap("10.0.0.5:9443")}
	pinned := BackendDataPorts{Low: 40000, High: 40099, Own: own, PassiveLow: 50000, PassiveHigh: 50019}
	open := BackendDataPorts{Own: own, PassiveLow: 50000, PassiveHigh: 50019}
	leased := open
	leased.PassiveLeased = func(port uint16) bool { return port == 50003 }
	tests := []struct {
		name     string
		p        BackendDataPorts
		target   string
		sameHost bool
		want     string // "" allowed, else a piece of the error
	}{
		{"zero value: ssh", BackendDataPorts{}, "10.0.0.9:22", false, "below 1024"},
		{"zero value: port 1023", BackendDataPorts{}, "10.0.0.9:1023", false, "below 1024"},
		{"zero value: port 1024", BackendDataPorts{}, "10.0.0.9:1024", false, ""},
		{"ordinary passive port", open, "10.0.0.9:40000", false, ""},
		{"below 1024 inside a pinned range is still refused", BackendDataPorts{Low: 1, High: 65535}, "10.0.0.9:25", false, "below 1024"},
		{"in the pinned range", pinned, "10.0.0.9:40099", false, ""},
		{"below the pinned range", pinned, "10.0.0.9:39999", false, "outside backend.data_ports 40000-40099"},
		{"above the pinned range", pinned, "10.0.0.9:40100", false, "outside backend.data_ports"},
		{"same host: listener on all addresses", open, "127.0.0.1:2121", true, "own listening ports"},
		{"same host: admin on loopback, backend on a LAN address", open, "10.0.0.5:9090", true, "own listening ports"},
		{"same host: own passive range", open, "127.0.0.1:50007", true, "own passive range"},
		{"other host: same port as a wildcard listener", open, "10.0.0.9:2121", false, ""},
		{"other host: its passive range overlaps ours", open, "10.0.0.9:50007", false, ""},
		{"other host: an own address that is the backend's", open, "10.0.0.5:9443", false, "own listening ports"},
		{"IPv4-mapped backend address", open, "[::ffff:10.0.0.5]:9443", false, "own listening ports"},
		{"same host: a free port", open, "127.0.0.1:40000", true, ""},
		{"same host: a leased port of the passive range", leased, "127.0.0.1:50003", true, "own passive range"},
		{"same host: a passive-range port the gateway does not use", leased, "127.0.0.1:50004", true, ""},
	}
	for _, tt := range tests {
		err := tt.p.Check(ap(tt.target), tt.sameHost)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %s refused: %v", tt.name, tt.target, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrBackendDataPort) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %s: err = %v, want ErrBackendDataPort with %q", tt.name, tt.target, err, tt.want)
		}
	}
}

package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{in: "50000-50019", want: PortRange{50000, 50019}},
		{in: " 50000 - 50019 ", want: PortRange{50000, 50019}},
		{in: "2121", want: PortRange{2121, 2121}},
		{in: "50100-50000", wantErr: "low port 50100 is above high port 50000"},
		{in: "", wantErr: "empty port range"},
		{in: "0-10", wantErr: "not a port number"},
		{in: "1-70000", wantErr: "not a port number"},
		{in: "a-b", wantErr: "not a port number"},
		{in: "1-2-3", wantErr: "not a port number"},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePortRange(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"50000-50019", "1", "65535-1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.Size() < 1 || r.Low > r.High {
			t.Fatalf("accepted invalid range %v from %q", r, s)
		}
		back, err := ParsePortRange(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip %v -> %q -> %v, %v", r, r.String(), back, err)
		}
	})
}

func freeRange(t *testing.T, n int) PortRange {
	t.Helper()
	// Find n consecutive ports that are free right now, high in the range.
	for base := 45000; base < 60000; base += n {
		ok := true
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p)).String())
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return PortRange{uint16(base), uint16(base + n - 1)}
		}
	}
	t.Fatal("no free port range")
	return PortRange{}
}

func TestPoolLeasesEveryPortOnceThenRefuses(t *testing.T) {
	r := freeRange(t, 3)
	p := NewPool(r)
	ip := netip.MustParseAddr("127.0.0.1")
	var leases []*Lease
	seen := map[uint16]bool{}
	for range 3 {
		l, err := p.Listen(context.Background(), ip)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Contains(l.Port()) || seen[l.Port()] {
			t.Fatalf("port %d outside %v or leased twice", l.Port(), r)
		}
		seen[l.Port()] = true
		leases = append(leases, l)
	}
	if _, err := p.Listen(context.Background(), ip); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("fourth lease: err = %v, want ErrNoPortAvailable", err)
	}
	leases[1].StopListening()
	if _, err := p.Listen(context.Background(), ip); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("StopListening must keep the port leased; err = %v", err)
	}
	leases[1].Release()
	leases[1].Release() // idempotent
	l, err := p.Listen(context.Background(), ip)
	if err != nil {
		t.Fatal(err)
	}
	if l.Port() != leases[1].Port() {
		t.Fatalf("got port %d, want the released %d", l.Port(), leases[1].Port())
	}
	l.Release()
	for _, l := range leases {
		l.Release()
	}
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after releasing all", p.InUse())
	}
}

func TestPoolSkipsPortsHeldElsewhere(t *testing.T) {
	r := freeRange(t, 2)
	busy, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), r.Low).String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p := NewPool(r)
	l, err := p.Listen(context.Background(), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.Port() != r.High {
		t.Fatalf("port = %d, want %d (the low one is busy)", l.Port(), r.High)
	}
	if p.InUse() != 1 {
		t.Fatalf("InUse = %d, want 1: a busy port must not stay reserved", p.InUse())
	}
}

func TestConfigValidateAndAdvertise(t *testing.T) {
	c := Config{Ports: PortRange{50100, 50000}, PublicHost: netip.MustParseAddr("::1")}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "ports: low port 50100 is above high port 50000") || !strings.Contains(err.Error(), "public_host:") {
		t.Fatalf("Validate = %v", err)
	}
	c = Config{Ports: PortRange{50000, 50019}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddr("::ffff:10.1.2.3")
	if got := c.Advertise(local); got != netip.MustParseAddr("10.1.2.3") {
		t.Fatalf("Advertise = %v", got)
	}
	c.PublicHost = netip.MustParseAddr("203.0.113.10")
	if got := c.Advertise(local); got != c.PublicHost {
		t.Fatalf("Advertise = %v", got)
	}
}

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
	p := NewPool(r, 0)
	ip := netip.MustParseAddr("127.0.0.1")
	var leases []*Lease
	seen := map[uint16]bool{}
	for range 3 {
		l, err := p.Listen(context.Background(), ip, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Contains(l.Port()) || seen[l.Port()] {
			t.Fatalf("port %d outside %v or leased twice", l.Port(), r)
		}
		seen[l.Port()] = true
		leases = append(leases, l)
	}
	if _, err := p.Listen(context.Background(), ip, netip.Addr{}); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("fourth lease: err = %v, want ErrNoPortAvailable", err)
	}
	leases[1].StopListening()
	if _, err := p.Listen(context.Background(), ip, netip.Addr{}); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("StopListening must keep the port leased; err = %v", err)
	}
	leases[1].Release()
	leases[1].Release() // idempotent
	l, err := p.Listen(context.Background(), ip, netip.Addr{})
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
	p := NewPool(r, 0)
	l, err := p.Listen(context.Background(), netip.MustParseAddr("127.0.0.1"), netip.Addr{})
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

func TestPoolCapsLeasesPerClient(t *testing.T) {
	r := freeRange(t, 5)
	p := NewPool(r, 2)
	ip := netip.MustParseAddr("127.0.0.1")
	a := netip.MustParseAddr("192.0.2.1")
	aMapped := netip.MustParseAddr("::ffff:192.0.2.1")
	b := netip.MustParseAddr("2001:db8::1")
	l1, err := p.Listen(context.Background(), ip, a)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := p.Listen(context.Background(), ip, aMapped) // the same address
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Listen(context.Background(), ip, a); !errors.Is(err, ErrClientLimit) {
		t.Fatalf("third lease for %s: err = %v, want ErrClientLimit", a, err)
	}
	if p.InUse() != 2 || p.HeldBy(a) != 2 {
		t.Fatalf("a refused lease must hold nothing: InUse %d, HeldBy %d", p.InUse(), p.HeldBy(a))
	}
	lb, err := p.Listen(context.Background(), ip, b) // another address is not affected
	if err != nil {
		t.Fatal(err)
	}
	exempt, err := p.Listen(context.Background(), ip, netip.Addr{}) // not counted
	if err != nil {
		t.Fatal(err)
	}
	l1.Release()
	l1.Release() // idempotent: counted once
	if p.HeldBy(a) != 1 {
		t.Fatalf("HeldBy after one release = %d, want 1", p.HeldBy(a))
	}
	l3, err := p.Listen(context.Background(), ip, a) // the released slot is free again
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	for _, l := range []*Lease{l2, l3, lb, exempt} {
		l.Release()
	}
	if p.clients() != 0 || p.InUse() != 0 {
		t.Fatalf("after releasing all: %d client entries, %d ports in use; want none", p.clients(), p.InUse())
	}
}

func TestPoolFullRangeGivesBackTheClientSlot(t *testing.T) {
	r := freeRange(t, 1)
	p := NewPool(r, 3)
	ip := netip.MustParseAddr("127.0.0.1")
	a := netip.MustParseAddr("192.0.2.1")
	l, err := p.Listen(context.Background(), ip, a)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := p.Listen(context.Background(), ip, a); !errors.Is(err, ErrNoPortAvailable) {
		t.Fatalf("err = %v, want ErrNoPortAvailable", err)
	}
	if p.HeldBy(a) != 1 {
		t.Fatalf("HeldBy = %d after a failed lease, want 1", p.HeldBy(a))
	}
}

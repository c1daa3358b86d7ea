package e2e

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/proxy"
)

// countingDialer dials TCP and counts.
type countingDialer struct{ n atomic.Int32 }

func (d *countingDialer) DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	if local.IsValid() {
		nd.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return nd.DialContext(ctx, "tcp", address)
}

// TestInjectedDialer: every connection to the backend (control, data, the
// readiness probe) goes through the Dialer the gateway is given.
func TestInjectedDialer(t *testing.T) {
	d := &countingDialer{}
	g := startGatewayWith(t, []proxy.Option{proxy.WithDialer(d)})
	c := dial(t, g, "implicit")
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
	if n := d.n.Load(); n != 2 {
		t.Fatalf("%d dials through the injected dialer for a login and a LIST, want 2 (control, data)", n)
	}
	if err := g.srv.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := d.n.Load(); n != 3 {
		t.Fatalf("the readiness probe did not use the injected dialer (%d dials)", n)
	}
}

// TestTunnelDialer: a backend with Via is reached only through the tunnel
// of that name (control, data and the readiness probe), never through the
// default dialer; a Via naming no tunnel is refused by New.
func TestTunnelDialer(t *testing.T) {
	def, tun := &countingDialer{}, &countingDialer{}
	g := startGatewayWith(t, []proxy.Option{proxy.WithDialer(def), proxy.WithTunnel("lan", tun)},
		func(c *proxy.Config) { c.Backend.Via = "lan" })
	c := dial(t, g, "implicit")
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, m := tun.n.Load(), def.n.Load(); n != 3 || m != 0 {
		t.Fatalf("%d dials through the tunnel, %d through the default dialer; want 3 and 0", n, m)
	}

	cfg := g.cfg
	cfg.Backend.Via = "nowhere"
	if _, err := proxy.New(cfg, zerolog.Nop(), proxy.WithTunnel("lan", tun)); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("New with a Via naming no tunnel: %v", err)
	}
}

package e2e

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

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

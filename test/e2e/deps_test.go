package e2e

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// fixedCerts serves one certificate and counts reloads.
type fixedCerts struct {
	cert    *tls.Certificate
	mu      sync.Mutex
	reloads int
}

func (c *fixedCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert, nil
}
func (c *fixedCerts) NotAfter() time.Time { return c.cert.Leaf.NotAfter }
func (c *fixedCerts) Reload() error {
	c.mu.Lock()
	c.reloads++
	c.mu.Unlock()
	return nil
}

// recordingBans bans on the first offence and remembers them.
type recordingBans struct {
	mu       sync.Mutex
	recorded []string
	subs     []func(policy.BanEvent)
	closed   bool
}

func (b *recordingBans) Record(ip netip.Addr, kind string) bool {
	b.mu.Lock()
	b.recorded = append(b.recorded, kind)
	b.mu.Unlock()
	return true
}
func (b *recordingBans) Subscribe(f func(policy.BanEvent)) { b.subs = append(b.subs, f) }
func (b *recordingBans) Close() error                      { b.mu.Lock(); b.closed = true; b.mu.Unlock(); return nil }

// refuseAll admits nobody.
type refuseAll struct{}

func (refuseAll) Admit(netip.Addr) (*policy.Ticket, error) { return nil, policy.ErrTooManySessions }
func (refuseAll) CommandLimiter() *rate.Limiter            { return nil }
func (refuseAll) Exempt(netip.Addr) bool                   { return false }

// TestInjectedCertificatesAndBans: the gateway serves the certificate its
// Certificates gives, reloads through it, and counts offences in the Bans
// it is given (here: banned at the first failed login).
func TestInjectedCertificatesAndBans(t *testing.T) {
	ca := newTestCA(t)
	certs := &fixedCerts{cert: &ca.issue(t, "", false).tls}
	bans := &recordingBans{}
	g := startGatewayWith(t, []proxy.Option{proxy.WithCertificates(certs), proxy.WithBans(bans)}, plainLogins(false))

	c := dialRaw(t, g.addr("implicit"), true)
	peer := c.conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	if !peer.Equal(certs.cert.Leaf) {
		t.Fatalf("served %q, not the injected certificate", peer.Subject)
	}
	if err := g.srv.Reload(); err != nil || certs.reloads != 1 {
		t.Fatalf("Reload: %v, %d reloads", err, certs.reloads)
	}
	if len(bans.subs) != 1 {
		t.Fatalf("the gateway subscribed %d times to the ban store", len(bans.subs))
	}
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS wrong", wire.StatusNotLoggedIn)
	c.expect(wire.StatusNotAvailable) // banned: the injected store said so
	bans.mu.Lock()
	defer bans.mu.Unlock()
	if len(bans.recorded) != 1 || bans.recorded[0] != policy.KindLoginFailed {
		t.Fatalf("recorded %v", bans.recorded)
	}
}

// TestInjectedAdmission: the gateway asks the Admission it is given.
func TestInjectedAdmission(t *testing.T) {
	g := startGatewayWith(t, []proxy.Option{proxy.WithAdmission(refuseAll{})})
	conn, err := net.DialTimeout("tcp", g.addr("explicit"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rep, err := wire.NewReader(conn).ReadReply()
	if err != nil || rep.Code != wire.StatusNotAvailable {
		t.Fatalf("got %d %q, %v; want the injected admission's 421", rep.Code, rep.Text(), err)
	}
}

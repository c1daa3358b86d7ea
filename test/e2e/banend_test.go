package e2e

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// readWithin reads one reply, failing the test unless it comes within d.
func (c *rawClient) readWithin(d time.Duration) wire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	rep, err := c.r.ReadReply()
	if err != nil {
		c.t.Fatalf("no reply within %s: %v", d, err)
	}
	return rep
}

// expectClosed checks that the gateway closes the connection within d.
func (c *rawClient) expectClosed(d time.Duration) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	if rep, err := c.r.ReadReply(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		c.t.Fatalf("connection still open: %d %q, %v", rep.Code, rep.Text(), err)
	}
}

// plainLogins makes logins on the explicit listener short: no TLS.
func plainLogins(keep bool) option {
	return func(c *proxy.Config) {
		c.Bans = policy.BanConfig{MaxFailures: 3, Window: time.Minute, Duration: time.Hour, KeepSessions: keep}
		c.Listeners[0].AllowCleartext = true
		c.TLS.RequireProtectedData = false
	}
}

// failLogins sends wrong passwords from the client until its address is
// banned.
func failLogins(b *rawClient) {
	b.t.Helper()
	for i := range 3 {
		b.do("USER "+user, wire.StatusUserOK)
		b.do("PASS wrong", wire.StatusNotLoggedIn)
		if i == 2 {
			b.expect(wire.StatusNotAvailable)
		}
	}
}

// TestBanEndsSessions: session A from 127.0.0.5, logged in and idle, is
// ended with 421 within a second when session B from the same address gets
// it banned; a session from 127.0.0.6 goes on.
func TestBanEndsSessions(t *testing.T) {
	g := startGateway(t, plainLogins(false))
	a, _ := dialFrom(t, "127.0.0.5", g.addr("explicit"))
	a.do("USER "+user, wire.StatusUserOK)
	a.do("PASS "+password, wire.StatusLoggedIn)
	other, _ := dialFrom(t, "127.0.0.6", g.addr("explicit"))
	other.do("USER "+user, wire.StatusUserOK)
	other.do("PASS "+password, wire.StatusLoggedIn)

	b, _ := dialFrom(t, "127.0.0.5", g.addr("explicit"))
	failLogins(b)

	rep := a.readWithin(time.Second)
	if rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.Text(), "banned") {
		t.Fatalf("idle session of the banned address got %d %q, want 421 banned", rep.Code, rep.Text())
	}
	a.expectClosed(time.Second)
	other.do("NOOP", wire.StatusCommandOK)
	if !strings.Contains(g.logs.String(), "address banned: ending the session") {
		t.Error("the session's end is not logged")
	}
}

// TestBanKeepsSessions: with bans.end_sessions off, the idle session stays.
func TestBanKeepsSessions(t *testing.T) {
	g := startGateway(t, plainLogins(true))
	a, _ := dialFrom(t, "127.0.0.5", g.addr("explicit"))
	a.do("USER "+user, wire.StatusUserOK)
	a.do("PASS "+password, wire.StatusLoggedIn)
	b, _ := dialFrom(t, "127.0.0.5", g.addr("explicit"))
	failLogins(b)
	time.Sleep(200 * time.Millisecond) // a wrongly ended session would have its 421 out by now
	a.do("NOOP", wire.StatusCommandOK)
	if _, rep := dialFrom(t, "127.0.0.5", g.addr("explicit")); rep.Code != wire.StatusNotAvailable {
		t.Fatalf("banned address greeted with %d", rep.Code)
	}
}

// TestBanCutsTransfer: a manual ban (the admin API's path) cuts a running
// download of the banned address: 426, then 421, then the close.
func TestBanCutsTransfer(t *testing.T) {
	g := startGateway(t)
	if err := os.WriteFile(filepath.Join(g.root, "big.bin"), make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := dialFrom(t, "127.0.0.9", g.addr("explicit"))
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, "127.0.0.9"))
	c.send("RETR big.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := io.ReadFull(data, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The client stops reading: the relay blocks until the ban cuts it.
	if _, err := g.srv.Defender().Ban(netip.MustParseAddr("127.0.0.9"), time.Hour, "admin"); err != nil {
		t.Fatal(err)
	}
	if rep := c.readWithin(2 * time.Second); rep.Code != wire.StatusTransferAborted {
		t.Fatalf("running transfer got %d %q, want 426", rep.Code, rep.Text())
	}
	if rep := c.readWithin(time.Second); rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.Text(), "banned") {
		t.Fatalf("after the 426: %d %q, want 421 banned", rep.Code, rep.Text())
	}
	c.expectClosed(time.Second)
}

// TestBanEndsProxiedSessions: behind a balancer, the ban falls on the
// sessions of the client the PROXY header names, not on every session
// that comes through the balancer.
func TestBanEndsProxiedSessions(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		for i := range c.Listeners {
			c.Listeners[i].ProxyProtocol = proxy.ProxyProtocol{Enabled: true, Trusted: trusted}
		}
	})
	_, portStr, _ := net.SplitHostPort(g.addr("implicit"))
	port, _ := strconv.Atoi(portStr)
	startBalancer(t, "127.0.0.2", map[int]string{port: g.addr("implicit")}, 2)
	via := func(from string) *rawClient {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", net.JoinHostPort("127.0.0.2", portStr))
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(conn, clientTLS())
		c := &rawClient{t: t, conn: tc, r: wire.NewReader(tc), tls: clientTLS()}
		t.Cleanup(func() { tc.Close() })
		c.expect(wire.StatusReady)
		c.login(true)
		return c
	}
	victim, other := via("127.0.0.13"), via("127.0.0.14")
	if _, err := g.srv.Defender().Ban(netip.MustParseAddr("127.0.0.13"), time.Hour, "admin"); err != nil {
		t.Fatal(err)
	}
	if rep := victim.readWithin(time.Second); rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.Text(), "banned") {
		t.Fatalf("proxied session of the banned client got %d %q", rep.Code, rep.Text())
	}
	other.do("NOOP", wire.StatusCommandOK)
}

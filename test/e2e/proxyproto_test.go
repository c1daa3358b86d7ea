package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// balancer is a test load balancer: it listens on its own address, forwards
// each connection to the same port on the gateway, and starts it with a
// PROXY v2 header naming the real client.
type balancer struct {
	t       *testing.T
	wg      sync.WaitGroup
	lns     []net.Listener
	version byte
}

func startBalancer(t *testing.T, ip string, ports map[int]string, version byte) *balancer {
	t.Helper()
	b := &balancer{t: t, version: version}
	for port, target := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
		if err != nil {
			t.Fatal(err)
		}
		b.lns = append(b.lns, ln)
		b.wg.Add(1)
		go b.serve(ln, target)
	}
	t.Cleanup(func() {
		for _, ln := range b.lns {
			ln.Close()
		}
		b.wg.Wait()
	})
	return b
}

func (b *balancer) serve(ln net.Listener, target string) {
	defer b.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			up, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			h := proxyproto.HeaderProxyFromAddrs(b.version, c.RemoteAddr(), c.LocalAddr())
			if _, err := h.WriteTo(up); err != nil {
				return
			}
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// proxyBackend sits in front of the demo backend, reads the PROXY header the
// gateway sends and records the client it names.
type proxyBackend struct {
	ln      net.Listener
	mu      sync.Mutex
	sources []string
	wg      sync.WaitGroup
}

func startProxyBackend(t *testing.T, target string) *proxyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyBackend{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				h, err := proxyproto.Read(br)
				if err != nil {
					return
				}
				p.mu.Lock()
				p.sources = append(p.sources, h.SourceAddr.String())
				p.mu.Unlock()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, br); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// TestProxyProtocol: through a balancer, the gateway logs and checks the
// client named in the PROXY header, on the data connections too; a direct
// connection from an untrusted address is refused; the backend gets a
// PROXY v2 header with the real client.
func TestProxyProtocol(t *testing.T) {
	var pb *proxyBackend
	g := startGateway(t, func(c *proxy.Config) {
		trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		for i := range c.Listeners {
			c.Listeners[i].ProxyProtocol = proxy.ProxyProtocol{Enabled: true, Trusted: trusted}
		}
		c.Backend.ProxyProtocol = 2
		pb = startProxyBackend(t, c.Backend.Address) // the demo backend, behind a PROXY-reading shim
		c.Backend.Address = pb.ln.Addr().String()
	})
	ports := map[int]string{}
	_, implicitPort, _ := net.SplitHostPort(g.addr("implicit"))
	var ip int
	fmt.Sscan(implicitPort, &ip)
	ports[ip] = g.addr("implicit")
	for p := int(g.cfg.Passive.Ports.Low); p <= int(g.cfg.Passive.Ports.High); p++ {
		ports[p] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	startBalancer(t, "127.0.0.2", ports, 2)

	// The client is 127.0.0.5, reaching the balancer at 127.0.0.2.
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}, Timeout: 5 * time.Second}
	conn, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.2:%d", ip))
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, tls: clientTLS()}
	t.Cleanup(func() { c.conn.Close() })
	tc := tls.Client(conn, c.tls)
	c.conn = tc
	c.r = wire.NewReader(tc)
	c.expect(wire.StatusReady)
	c.login(true)
	writeFile(t, g.root, "via-lb.txt", []byte("through the balancer"))

	port := c.epsv()
	// A data connection through the balancer from another client address: refused.
	thiefDialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.6")}, Timeout: 5 * time.Second}
	thief, err := thiefDialer.Dial("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	_ = thief.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := thief.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("data connection from 127.0.0.6 via the balancer was not closed")
	}
	thief.Close()

	dc, err := dialer.Dial("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	data := c.tlsData(dc)
	c.send("RETR via-lb.txt")
	c.expect(wire.StatusAboutToSend)
	got, err := io.ReadAll(data)
	if err != nil || string(got) != "through the balancer" {
		t.Fatalf("got %q, %v", got, err)
	}
	c.expect(wire.StatusClosingDataConnection)

	logs := g.logs.String()
	if !strings.Contains(logs, `"client":"127.0.0.5:`) {
		t.Error("the gateway does not log the client named in the PROXY header")
	}
	if !strings.Contains(logs, `"remote":"127.0.0.6:`) {
		t.Error("the refused data connection is not logged with the real client address")
	}
	pb.mu.Lock()
	sources := strings.Join(pb.sources, " ")
	pb.mu.Unlock()
	if !strings.Contains(sources, "127.0.0.5:") {
		t.Errorf("the backend's PROXY headers named %q, want the client 127.0.0.5", sources)
	}

	// Untrusted: straight to the gateway from 127.0.0.9, no header.
	direct := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}, Timeout: 5 * time.Second}
	dconn, err := direct.Dial("tcp", g.addr("explicit"))
	if err != nil {
		t.Fatal(err)
	}
	defer dconn.Close()
	_ = dconn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(dconn); len(b) > 0 {
		t.Fatalf("an untrusted connection got %q", b)
	}
}

// TestProxyProtocolBans: bans fall on the client the PROXY header names,
// never on the balancer.
func TestProxyProtocolBans(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		for i := range c.Listeners {
			c.Listeners[i].ProxyProtocol = proxy.ProxyProtocol{Enabled: true, Trusted: trusted}
		}
		c.Bans.MaxFailures = 2
	})
	_, portStr, _ := net.SplitHostPort(g.addr("implicit"))
	var port int
	fmt.Sscan(portStr, &port)
	startBalancer(t, "127.0.0.2", map[int]string{port: g.addr("implicit")}, 1)
	via := func(from string) *rawClient {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(conn, clientTLS())
		c := &rawClient{t: t, conn: tc, r: wire.NewReader(tc), tls: clientTLS()}
		t.Cleanup(func() { tc.Close() })
		return c
	}
	bad := via("127.0.0.11")
	bad.expect(wire.StatusReady)
	bad.do("USER "+user, wire.StatusUserOK)
	bad.do("PASS nope", wire.StatusNotLoggedIn)
	bad.do("USER "+user, wire.StatusUserOK)
	bad.do("PASS nope", wire.StatusNotLoggedIn)
	bad.expect(wire.StatusNotAvailable)

	if _, ok := g.srv.Defender().Banned(netip.MustParseAddr("127.0.0.11")); !ok {
		t.Fatal("the client named in the header is not banned")
	}
	if _, ok := g.srv.Defender().Banned(netip.MustParseAddr("127.0.0.1")); ok {
		t.Fatal("the balancer was banned")
	}
	good := via("127.0.0.12")
	good.expect(wire.StatusReady)
	good.login(true)
}

package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ProxyProtocol is a listener's PROXY protocol setting (HAProxy's spec, v1
// and v2): when enabled, every connection, control and data, must come from
// a trusted address and start with a header naming the real client.
type ProxyProtocol struct {
	Enabled bool
	Trusted []netip.Prefix
}

func (p ProxyProtocol) trusts(ip netip.Addr) bool {
	for _, pre := range p.Trusted {
		if pre.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// Errors of the PROXY header read.
var (
	errUntrustedProxy = errors.New("PROXY protocol: connection from an untrusted address")
	errNoProxyHeader  = errors.New("PROXY protocol: missing or invalid header")
)

// proxiedConn is a connection whose PROXY header has been read: it reports
// the client named in the header, and reads what came after the header.
type proxiedConn struct {
	net.Conn
	r      *bufio.Reader
	remote net.Addr
}

func (c *proxiedConn) Read(b []byte) (int, error) {
	if c.r != nil && c.r.Buffered() > 0 {
		return c.r.Read(b)
	}
	c.r = nil // drained: read the socket directly from now on
	return c.Conn.Read(b)
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// NetConn is the connection under c (relay.Wrapper: a reset reaches the
// socket).
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the TCP connection under the header.
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// readProxyHeader checks that conn comes from a trusted balancer and reads
// its PROXY header within timeout. The returned connection reports the
// header's source address as its remote address.
func readProxyHeader(conn net.Conn, p ProxyProtocol, timeout time.Duration) (net.Conn, error) {
	from, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil || !p.trusts(from.Addr()) {
		return nil, fmt.Errorf("%w: %s", errUntrustedProxy, conn.RemoteAddr())
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := proxyproto.Read(br)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("%w from %s: %w", errNoProxyHeader, conn.RemoteAddr(), err)
	}
	remote := conn.RemoteAddr()
	if !h.Command.IsLocal() && h.SourceAddr != nil {
		remote = h.SourceAddr // LOCAL (a balancer's health check) keeps the balancer's address
	}
	return &proxiedConn{Conn: conn, r: br, remote: remote}, nil
}

// writeProxyHeader sends the backend a PROXY header (version 1 or 2) naming
// the client and the address it connected to.
func writeProxyHeader(conn net.Conn, version byte, client, dest net.Addr) error {
	h := proxyproto.HeaderProxyFromAddrs(version, client, dest)
	_, err := h.WriteTo(conn)
	return err
}

package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// rawClient speaks the control protocol line by line, for the edges that a
// client library hides.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *wire.Reader
	tls  *tls.Config
}

func dialRaw(t *testing.T, addr string, implicit bool) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, tls: clientTLS()}
	t.Cleanup(func() { c.conn.Close() })
	if implicit {
		tc := tls.Client(conn, c.tls)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.conn = tc
	}
	c.r = wire.NewReader(c.conn)
	c.expect(wire.StatusReady)
	return c
}

func (c *rawClient) read() wire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	rep, err := c.r.ReadReply()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return rep
}

func (c *rawClient) expect(code int) wire.Reply {
	c.t.Helper()
	rep := c.read()
	if rep.Code != code {
		c.t.Fatalf("got %d %q, want %d", rep.Code, rep.Text(), code)
	}
	return rep
}

func (c *rawClient) send(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// do sends a command and checks the reply code.
func (c *rawClient) do(line string, code int) wire.Reply {
	c.t.Helper()
	c.send(line)
	return c.expect(code)
}

func (c *rawClient) startTLS() {
	c.t.Helper()
	c.do("AUTH TLS", wire.StatusAuthOK)
	tc := tls.Client(c.conn, c.tls)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.r = wire.NewReader(tc)
}

// login does AUTH TLS (unless implicit), PBSZ, PROT P and logs in.
func (c *rawClient) login(implicit bool) {
	c.t.Helper()
	if !implicit {
		c.startTLS()
	}
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
}

// epsv asks for a passive port.
func (c *rawClient) epsv() uint16 {
	c.t.Helper()
	rep := c.do("EPSV", wire.StatusExtendedPassiveMode)
	port, err := wire.ParseEPSV(rep.Text())
	if err != nil {
		c.t.Fatal(err)
	}
	return port
}

// dataConn connects to the gateway's passive port from 127.0.0.1, TLS on top.
func (c *rawClient) dataConn(port uint16, from string) net.Conn {
	c.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
	conn, err := d.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

func (c *rawClient) tlsData(conn net.Conn) *tls.Conn {
	c.t.Helper()
	tc := tls.Client(conn, c.tls)
	c.t.Cleanup(func() { tc.Close() })
	return tc
}

func hasLine(rep wire.Reply, s string) bool {
	for _, l := range rep.Lines {
		if strings.EqualFold(strings.TrimSpace(l), s) {
			return true
		}
	}
	return false
}

package interop

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestGatewayRefusedDataConnSessionSurvives: a client data connection that
// the gateway refuses (its TLS handshake does not resume the control
// session: data_session_reuse: required) fails that transfer with 425/431,
// and the session goes on: the next command works and a following LIST
// succeeds. vsftpd with explicit FTPS used to drop the control session when
// its data connection was cut under it (426, then 421 for the next
// command); ProFTPD drops the session when a TLS data connection dies.
func TestGatewayRefusedDataConnSessionSurvives(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	for _, spec := range []backendSpec{{kindVsftpd, tlsExplicit}, {kindProftpd, tlsExplicit}} {
		t.Run(spec.String(), func(t *testing.T) {
			ctx := testContext(t, 2*time.Minute)
			srv := startServer(ctx, t, spec)
			srv.putFile(t, "hello.txt", []byte("hello\n"))
			srv.putFile(t, "big.bin", make([]byte, 8<<20))
			cfg := newGatewayConfig(t, srv.Addr, tlsExplicit, srv.CAFile)
			cfg.ImplicitAddr = ""
			cfg.DataAccept = 3 * time.Second
			gw := startGateway(ctx, t, cfg)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%s\n%s\n%s", fmt.Sprintf(format, args...), gw.diagnostics(), srv.diagnostics())
			}

			c := dialFTPS(t, cfg.ExplicitAddr, srv.User, fail)
			// Each transfer kind: a data connection with its own, fresh TLS
			// session is refused, the transfer fails, the session goes on.
			for _, cmd := range []string{"LIST", "RETR big.bin", "STOR up.bin"} {
				port := c.epsv()
				thief, err := tls.Dial("tcp", loopbackAddr(int(port)), &tls.Config{InsecureSkipVerify: true})
				if err == nil {
					_ = thief.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, _ = io.Copy(io.Discard, thief) // the gateway closes it
					thief.Close()
				}
				c.send(cmd)
				rep := c.read()
				if rep.Code == wire.StatusAboutToSend || rep.Code == 125 {
					rep = c.read()
				}
				if rep.Code != wire.StatusCannotOpenDataConnection && rep.Code != wire.StatusNeedSecurityResource {
					fail("%s on a refused data connection: %d %q, want 425 or 431", cmd, rep.Code, rep.Text())
				}
				c.send("PWD")
				if rep := c.read(); rep.Code != 257 {
					fail("PWD after the refused data connection for %s: %d %q, want 257", cmd, rep.Code, rep.Text())
				}
			}
			// And a proper transfer works.
			port := c.epsv()
			raw, err := net.DialTimeout("tcp", loopbackAddr(int(port)), 5*time.Second)
			if err != nil {
				fail("data connection: %v", err)
			}
			data := tls.Client(raw, c.tlsConf)
			c.send("LIST")
			if rep := c.read(); rep.Code != wire.StatusAboutToSend && rep.Code != 125 {
				fail("LIST: %d %q, want 150", rep.Code, rep.Text())
			}
			_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
			listing, err := io.ReadAll(data)
			if err != nil {
				fail("reading the listing: %v", err)
			}
			data.Close()
			if rep := c.read(); rep.Code != wire.StatusClosingDataConnection {
				fail("LIST: %d %q, want 226", rep.Code, rep.Text())
			}
			if !strings.Contains(string(listing), "hello.txt") {
				fail("listing %q lacks hello.txt", listing)
			}
			c.send("QUIT")
		})
	}
}

// ftpsConn is a minimal explicit-FTPS control connection for the edge
// cases that client programs hide.
type ftpsConn struct {
	t       *testing.T
	conn    net.Conn
	r       *wire.Reader
	tlsConf *tls.Config
	fail    func(string, ...any)
}

func dialFTPS(t *testing.T, addr string, acct ftpAccount, fail func(string, ...any)) *ftpsConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &ftpsConn{t: t, conn: conn, r: wire.NewReader(conn), fail: fail, tlsConf: &tls.Config{
		InsecureSkipVerify: true, // the gateway's self-signed certificate
		ServerName:         "127.0.0.1",
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}}
	c.expect(wire.StatusReady)
	c.do("AUTH TLS", wire.StatusAuthOK)
	tc := tls.Client(conn, c.tlsConf)
	if err := tc.Handshake(); err != nil {
		fail("control TLS: %v", err)
	}
	c.conn, c.r = tc, wire.NewReader(tc)
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+acct.Name, wire.StatusUserOK)
	c.do("PASS "+acct.Password, wire.StatusLoggedIn)
	return c
}

func (c *ftpsConn) send(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		c.fail("send %q: %v", line, err)
	}
}

func (c *ftpsConn) read() wire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(45 * time.Second))
	rep, err := c.r.ReadReply()
	if err != nil {
		c.fail("read reply: %v", err)
	}
	return rep
}

func (c *ftpsConn) expect(code int) wire.Reply {
	c.t.Helper()
	rep := c.read()
	if rep.Code != code {
		c.fail("got %d %q, want %d", rep.Code, rep.Text(), code)
	}
	return rep
}

func (c *ftpsConn) do(line string, code int) wire.Reply {
	c.t.Helper()
	c.send(line)
	return c.expect(code)
}

func (c *ftpsConn) epsv() uint16 {
	c.t.Helper()
	rep := c.do("EPSV", wire.StatusExtendedPassiveMode)
	port, err := wire.ParseEPSV(rep.Text())
	if err != nil {
		c.fail("EPSV: %v", err)
	}
	return port
}

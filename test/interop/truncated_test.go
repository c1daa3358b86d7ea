package interop

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestGatewayTruncatedTLSUpload: a client whose TLS data connection ends
// without close_notify in the middle of an upload (the TCP connection under
// TLS ends: a client killed, a network cut). vsftpd, behind the gateway
// (plain and FTPS), must not record the upload as complete: its log says
// FAIL UPLOAD, not OK UPLOAD, and the client gets 426. vsftpd keeps the
// partial file either way; its log and its reply are what tell.
func TestGatewayTruncatedTLSUpload(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	for _, mode := range []tlsMode{tlsNone, tlsExplicit} {
		t.Run("backend-"+string(mode), func(t *testing.T) {
			results.record(t)
			ctx := testContext(t, time.Minute)
			v := startVsftpd(ctx, t, mode)
			gw := startGateway(ctx, t, newGatewayConfig(t, v.Addr, mode, v.CAFile))

			c := dialControl(t, gw.Config.ExplicitAddr)
			c.expect(wire.StatusReady)
			c.do("AUTH TLS", wire.StatusAuthOK)
			c.startTLS()
			c.do("PBSZ 0", wire.StatusCommandOK)
			c.do("PROT P", wire.StatusCommandOK)
			c.do("USER "+v.User.Name, wire.StatusUserOK)
			c.do("PASS "+v.User.Password, wire.StatusLoggedIn)
			c.do("TYPE I", wire.StatusCommandOK)
			port, err := wire.ParseEPSV(c.do("EPSV", wire.StatusExtendedPassiveMode).Text())
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.DialTimeout("tcp", loopbackAddr(int(port)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			data := tls.Client(raw, c.tlsConf)
			c.send("STOR part.bin")
			c.expect(wire.StatusAboutToSend)
			chunk := make([]byte, 1<<20)
			_, _ = rand.Read(chunk)
			if _, err := data.Write(chunk); err != nil {
				t.Fatalf("data: %v\n%s", err, gw.diagnostics())
			}
			// The TCP connection ends under TLS: no close_notify.
			if err := raw.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rep := c.read(); rep.Code != wire.StatusTransferAborted {
				t.Errorf("after a truncated upload: %d %q, want 426", rep.Code, rep.Text())
			}
			// vsftpd logs the upload once it has answered.
			var log string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				b, _ := os.ReadFile(v.xferLog)
				if log = string(b); strings.Contains(log, " UPLOAD:") {
					break
				}
			}
			switch {
			case strings.Contains(log, "OK UPLOAD:"):
				t.Errorf("vsftpd recorded the truncated upload as complete\n%s\n%s", v.diagnostics(), gw.diagnostics())
			case !strings.Contains(log, "FAIL UPLOAD:"):
				t.Errorf("vsftpd logged no failed upload\n%s\n%s", v.diagnostics(), gw.diagnostics())
			}
			c.do("NOOP", wire.StatusCommandOK)
			c.send("QUIT")
		})
	}
}

// controlConn is a line-by-line FTP control connection.
type controlConn struct {
	t       *testing.T
	conn    net.Conn
	r       *wire.Reader
	tlsConf *tls.Config
}

func dialControl(t *testing.T, addr string) *controlConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &controlConn{t: t, conn: conn, r: wire.NewReader(conn), tlsConf: &tls.Config{
		InsecureSkipVerify: true,        // the gateway's generated certificate
		ServerName:         "127.0.0.1", // the session cache key: data connections resume
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}}
}

func (c *controlConn) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, c.tlsConf)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, wire.NewReader(tc)
}

func (c *controlConn) send(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		c.t.Fatal(err)
	}
}

func (c *controlConn) read() wire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rep, err := c.r.ReadReply()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return rep
}

func (c *controlConn) expect(code int) wire.Reply {
	c.t.Helper()
	rep := c.read()
	if rep.Code != code {
		c.t.Fatalf("got %d %q, want %d", rep.Code, rep.Text(), code)
	}
	return rep
}

func (c *controlConn) do(line string, code int) wire.Reply {
	c.t.Helper()
	c.send(line)
	return c.expect(code)
}

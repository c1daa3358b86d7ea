package e2e

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// thief connects to a leased data port from the client's own address with
// a full TLS handshake of its own (no resumption of the control session)
// and waits until the gateway closes it.
func thief(t *testing.T, c *rawClient, port uint16) {
	t.Helper()
	raw := c.dataConn(port, "")
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1"})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("the thief's handshake: %v", err)
	}
	if tc.ConnectionState().DidResume {
		t.Fatal("the thief resumed a session: the test proves nothing")
	}
	if _, err := io.Copy(io.Discard, tc); err != nil && !isReset(err) {
		t.Fatalf("the thief's connection: %v", err)
	}
	tc.Close()
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")
}

// TestDataPortThiefDoesNotFailTransfer: another process on the client's
// address connects to the leased port first, with its own TLS session. It
// is refused, and the port stays open for the rightful client, whose
// download and upload then succeed byte for byte. The gateway used to stop
// listening after the first connection and fail the transfer with 431.
func TestDataPortThiefDoesNotFailTransfer(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.DataAccept = 10 * time.Second })
	want := randomBytes(t, 3<<20)
	if err := os.WriteFile(filepath.Join(g.root, "file.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)

	port := c.epsv()
	thief(t, c, port)
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR file.bin")
	c.expect(wire.StatusAboutToSend)
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(data)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if !data.ConnectionState().DidResume {
		t.Error("the rightful data connection did not resume the control session")
	}
	c.expect(wire.StatusClosingDataConnection)
	if sum(got) != sum(want) {
		t.Fatalf("download: %d bytes, SHA-256 %s; want %d bytes, %s", len(got), sum(got), len(want), sum(want))
	}

	port = c.epsv()
	thief(t, c, port)
	data = c.tlsData(c.dataConn(port, ""))
	c.send("STOR up.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Write(want); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if err := data.Close(); err != nil {
		t.Fatalf("upload close: %v", err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if up := readFile(t, filepath.Join(g.root, "up.bin")); sum(up) != sum(want) {
		t.Fatalf("upload: %d bytes arrived, SHA-256 %s; want %s", len(up), sum(up), sum(want))
	}
	if logs := g.logs.String(); !strings.Contains(logs, "data connection refused") {
		t.Error("no log line for the refused data connection")
	}
}

// TestDataPortThiefOnlyTimesOut: when only the refused connection comes,
// the transfer fails with 431 once timeouts.data_accept has passed, and the
// session goes on.
func TestDataPortThiefOnlyTimesOut(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.DataAccept = time.Second })
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	thief(t, c, port)
	c.send("LIST")
	rep := c.read()
	if rep.Code == wire.StatusAboutToSend {
		rep = c.read()
	}
	if rep.Code != wire.StatusNeedSecurityResource {
		t.Fatalf("LIST with only a refused data connection: %d %q, want 431", rep.Code, rep.Text())
	}
	c.do("NOOP", wire.StatusCommandOK)
}

// TestPassiveStormHoldsOnePort: a session that sends PASV and EPSV over and
// over never holds more than one passive port.
func TestPassiveStormHoldsOnePort(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	for i := range 40 {
		if i%2 == 0 {
			c.epsv()
		} else {
			c.do("PASV", wire.StatusPassiveMode)
		}
		if n := g.srv.PassiveInUse(); n != 1 {
			t.Fatalf("after %d passive commands from one session: %d ports leased, want 1", i+1, n)
		}
	}
	c.do("QUIT", wire.StatusClosing)
	waitFor(t, func() bool { return g.srv.PassiveInUse() == 0 }, "the session's port released after QUIT")
}

// TestPassivePerIPCap: limits.max_passive_per_ip caps the passive ports the
// sessions of one address hold at once; the next EPSV gets 425 with a clear
// text and a log line, and a released port frees the slot.
func TestPassivePerIPCap(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Passive.Ports = freePorts(t, 6)
		c.Limits.MaxPassivePerIP = 2
	})
	var cs []*rawClient
	for range 3 {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		cs = append(cs, c)
	}
	cs[0].epsv()
	cs[1].epsv()
	rep := cs[2].do("EPSV", wire.StatusCannotOpenDataConnection)
	if !strings.Contains(rep.Text(), "max_passive_per_ip") {
		t.Errorf("425 text %q does not say why", rep.Text())
	}
	if !strings.Contains(g.logs.String(), "holds its share of passive ports") {
		t.Error("no log line for the refused passive port")
	}
	// The session is fine, and a released port frees the slot.
	cs[2].do("NOOP", wire.StatusCommandOK)
	cs[0].do("QUIT", wire.StatusClosing)
	waitFor(t, func() bool { return g.srv.PassiveInUse() == 1 }, "the quitting session's port released")
	port := cs[2].epsv()
	data := cs[2].tlsData(cs[2].dataConn(port, ""))
	cs[2].send("LIST")
	cs[2].expect(wire.StatusAboutToSend)
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(data); err != nil {
		t.Fatal(err)
	}
	cs[2].expect(wire.StatusClosingDataConnection)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPlainDataOnProtectedChannelLogged: a client that sends its upload in
// plain text on a PROT P data connection (curl 7.88 does so in active
// mode) and leaves as soon as the gateway closes that connection: the log
// says why, although the session ends before its transfer hears of it.
func TestPlainDataOnProtectedChannelLogged(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	raw := c.dataConn(c.epsv(), "")
	c.send("STOR plain.bin")
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = raw.Write([]byte(strings.Repeat("not a TLS handshake\r\n", 100)))
	if _, err := io.Copy(io.Discard, raw); err != nil && !isReset(err) {
		t.Fatalf("the plain data connection: %v", err)
	}
	c.conn.Close()
	waitLog(t, g, "client data connection closed", "data connection TLS handshake failed")
}

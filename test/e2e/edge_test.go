package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

func TestWrongPassword(t *testing.T) {
	g := startGateway(t)
	c, err := ftp.Dial(g.addr("explicit"), ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	err = c.Login(user, "wrong-"+password)
	var perr *textproto_Error
	if err == nil || !errorCode(err, wire.StatusNotLoggedIn) {
		t.Fatalf("login with a wrong password: %v (%T), want 530", err, perr)
	}
	// The session goes on: the right password works.
	if err := c.Login(user, password); err != nil {
		t.Fatalf("second login: %v", err)
	}
	if !strings.Contains(g.logs.String(), "login failed") {
		t.Error("no log line for the failed login")
	}
}

func TestUserBeforeAuthRefused(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.do("USER "+user, wire.StatusNotLoggedIn)
	c.do("PASS "+password, wire.StatusNotLoggedIn)
	c.do("LIST", wire.StatusNotLoggedIn)
	c.do("PBSZ 0", wire.StatusBadSequence)
	c.do("FEAT", wire.StatusSystemStatus)
	c.do("QUIT", wire.StatusClosing)
}

func TestProtCRefusedAndCCC(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("PROT P", wire.StatusBadSequence) // PBSZ first
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT C", wire.StatusPolicyDenied)
	c.do("PROT S", wire.StatusProtLevelNotSupported)
	c.do("CCC", wire.StatusPolicyDenied)
	c.do("AUTH TLS", wire.StatusBadSequence)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
	// No PROT P yet: a transfer is refused before anything reaches the backend.
	c.epsv()
	c.do("LIST", 521)
}

func TestBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = closed })
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER "+user, wire.StatusUserOK) // answered at the edge: the backend is dialled at PASS
	start := time.Now()
	c.do("PASS "+password, wire.StatusNotAvailable)
	if d := time.Since(start); d > g.cfg.Timeouts.Connect+time.Second {
		t.Fatalf("421 after %s, want within the connect timeout %s", d, g.cfg.Timeouts.Connect)
	}
	// The gateway keeps serving.
	dialRaw(t, g.addr("implicit"), true).do("NOOP", wire.StatusCommandOK)
}

// TestBackendSilent: a backend that accepts but never greets gets a 421
// within the connect timeout.
func TestBackendSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = ln.Addr().String() })
	c := dialRaw(t, g.addr("implicit"), true)
	c.do("USER "+user, wire.StatusUserOK)
	start := time.Now()
	c.do("PASS "+password, wire.StatusNotAvailable)
	if d := time.Since(start); d > g.cfg.Timeouts.Connect+time.Second {
		t.Fatalf("421 after %s", d)
	}
}

// TestDataFromOtherAddressRefused: a data connection from 127.0.0.2 is
// dropped; the client's own connection then works.
func TestDataFromOtherAddressRefused(t *testing.T) {
	g := startGateway(t)
	if err := os.WriteFile(filepath.Join(g.root, "f.txt"), []byte("secret data"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()

	thief := c.dataConn(port, "127.0.0.2")
	_ = thief.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := thief.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("connection from 127.0.0.2 was not closed: n=%d err=%v", n, err)
	}

	data := c.tlsData(c.dataConn(port, "127.0.0.1"))
	c.send("RETR f.txt")
	c.expect(wire.StatusAboutToSend)
	got, err := io.ReadAll(data)
	if err != nil || string(got) != "secret data" {
		t.Fatalf("download = %q, %v", got, err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if !strings.Contains(g.logs.String(), "127.0.0.2") {
		t.Error("the refused data connection is not logged with its address")
	}
}

// TestClientNeverConnects: the transfer fails with 425 after data_accept,
// the backend's transfer is wound down and the session goes on.
func TestClientNeverConnects(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.DataAccept = 500 * time.Millisecond })
	if err := os.WriteFile(filepath.Join(g.root, "f.txt"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.epsv()
	c.send("RETR f.txt")
	c.expect(wire.StatusAboutToSend)
	c.expect(wire.StatusCannotOpenDataConnection)
	c.do("NOOP", wire.StatusCommandOK)
}

// TestAbortDownload sends ABOR in the middle of a download: 426 (or the
// transfer's own reply) then the ABOR reply, and the session goes on.
func TestAbortDownload(t *testing.T) {
	g := startGateway(t)
	big := make([]byte, 64<<20)
	if err := os.WriteFile(filepath.Join(g.root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR big.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := io.ReadFull(data, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	c.send("\xff\xf4\xff\xf2ABOR")
	first := c.read()
	if first.Code != wire.StatusTransferAborted {
		t.Fatalf("first reply after ABOR: %d %q, want 426", first.Code, first.Text())
	}
	second := c.read()
	if second.Code != 225 && second.Code != wire.StatusClosingDataConnection {
		t.Fatalf("ABOR reply: %d %q, want 225 or 226", second.Code, second.Text())
	}
	c.do("NOOP", wire.StatusCommandOK)
	c.do("SIZE big.bin", 213)
}

func TestLineTooLongAndGarbage(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("implicit"), true)
	c.do("NOOP "+strings.Repeat("x", 5000), wire.StatusSyntaxError)
	c.do("N0OP", wire.StatusSyntaxError)
	c.do("NOOP", wire.StatusCommandOK) // still in sync
	// Bare LF works too.
	if _, err := io.WriteString(c.conn, "NOOP\n"); err != nil {
		t.Fatal(err)
	}
	c.expect(wire.StatusCommandOK)
}

// TestPipelinedAfterAuth: plaintext after AUTH TLS must not be taken as if
// it came over TLS.
func TestPipelinedAfterAuth(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.send("AUTH TLS\r\nUSER " + user)
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rep, err := c.r.ReadReply()
	if err == nil && rep.Code == wire.StatusAuthOK {
		t.Fatalf("gateway accepted AUTH with pipelined plaintext")
	}
}

func TestFeatMerged(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	pre := c.do("FEAT", wire.StatusSystemStatus)
	for _, f := range []string{"AUTH TLS", "PBSZ", "PROT", "EPSV"} {
		if !hasLine(pre, f) {
			t.Errorf("pre-login FEAT lacks %q: %q", f, pre.Lines)
		}
	}
	if hasLine(pre, "SIZE") {
		t.Errorf("pre-login FEAT advertises backend features: %q", pre.Lines)
	}
	c.login(false)
	post := c.do("FEAT", wire.StatusSystemStatus)
	for _, f := range []string{"AUTH TLS", "PBSZ", "PROT", "EPSV", "SIZE", "MDTM"} {
		if !hasLine(post, f) {
			t.Errorf("FEAT after login lacks %q: %q", f, post.Lines)
		}
	}
	for _, l := range post.Lines {
		if strings.HasPrefix(strings.TrimSpace(strings.ToUpper(l)), "AUTH SSL") || strings.Contains(strings.ToUpper(l), "CCC") {
			t.Errorf("FEAT relays a security feature of the backend: %q", l)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.Idle = 300 * time.Millisecond })
	c := dialRaw(t, g.addr("implicit"), true)
	c.expect(wire.StatusNotAvailable)
}

func TestImplicitPlaintextClient(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.Handshake = time.Second })
	conn, err := net.Dial("tcp", g.addr("implicit"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "USER %s\r\n", user)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	if strings.Contains(string(b), "220") || strings.Contains(string(b), "331") {
		t.Fatalf("implicit listener answered a plaintext client: %q", b)
	}
}

func TestEPSVAllAndIPv4PASV(t *testing.T) {
	g := startGateway(t)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("EPSV 2", wire.StatusNetworkProtocolNotSupported)
	c.do("EPSV 3", wire.StatusNetworkProtocolNotSupported)
	c.do("EPSV ALL", wire.StatusCommandOK)
	c.do("PASV", wire.StatusBadSequence)
	c.do("EPRT |1|127.0.0.1|5000|", wire.StatusBadSequence)
	c.epsv()
}

func TestActiveMode(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		g := startGateway(t)
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		c.do("PORT 127,0,0,1,200,10", wire.StatusPolicyDenied)
		c.do("EPRT |1|127.0.0.1|51210|", wire.StatusPolicyDenied)
	})
	t.Run("enabled", func(t *testing.T) {
		g := startGateway(t, func(c *proxy.Config) { c.ActiveEnabled = true })
		if err := os.WriteFile(filepath.Join(g.root, "a.txt"), []byte("active data"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		// Bounce attempts: another address, a privileged port.
		c.do("PORT 127,0,0,2,200,10", wire.StatusPolicyDenied)
		c.do("EPRT |1|127.0.0.1|21|", wire.StatusPolicyDenied)
		c.do("EPRT |3|x|1|", wire.StatusNetworkProtocolNotSupported)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		c.do(fmt.Sprintf("EPRT |1|127.0.0.1|%d|", port), wire.StatusCommandOK)
		c.send("RETR a.txt")
		c.expect(wire.StatusAboutToSend)
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(conn, c.tls) // RFC 4217: the client is the TLS client
		defer tc.Close()
		got, err := io.ReadAll(tc)
		if err != nil || string(got) != "active data" {
			t.Fatalf("active download = %q, %v", got, err)
		}
		c.expect(wire.StatusClosingDataConnection)
	})
}

func TestIPv6Listener(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine")
	}
	ln.Close()
	g := startGateway(t, func(c *proxy.Config) {
		c.Listeners = append(c.Listeners, proxy.Listener{Name: "v6", Address: "[::1]:0", TLS: proxy.TLSImplicit})
	})
	if err := os.WriteFile(filepath.Join(g.root, "six.txt"), []byte("over ipv6"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("v6"), true)
	c.login(true)
	c.do("PASV", wire.StatusNetworkProtocolNotSupported)
	c.do("EPSV 1", wire.StatusNetworkProtocolNotSupported)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR six.txt")
	c.expect(wire.StatusAboutToSend)
	got, err := io.ReadAll(data)
	if err != nil || string(got) != "over ipv6" {
		t.Fatalf("got %q, %v", got, err)
	}
	c.expect(wire.StatusClosingDataConnection)
}

// TestShutdownLetsTransferFinish: Shutdown during a download lets it finish
// (hash checked), refuses new connections, and returns once it is done.
func TestShutdownLetsTransferFinish(t *testing.T) {
	g := startGateway(t)
	data := randomBytes(t, 16<<20)
	if err := os.WriteFile(filepath.Join(g.root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, g, "explicit")
	r, err := c.Retr("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- g.srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	if conn, err := net.DialTimeout("tcp", g.addr("explicit"), time.Second); err == nil {
		conn.Close()
		t.Error("a new connection was accepted during shutdown")
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("download cut by shutdown: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("final reply: %v", err)
	}
	if sum(append(head, rest...)) != sum(data) {
		t.Fatal("download differs")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return after the transfer")
	}
}

// TestShutdownGraceOver: when the grace period ends, a transfer is cut with
// 426 and Shutdown reports it; the cut goes through the same end as every
// other transfer: its log line, with the 426 the client got and the bytes
// that passed.
func TestShutdownGraceOver(t *testing.T) {
	g := startGateway(t)
	if err := os.WriteFile(filepath.Join(g.root, "big.bin"), make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR big.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := io.ReadFull(data, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	c.expect(wire.StatusTransferAborted)
	l := transferLog(t, g, "RETR", "big.bin")
	if l.Code != 426 || l.Bytes < 1<<20 || l.SHA256 != "" {
		t.Fatalf("RETR log line %+v, want code 426, at least 1 MiB, no hash", l)
	}
}

// textproto_Error keeps the import of net/textproto out of the way.
type textproto_Error = struct{}

func errorCode(err error, code int) bool {
	return strings.Contains(err.Error(), fmt.Sprint(code))
}

package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// testDataIdle is timeouts.data_idle in these tests; the cut must come
// within it and dataIdleMargin.
const (
	testDataIdle   = time.Second
	dataIdleMargin = 8 * time.Second
)

// withTimeout fails the test, instead of hanging, when body runs longer
// than d (the old gateway never cut a stalled transfer).
func withTimeout(t *testing.T, d time.Duration, body func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); body() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
}

// expectCutWithin reads the next reply and checks that it is 426 and came
// within data_idle and the margin.
func expectCutWithin(t *testing.T, c *rawClient, since time.Time) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testDataIdle + dataIdleMargin))
	rep, err := c.r.ReadReply()
	if err != nil {
		t.Fatalf("no reply %s after the stall: %v", time.Since(since), err)
	}
	if rep.Code != wire.StatusTransferAborted {
		t.Fatalf("got %d %q, want 426", rep.Code, rep.Text())
	}
	if d := time.Since(since); d < testDataIdle {
		t.Fatalf("cut after %s, before data_idle (%s)", d, testDataIdle)
	}
}

// retrSmall downloads name over a new passive TLS data connection and
// returns what came.
func retrSmall(t *testing.T, c *rawClient, name string) []byte {
	t.Helper()
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR " + name)
	c.expect(wire.StatusAboutToSend)
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(data)
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	c.expect(wire.StatusClosingDataConnection)
	return b
}

// TestDataIdleStalledDownload: a client that sends RETR and never reads is
// cut after timeouts.data_idle with 426; the session goes on and the next
// transfer works, on the same (only) passive port.
func TestDataIdleStalledDownload(t *testing.T) {
	// One passive port: the next transfer shows that the cut one's went back.
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.DataIdle = testDataIdle; c.Passive.Ports = freePorts(t, 1) })
	big := randomBytes(t, 24<<20) // more than the sockets on the way hold
	if err := os.WriteFile(filepath.Join(g.root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	small := []byte("after the cut\n")
	if err := os.WriteFile(filepath.Join(g.root, "small.txt"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	withTimeout(t, 60*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR big.bin")
		c.expect(wire.StatusAboutToSend)
		if err := data.Handshake(); err != nil {
			t.Fatal(err)
		}
		// Not a byte read from here on.
		expectCutWithin(t, c, time.Now())
		c.do("NOOP", wire.StatusCommandOK)
		if got := retrSmall(t, c, "small.txt"); !bytes.Equal(got, small) {
			t.Fatalf("next download: %q, want %q", got, small)
		}
	})
	if !strings.Contains(g.logs.String(), `"incomplete":true`) {
		t.Error("the cut transfer is not logged as incomplete")
	}
}

// TestDataIdleStalledUpload: a client that stops sending in the middle of
// an upload is cut after timeouts.data_idle with 426 (the backend's data
// connection is reset: the demo backend answers 426 too); the session goes
// on and the next upload arrives whole.
func TestDataIdleStalledUpload(t *testing.T) {
	// One passive port: the next transfer shows that the cut one's went back.
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.DataIdle = testDataIdle; c.Passive.Ports = freePorts(t, 1) })
	withTimeout(t, 60*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("STOR stalled.bin")
		c.expect(wire.StatusAboutToSend)
		if _, err := data.Write(randomBytes(t, 100<<10)); err != nil {
			t.Fatal(err)
		}
		// Nothing more is sent, and the connection stays open.
		expectCutWithin(t, c, time.Now())
		c.do("NOOP", wire.StatusCommandOK)

		want := randomBytes(t, 300<<10)
		port = c.epsv()
		data = c.tlsData(c.dataConn(port, ""))
		c.send("STOR next.bin")
		c.expect(wire.StatusAboutToSend)
		if _, err := data.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := data.Close(); err != nil {
			t.Fatal(err)
		}
		c.expect(wire.StatusClosingDataConnection)
		if got := readFile(t, filepath.Join(g.root, "next.bin")); !bytes.Equal(got, want) {
			t.Fatalf("next upload: %d bytes on the backend, want %d", len(got), len(want))
		}
	})
	if !strings.Contains(g.logs.String(), `"incomplete":true`) {
		t.Error("the cut transfer is not logged as incomplete")
	}
}

// dataEnd is how a fake backend's data connection ended.
type dataEnd struct {
	n   int64
	err error // nil: a clean end (EOF, or close_notify under TLS)
}

// TestTruncatedTLSUpload: a client whose TLS data connection ends in the
// middle of an upload without close_notify (killed, network cut) gets 426,
// and the backend must not see a clean end (it would keep a truncated file
// as complete): its data connection is reset.
func TestTruncatedTLSUpload(t *testing.T) {
	for _, how := range []string{"fin", "close"} {
		t.Run(how, func(t *testing.T) {
			ends := make(chan dataEnd, 1)
			f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
				ctrl.WriteString("150 Ok to send data\r\n")
				ctrl.Flush()
				_ = data.SetReadDeadline(time.Now().Add(20 * time.Second))
				n, err := io.Copy(io.Discard, data)
				data.Close()
				ends <- dataEnd{n, err}
				if err != nil {
					ctrl.WriteString("426 Failure reading network stream\r\n")
				} else {
					ctrl.WriteString("226 Transfer complete\r\n")
				}
				ctrl.Flush()
			})
			g := fakeGateway(t, f)
			withTimeout(t, 30*time.Second, func() {
				c := dialRaw(t, g.addr("explicit"), false)
				c.login(false)
				port := c.epsv()
				raw := c.dataConn(port, "")
				data := c.tlsData(raw)
				c.send("STOR part.bin")
				c.expect(wire.StatusAboutToSend)
				if _, err := data.Write(randomBytes(t, 200<<10)); err != nil {
					t.Fatal(err)
				}
				// The TCP connection ends under TLS: no close_notify.
				if how == "fin" {
					_ = raw.(*net.TCPConn).CloseWrite()
				} else {
					_ = raw.Close()
				}
				rep := c.read()
				if rep.Code != wire.StatusTransferAborted {
					t.Errorf("after a truncated upload: %d %q, want 426", rep.Code, rep.Text())
				}
				select {
				case e := <-ends:
					if e.err == nil {
						t.Errorf("the backend saw a clean end of the upload after %d bytes", e.n)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the backend's data connection did not end")
				}
				c.do("NOOP", wire.StatusCommandOK)
			})
			if !strings.Contains(g.logs.String(), `"incomplete":true`) {
				t.Error("the truncated transfer is not logged as incomplete")
			}
			if l := transferLog(t, g, "STOR", "part.bin"); l.SHA256 != "" {
				t.Errorf("the truncated upload's line carries a sha256 that could pass for the file's: %+v", l)
			}
		})
	}
}

// TestTruncatedTLSDownload: a backend whose TLS data connection ends without
// close_notify (and that says 226 anyway, as when something between cut
// it) must not give the client a clean end: the client gets 426 and its
// data connection reset, not close_notify. An empty one (pyftpdlib ends
// empty listings so) is no truncation: nothing came before the FIN, and
// the backend's 226 goes through.
func TestTruncatedTLSDownload(t *testing.T) {
	cert, caFile := selfSigned(t)
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		tc, ok := data.(*tls.Conn)
		if !ok {
			data.Close()
			ctrl.WriteString("451 the data connection is not protected\r\n")
			ctrl.Flush()
			return
		}
		if strings.HasSuffix(cmd, "cut.bin") {
			_, _ = tc.Write(bytes.Repeat([]byte("t"), 300<<10))
		} else if err := tc.Handshake(); err != nil {
			ctrl.WriteString("425 TLS failed\r\n")
			ctrl.Flush()
			return
		}
		_ = tc.NetConn().Close() // no close_notify
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend = proxy.Backend{Address: f.ln.Addr().String(), TLS: proxy.TLSExplicit, Trust: policy.BackendTLS{CAFile: caFile}}
		c.Timeouts.Connect = time.Second
	})
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR cut.bin")
		c.expect(wire.StatusAboutToSend)
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, data)
		if err == nil {
			t.Errorf("the client's data connection ended cleanly (close_notify) after %d bytes of a truncated download", n)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the client's data connection did not end: %v", err)
		}
		rep := c.read()
		if rep.Code != wire.StatusTransferAborted {
			t.Errorf("after a truncated download: %d %q, want 426", rep.Code, rep.Text())
		}
		c.do("NOOP", wire.StatusCommandOK)

		if got := retrSmall(t, c, "empty.bin"); len(got) != 0 {
			t.Errorf("empty download: %d bytes", len(got))
		}
	})
	if !strings.Contains(g.logs.String(), `"incomplete":true`) {
		t.Error("the truncated transfer is not logged as incomplete")
	}
}

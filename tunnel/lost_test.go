package tunnel

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyrelay "github.com/ftpsgate/ftpsgate/proxy/relay"
)

// TestTunnelLostDownload: a tunnel that ends under a stream is an error on
// the gateway's side, not an end of stream: a plain-FTP download cut there
// must not look complete.
func TestTunnelLostDownload(t *testing.T) {
	// The destination sends 64 KiB and keeps the connection open.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write(make([]byte, 64<<10))
		held <- c
	}()
	h, r := lan(t, ln.Addr().String(), func(c *AgentConfig) {
		c.ShutdownGrace = 50 * time.Millisecond // then the agent closes its tunnel
	})
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), ln.Addr().String(), netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	dst := <-held
	defer dst.Close()

	r.stop() // the tunnel ends; the destination's connection is still open
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("read %d more bytes, then %v; want ErrTunnelLost (a clean end would make the cut transfer look complete)", n, err)
	}
}

// TestTunnelLostUpload: when the tunnel ends under a stream, the agent
// resets the destination's connection instead of half-closing it: a
// plain-FTP server must not store a cut upload as a whole file.
func TestTunnelLostUpload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ended := make(chan error, 1)
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ended <- err
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- n
		ended <- err
	}()
	h, _ := lan(t, ln.Addr().String(), nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), ln.Addr().String(), netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	h.Close() // the gateway's side of every tunnel ends
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the destination read %d bytes, then %v; want a reset (a clean end would store the cut upload as complete)", <-got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the destination's connection was not ended with the tunnel")
	}
}

// TestHalfCloseTimeoutUpload: once the destination half-closed its end,
// yamux ends the stream after its close timeout even while the gateway
// still sends, and the agent's read of it then looks like the gateway's
// end. The agent resets the destination then: a plain-FTP server must not
// store the cut upload as a whole file.
func TestHalfCloseTimeoutUpload(t *testing.T) {
	old := closeTimeout
	t.Cleanup(func() { closeTimeout = old }) // after the agent's and Hub's cleanups
	closeTimeout = 300 * time.Millisecond
	ended := make(chan error, 1)
	dst := serveTCP(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).CloseWrite() // nothing to send: it only receives
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	h, _ := lan(t, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The upload goes on, slowly, beyond the close timeout.
	for range 8 {
		if _, err := c.Write(make([]byte, 1<<10)); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantDestinationReset(t, ended)
}

// TestHalfCloseTimeoutDownload: the same on the gateway's side: once the
// gateway half-closed a stream, yamux ends it after its close timeout even
// while the destination still sends, and the end must read as a cut, not
// as the destination's end of the data.
func TestHalfCloseTimeoutDownload(t *testing.T) {
	old := closeTimeout
	t.Cleanup(func() { closeTimeout = old }) // after the agent's and Hub's cleanups
	closeTimeout = 300 * time.Millisecond
	dst := serveTCP(t, func(c net.Conn) {
		for range 20 { // a slow download, longer than the close timeout
			if _, err := c.Write(make([]byte, 1<<10)); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	h, _ := lan(t, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err == nil && n < 20<<10 {
		t.Fatalf("the gateway read %d bytes of 20 KiB and a clean end", n)
	}
}

// TestResetUpload: the gateway cuts an upload (the client went away, a
// filter vetoed it) with relay.ResetConn, as it resets a direct backend
// connection: the destination must read a reset, not the clean end of a
// cut upload (a stream's Close is a FIN, which the agent passed on as one).
func TestResetUpload(t *testing.T) {
	ended := make(chan error, 1)
	dst := serveTCP(t, func(c net.Conn) {
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	h, _ := lan(t, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	proxyrelay.ResetConn(c)
	wantDestinationReset(t, ended)
}

// TestResetDownload: a destination that resets its connection (a cut
// download) must not look to the gateway like the end of the data.
func TestResetDownload(t *testing.T) {
	dst := serveTCP(t, func(c net.Conn) {
		_, _ = c.Write(make([]byte, 64<<10))
		time.Sleep(100 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0) // Close resets
	})
	h, _ := lan(t, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err == nil || isTimeout(err) {
		t.Fatalf("the gateway read %d bytes and %v; want the reset", n, err)
	}
}

// TestResetsKeepTunnel: a stream the agent reset (its destination reset
// the connection) stays in its tunnel until yamux's close timeout, the
// gateway having forgotten it; such streams do not count toward the
// streams a gateway may keep open, or a busy backend that resets its
// connections would have the agent drop the tunnel.
func TestResetsKeepTunnel(t *testing.T) {
	dst := serveTCP(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0) // Close resets
	})
	h, ag := lan(t, dst, func(c *AgentConfig) { c.MaxStreams = 2 })
	for range tunnelStreams(2) + 10 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			continue // reset before the agent's connect or its reply; the last stream's end not seen yet (busy)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}
	if strings.Contains(ag.log.String(), "tunnel dropped") {
		t.Fatal("the agent dropped the tunnel")
	}
}

// wantDestinationReset waits for the destination's read of a cut upload to
// end, and wants a reset: a clean end would store the cut upload as
// complete.
func wantDestinationReset(t *testing.T, ended <-chan error) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the destination's read ended with %v; want a reset (a clean end would store the cut upload as complete)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the destination's connection did not end")
	}
}

package proxy

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		done <- c.(*net.TCPConn)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-done
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// TestResetThroughProxyHeader: a data connection that came with a PROXY
// header is reset, not closed, when the relay cuts it (relay.Wrapper).
func TestResetThroughProxyHeader(t *testing.T) {
	peer, gw := tcpPair(t)
	relay.ResetConn(&proxiedConn{Conn: gw})
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := peer.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read %v, want a connection reset", err)
	}
}

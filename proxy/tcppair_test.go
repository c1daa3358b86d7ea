package proxy

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testnet"
	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) { return testnet.TCPPair(t) }

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

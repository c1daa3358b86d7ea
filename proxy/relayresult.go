package proxy

import (
	"crypto/tls"
	"net"

	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// relayResult is the session's copy of a relay.Result.
type relayResult struct {
	n          int64
	err        error // the copy failed: the data is incomplete
	closeErr   error // the copy succeeded but ending it did not
	peerClosed bool  // the destination closed its end first
	gone       <-chan struct{}
	res        relay.Result
}

func fromRelay(r relay.Result) relayResult {
	return relayResult{n: r.N, err: r.Err, closeErr: r.CloseErr, peerClosed: r.PeerClosed, gone: r.Gone, res: r}
}

func (r relayResult) cut() bool        { return r.res.Cut() }
func (r relayResult) gatewayCut() bool { return r.res.GatewayCut() }
func (r relayResult) handedOff() bool  { return r.res.HandedOff() }

// rawConn is the socket under a TLS connection, or c itself.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

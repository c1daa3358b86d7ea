package proxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
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

// account adds the transfer's bytes to the session and emits its event,
// with the final reply the client gets (t.sent); the log consumer writes
// its line.
func (s *session) account(t *transfer) {
	var r relayResult
	if t.relayed != nil {
		r = *t.relayed
	}
	if t.upload {
		s.bytesUp += r.n
	} else {
		s.bytesDown += r.n
	}
	s.updateInfo(func(i *SessionInfo) { i.BytesUp, i.BytesDown = s.bytesUp, s.bytesDown })
	e := events.Transfer{Session: s.ev(), Verb: t.cmd.Verb, Upload: t.upload, Path: t.path, BackendPath: t.cmd.Arg, Bytes: r.n,
		Duration: time.Since(t.start), Protected: t.d.protect, Incomplete: r.err != nil,
		Err: r.err, CloseErr: r.closeErr, PeerClosed: r.peerClosed}
	if t.final != nil {
		e.BackendCode = t.final.Code
	}
	e.Code = e.BackendCode
	if t.sent != nil {
		e.Code = t.sent.Code // the reply the client got
	}
	if h := t.hashResult(); h.sum != "" {
		e.Hash, e.HashSize, e.Offset = h.sum, h.size, h.offset
	}
	if t.hold != nil {
		e.Held, e.HeldBytes, e.HeldOnDisk = true, t.hold.buf.Len(), t.hold.buf.Spilled()
	}
	s.emit(e)
}

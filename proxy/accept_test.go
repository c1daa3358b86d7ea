package proxy

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// emfileListener fails every Accept with EMFILE, as a listener does when
// the process is out of descriptors, until closed.
type emfileListener struct {
	calls  atomic.Int32
	closed chan struct{}
}

func (l *emfileListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	l.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
}
func (l *emfileListener) Close() error   { close(l.closed); return nil }
func (l *emfileListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestAcceptBacksOffOnEMFILE: out of descriptors, the accept loop waits
// longer and longer between attempts (5 ms doubling up to 1 s) instead of
// spinning and flooding the log.
func TestAcceptBacksOffOnEMFILE(t *testing.T) {
	s := &Server{log: zerolog.Nop()}
	ln := &emfileListener{closed: make(chan struct{})}
	s.acceptWG.Add(1)
	go s.acceptLoop(ln, Listener{Name: "test"})
	time.Sleep(400 * time.Millisecond)
	_ = ln.Close()
	s.acceptWG.Wait()
	// 5+10+20+40+80+160 ms = 315 ms: about 7 attempts in 400 ms.
	if n := ln.calls.Load(); n < 3 || n > 10 {
		t.Fatalf("%d accept attempts in 400 ms of EMFILE, want a handful (backing off)", n)
	}
}

package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/hold"
)

// holdSink is the destination of a held download's first relay (backend
// to hold.Buffer), shaped as the data connection relay.Run writes to.
// CloseWrite is the end of the data (the copy completed); Close cuts the
// copy (the transfer is given up): its next Write fails, and Read, which
// the relay uses to see a peer that went away, returns.
type holdSink struct {
	buf    *hold.Buffer
	cut    atomic.Bool
	done   chan struct{}
	once   sync.Once
	sealed atomic.Bool
}

func newHoldSink(b *hold.Buffer) *holdSink { return &holdSink{buf: b, done: make(chan struct{})} }

func (s *holdSink) Write(p []byte) (int, error) {
	if s.cut.Load() {
		return 0, net.ErrClosed
	}
	return s.buf.Write(p)
}

// Read blocks until the sink is closed: nothing comes back from a buffer.
// After Close it reports the peer gone (EOF).
func (s *holdSink) Read([]byte) (int, error) {
	<-s.done
	return 0, io.EOF
}

// CloseWrite: every byte of the download is held.
func (s *holdSink) CloseWrite() error {
	s.sealed.Store(true)
	s.once.Do(func() { close(s.done) })
	return nil
}

// Close cuts the copy, unless the data is complete already.
func (s *holdSink) Close() error {
	if !s.sealed.Load() {
		s.cut.Store(true)
	}
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *holdSink) LocalAddr() net.Addr                { return holdAddr{} }
func (s *holdSink) RemoteAddr() net.Addr               { return holdAddr{} }
func (s *holdSink) SetDeadline(time.Time) error        { return nil }
func (s *holdSink) SetReadDeadline(time.Time) error    { return nil }
func (s *holdSink) SetWriteDeadline(time.Time) error   { return nil }
func (s *holdSink) String() string                     { return "hold buffer" }
func (holdAddr) Network() string                       { return "hold" }
func (holdAddr) String() string                        { return "hold buffer" }
func (s *holdSource) LocalAddr() net.Addr              { return holdAddr{} }
func (s *holdSource) RemoteAddr() net.Addr             { return holdAddr{} }
func (s *holdSource) Write(p []byte) (int, error)      { return 0, net.ErrClosed }
func (s *holdSource) SetWriteDeadline(time.Time) error { return nil }

type holdAddr struct{}

// holdSource is the source of a held download's release (hold.Buffer to
// the client's data connection), shaped as the connection relay.Run reads
// from. Its reads never wait, but they honour the read deadline the
// relay's idle watch sets (a deadline ends one slice of its copy: see
// relay's copyPlain), and Close ends them.
type holdSource struct {
	r        io.Reader
	closed   atomic.Bool
	deadline atomic.Int64 // unix nanoseconds; 0: none
}

func newHoldSource(b *hold.Buffer) *holdSource { return &holdSource{r: b.Reader()} }

func (s *holdSource) Read(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if d := s.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return 0, os.ErrDeadlineExceeded
	}
	return s.r.Read(p)
}

func (s *holdSource) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *holdSource) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *holdSource) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		s.deadline.Store(0)
	} else {
		s.deadline.Store(t.UnixNano())
	}
	return nil
}

package demoftpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	ftpserver "goftp.io/server/v2"
)

const (
	// maxLine caps a command line; a longer one is replaced by a line goftp
	// answers with 500.
	maxLine = 4096
	// dataAcceptTimeout is how long a transfer waits for the client to open the
	// passive data connection.
	dataAcceptTimeout = 30 * time.Second
)

var (
	errNoPassive   = errors.New("no PASV or EPSV before the transfer")
	errConnClosed  = errors.New("control connection closed")
	errAborted     = errors.New("transfer aborted")
	errWrongSource = errors.New("data connection from another address than the control connection")
)

// ctrlConn is the control connection as goftp sees it. A goroutine of ours
// reads it ahead line by line so that ABOR is seen while goftp's session loop
// is busy inside a transfer; goftp then reads the same lines from a channel.
//
// It also carries the per-session state our commands need, because goftp keeps
// its own (data socket, REST offset, RNFR path) in unexported fields.
//
// With TLS, the embedded Conn stays the TCP connection (for addresses and to
// cut everything at once) while reads and writes go through wire, which
// becomes the *tls.Conn once the control connection is secured.
type ctrlConn struct {
	net.Conn // the accepted TCP connection
	s        *Server
	log      zerolog.Logger
	remote   *sessionAddr
	// tlsConf is this control connection's own clone of Config.TLS (its own
	// session ticket key); nil without TLS.
	tlsConf *tls.Config
	// authDone carries cmdAuth's decision to readLoop, which stops reading
	// after an AUTH line until it knows whether a handshake follows.
	authDone chan bool

	lines     chan []byte
	done      chan struct{}
	readErr   error  // written by readLoop before it closes lines
	pending   []byte // rest of the line being handed to goftp; goftp's goroutine only
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool
	wire   net.Conn         // the TCP connection, or the TLS one on top of it
	pasv   *net.TCPListener // waiting for the next transfer's data connection
	xfer   *transfer        // the running transfer

	// Used from goftp's session goroutine only.
	rest       int64
	renameFrom string
	ascii      bool
	protect    bool // PROT P: data connections use TLS
}

// sessionAddr is what ctrlConn.RemoteAddr returns: the real address, plus a
// way back from goftp's *Session (Session.RemoteAddr) to our ctrlConn.
type sessionAddr struct {
	net.Addr
	c *ctrlConn
}

func newCtrlConn(s *Server, raw net.Conn) *ctrlConn {
	c := &ctrlConn{
		Conn:     raw,
		s:        s,
		log:      s.log.With().Str(fieldRemote, raw.RemoteAddr().String()).Logger(),
		tlsConf:  s.tls.connConfig(),
		authDone: make(chan bool, 1),
		lines:    make(chan []byte, 16),
		done:     make(chan struct{}),
		wire:     raw,
	}
	if s.tls.mode == tlsImplicit {
		// goftp's 220 waits in tls.Conn.Write for readLoop's handshake.
		c.wire = tls.Server(raw, c.tlsConf)
	}
	c.remote = &sessionAddr{Addr: raw.RemoteAddr(), c: c}
	return c
}

// connOf finds our ctrlConn behind a goftp session.
func connOf(sess *ftpserver.Session) *ctrlConn {
	if a, ok := sess.RemoteAddr().(*sessionAddr); ok {
		return a.c
	}
	return nil
}

func (c *ctrlConn) RemoteAddr() net.Addr { return c.remote }

// Write sends replies, through TLS once the control connection is secured.
func (c *ctrlConn) Write(p []byte) (int, error) {
	return c.currentWire().Write(p)
}

func (c *ctrlConn) currentWire() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wire
}

// Read hands goftp the lines read ahead by readLoop.
func (c *ctrlConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		line, ok := <-c.lines
		if !ok {
			return 0, c.readErr
		}
		c.pending = line
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// Close closes the control connection, the pending passive listener and the
// running transfer's data connection. Idempotent; goftp calls it, and so does
// Server.Close from another goroutine.
func (c *ctrlConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		// A secured connection sends close_notify first (tls.Conn.Close skips
		// it when a Write is in flight).
		err = c.currentWire().Close()
		close(c.done)
		c.mu.Lock()
		c.closed = true
		if c.pasv != nil {
			c.pasv.Close()
			c.pasv = nil
		}
		if c.xfer != nil {
			c.xfer.cut()
		}
		c.mu.Unlock()
		c.s.forget(c)
	})
	return err
}

// readLoop reads command lines ahead of goftp. An ABOR aborts the running
// transfer at once and is still passed on, so that goftp runs our ABOR command
// (226) after the transfer command has sent its 426.
//
// With TLS, readLoop also runs the control connection's handshake: at once in
// implicit mode, and after cmdAuth's 234 in explicit mode.
func (c *ctrlConn) readLoop() {
	defer c.s.readers.Done()
	defer close(c.lines)
	var r io.Reader = c.Conn
	if tc, ok := c.currentWire().(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.readErr = err
			return
		}
		r = tc
	}
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			line = stripTelnet(line)
			if isAbor(line) && c.abortTransfer() {
				c.log.Debug().Msg("ABOR: transfer aborted")
			}
			auth := err == nil && c.awaitsAuth(line)
			select {
			case c.lines <- line:
			case <-c.done:
				c.readErr = io.EOF
				return
			}
			if auth {
				tc, herr := c.startTLS(br)
				if herr != nil {
					c.readErr = herr
					return
				}
				if tc != nil {
					br = bufio.NewReaderSize(tc, maxLine)
				}
				continue
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				err = io.EOF
			}
			c.readErr = err
			return
		}
	}
}

// readLine returns one line including its LF (or the tail before EOF). A line
// longer than maxLine is discarded and replaced by one goftp rejects with 500.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		return []byte("LINE-TOO-LONG\r\n"), err
	}
	return bytes.Clone(line), err
}

// stripTelnet removes the Telnet IP and Synch sequences a client may send in
// front of ABOR (RFC 959 4.1.3). When the Synch's DM byte was sent as TCP
// urgent data it does not arrive in-line, which leaves a lone IAC; so
// everything up to the first letter is dropped from a line that begins with IAC.
func stripTelnet(line []byte) []byte {
	const iac = 0xff
	if len(line) == 0 || line[0] != iac {
		return line
	}
	i := 0
	for i < len(line) && !isLetter(line[i]) {
		i++
	}
	return line[i:]
}

func isLetter(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

func isAbor(line []byte) bool {
	return bytes.EqualFold(bytes.TrimRight(line, " \r\n"), []byte("ABOR"))
}

// setPassive installs ln as the listener for the next transfer, closing a
// previous one nobody used.
func (c *ctrlConn) setPassive(ln *net.TCPListener) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ln.Close()
		return errConnClosed
	}
	old := c.pasv
	c.pasv = ln
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// dropPassive closes the pending passive listener, if any.
func (c *ctrlConn) dropPassive() {
	c.mu.Lock()
	old := c.pasv
	c.pasv = nil
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// transfer is one data connection's life: waiting for the client, copying,
// being cut by ABOR or Close.
type transfer struct {
	ln      *net.TCPListener
	conn    net.Conn // the TCP connection, set once accepted; guarded by ctrlConn.mu
	aborted bool     // guarded by ctrlConn.mu
	start   time.Time
	// data is what the transfer reads and writes: conn, or TLS on top of it
	// with PROT P. Used from goftp's session goroutine only.
	data net.Conn
}

// cut closes the listener and the data connection; the caller holds c.mu.
func (t *transfer) cut() {
	t.ln.Close()
	if t.conn != nil {
		t.conn.Close()
	}
}

// abortTransfer cuts the running transfer, if any, and reports whether there
// was one. Called from readLoop.
func (c *ctrlConn) abortTransfer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.xfer == nil {
		return false
	}
	c.xfer.aborted = true
	c.xfer.cut()
	return true
}

// openData takes the pending passive listener and waits for the client's
// data connection, which must come from the control connection's IP.
func (c *ctrlConn) openData() (*transfer, net.Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, errConnClosed
	}
	if c.pasv == nil {
		c.mu.Unlock()
		return nil, nil, errNoPassive
	}
	t := &transfer{ln: c.pasv, start: time.Now()}
	c.pasv = nil
	c.xfer = t
	c.mu.Unlock()

	conn, err := c.acceptData(t.ln)
	t.ln.Close()

	c.mu.Lock()
	defer c.mu.Unlock()
	if t.aborted || c.closed {
		if conn != nil {
			conn.Close()
		}
		err = errAborted
	}
	if err != nil {
		c.xfer = nil
		return nil, nil, err
	}
	t.conn = conn
	t.data = conn
	return t, conn, nil
}

func (c *ctrlConn) acceptData(ln *net.TCPListener) (net.Conn, error) {
	if err := ln.SetDeadline(time.Now().Add(dataAcceptTimeout)); err != nil {
		return nil, err
	}
	want := addrIP(c.Conn.RemoteAddr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		if got := addrIP(conn.RemoteAddr()); got != nil && want != nil && !got.Equal(want) {
			c.log.Debug().Err(errWrongSource).Str(fieldDataAddress, conn.RemoteAddr().String()).Msg("data connection refused")
			conn.Close()
			continue
		}
		return conn, nil
	}
}

// closeData ends a transfer: it closes the data connection (before the final
// reply is written; a TLS one with close_notify) and reports whether ABOR or
// Close cut it.
func (c *ctrlConn) closeData(t *transfer) (aborted bool) {
	c.mu.Lock()
	c.xfer = nil
	aborted = t.aborted || c.closed
	c.mu.Unlock()
	t.data.Close()
	t.conn.Close() // in case the TLS layer did not get to close it
	return aborted
}

func addrIP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}

func localIP(c net.Conn) net.IP {
	return addrIP(c.LocalAddr())
}

package relay

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// maxRecord is the most plaintext one TLS record carries.
const maxRecord = 16 << 10

// recordConn sits under a data connection's tls.Conn and cuts its system
// calls: while the relay writes one buffer, the TLS records it becomes are
// gathered and sent in one write (crypto/tls writes each 16 KiB record on
// its own); and the socket is read through a buffer as large as the relay's,
// so that one read brings many records. The profile of a 1 GiB download
// spent 43% of the gateway's CPU in write(2) before.
//
// The read buffer starts at a few records and grows to the relay's size
// only when a read fills it (a bulk transfer): a directory listing or a
// small file does not cost 512 KiB of garbage per data connection, which
// the profile of sessions per second showed as GC and page scavenging.
type recordConn struct {
	net.Conn
	rbuf       []byte
	big        *[]byte // rbuf, when it is the large one (from relayBufs)
	rpos, rend int     // rbuf[rpos:rend] is read from the socket, not yet taken
	grow       bool
	rerr       error // returned once the buffer is empty
	eof        bool  // the socket has ended (read io.EOF)

	batching atomic.Bool // set by the relay around one tls.Conn.Write
	mu       sync.Mutex  // guards out
	out      []byte
}

// recordReadStart is the first read buffer: two full records with their
// headers and tags.
const recordReadStart = 2 * (maxRecord + 256)

func NewRecordConn(c net.Conn) net.Conn { return &recordConn{Conn: c} }

// NetConn is the connection under c.
func (c *recordConn) NetConn() net.Conn { return c.Conn }

// Read returns buffered bytes, or reads the socket into the buffer once.
func (c *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.rpos == c.rend {
		if err := c.rerr; err != nil {
			c.rerr = nil
			return 0, err
		}
		switch {
		case c.grow:
			c.big = relayBufs.Get().(*[]byte)
			c.rbuf = *c.big
			c.grow = false
		case c.rbuf == nil:
			c.rbuf = make([]byte, recordReadStart)
		}
		n, err := c.Conn.Read(c.rbuf)
		if err == io.EOF {
			c.eof = true
		}
		c.rpos, c.rend = 0, n
		if n == len(c.rbuf) && n < relayBufSize {
			c.grow = true // more was waiting: a bulk transfer
		}
		if n == 0 {
			return 0, err
		}
		c.rerr = err // with data: the data first
	}
	n := copy(p, c.rbuf[c.rpos:c.rend])
	c.rpos += n
	return n, nil
}

func (c *recordConn) Write(p []byte) (int, error) {
	if !c.batching.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	c.out = append(c.out, p...)
	c.mu.Unlock()
	return len(p), nil
}

// flush sends what was gathered and returns how much it sent. After an
// error (the relay's write deadline) what was not sent stays for the next
// flush: the records are whole on the wire or not at all.
func (c *recordConn) flush() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return 0, nil
	}
	n, err := c.Conn.Write(c.out)
	if err != nil {
		c.out = c.out[:copy(c.out, c.out[n:])]
		return n, err
	}
	c.out = c.out[:0]
	return n, nil
}

// releaseRead gives the large read buffer back while the connection waits:
// what is left in it, if little, moves to a small one, and the next read
// takes a large one again. Only the goroutine that reads c may call it.
// nil: nothing.
func (c *recordConn) releaseRead() {
	if c == nil || c.big == nil {
		return
	}
	left := c.rend - c.rpos
	if left > recordReadStart {
		return
	}
	var small []byte
	if left > 0 {
		small = make([]byte, recordReadStart)
		copy(small, c.rbuf[c.rpos:c.rend])
	}
	relayBufs.Put(c.big)
	c.big, c.rbuf = nil, small
	c.rpos, c.rend = 0, left
	c.grow = true
}

// releaseBatch trims the write batch to what is still to be sent (nothing,
// or the rest of a flush that waits).
func (c *recordConn) releaseBatch() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.out) == 0 {
		c.out = nil
	} else if cap(c.out) > len(c.out)+len(c.out)/8 {
		c.out = append([]byte(nil), c.out...)
	}
	c.mu.Unlock()
}

// ended reports whether the socket under the TLS connection has ended. When
// crypto/tls then returns io.EOF, it did not see close_notify: it reports
// io.EOF for a connection that ends between two records, and after
// close_notify it reads the socket no further.
func (c *recordConn) ended() bool { return c.eof }

// buffered reports bytes read from the socket that TLS has not taken yet.
func (c *recordConn) buffered() int { return c.rend - c.rpos }

// CloseWrite half-closes the socket under TLS.
func (c *recordConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// recordConnOf returns the recordConn under a data connection's TLS, if any.
func recordConnOf(c net.Conn) *recordConn {
	if tc, ok := c.(*tls.Conn); ok {
		rc, _ := tc.NetConn().(*recordConn)
		return rc
	}
	return nil
}

package proxy

import (
	"bufio"
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
type recordConn struct {
	net.Conn
	r *bufio.Reader

	batching atomic.Bool // set by the relay around one tls.Conn.Write
	mu       sync.Mutex  // guards out
	out      []byte
}

func newRecordConn(c net.Conn) *recordConn {
	return &recordConn{Conn: c, r: bufio.NewReaderSize(c, relayBufSize)}
}

func (c *recordConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *recordConn) Write(p []byte) (int, error) {
	if !c.batching.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	c.out = append(c.out, p...)
	c.mu.Unlock()
	return len(p), nil
}

// flush sends what was gathered.
func (c *recordConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

// buffered reports bytes read from the socket that TLS has not taken yet.
func (c *recordConn) buffered() int { return c.r.Buffered() }

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

// copyRecords is the relay's copy loop when TLS is on either side. Reads
// from a TLS source are gathered while complete records wait in its buffer,
// and writes to a TLS destination leave in one system call per buffer.
func copyRecords(w io.Writer, dst, src net.Conn, buf []byte) (int64, error) {
	srcRC, dstRC := recordConnOf(src), recordConnOf(dst)
	var written int64
	for {
		n, rerr := src.Read(buf)
		for srcRC != nil && rerr == nil && n < len(buf)-maxRecord && srcRC.buffered() > 0 {
			var m int
			m, rerr = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			if dstRC != nil {
				dstRC.batching.Store(true)
			}
			_, werr := w.Write(buf[:n])
			if dstRC != nil {
				dstRC.batching.Store(false)
				if ferr := dstRC.flush(); werr == nil {
					werr = ferr
				}
			}
			written += int64(n)
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

package tunnel

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// yamux's session writes each data frame as two Writes, its 12-byte header
// and then its body; crypto/tls then writes each 16 KiB record of a Write
// with a system call of its own. frameWriter holds the header of a data
// frame that announces a body and writes it with the body: batchConn
// gathers the TLS records of both into one system call. Every other
// header (window updates, pings, go-away, data frames without a body: FIN,
// SYN) is written at once, so nothing waits for a Write that will not come.
// yamux's send loop is frameWriter's writer; reset adds a frame yamux
// has no call for.
type frameWriter struct {
	io.ReadWriteCloser // the TLS connection
	batch              *batchConn
	mu                 sync.Mutex // Write and reset
	buf                []byte
	pending            bool
	queued             []byte // resets held until the pending frame is written
	lingering          atomic.Int64
}

// heardSince reports whether bytes came from the tunnel's other end at t
// or later (true when that is not known).
func (w *frameWriter) heardSince(t time.Time) bool {
	g, ok := w.ReadWriteCloser.(*pingGuard)
	return !ok || g.lastRead.Load() >= t.UnixNano()
}

// lingers counts a stream this end reset (reset) for closeTimeout: the
// other end forgot it at once, but here it stays until yamux's close
// timeout ends it; it does not count toward the streams the other end
// keeps open.
func (w *frameWriter) lingers() {
	w.lingering.Add(1)
	time.AfterFunc(closeTimeout, func() { w.lingering.Add(-1) })
}

const (
	headerSize       = 12 // yamux: version, type, flags (2), stream (4), length (4)
	typeData         = 0
	typeWindowUpdate = 1
	flagRST          = 8
)

func (w *frameWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending {
		w.pending = false
		err := w.writeFrame(b)
		if err == nil && len(w.queued) > 0 {
			_, err = w.ReadWriteCloser.Write(w.queued)
			w.queued = w.queued[:0]
		}
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if len(b) == headerSize && b[1] == typeData && binary.BigEndian.Uint32(b[8:12]) > 0 {
		w.buf = append(w.buf[:0], b...)
		w.pending = true
		return len(b), nil
	}
	return w.ReadWriteCloser.Write(b)
}

// reset sends a yamux RST for stream id, which yamux (v0.1.2) cannot do: the
// other end's reads of the stream then fail with a reset instead of seeing
// its end, as a TCP reset does. A frame half written (its header held) is
// finished first.
func (w *frameWriter) reset(id uint32) error {
	var h [headerSize]byte
	h[1] = typeWindowUpdate
	binary.BigEndian.PutUint16(h[2:4], flagRST)
	binary.BigEndian.PutUint32(h[4:8], id)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending {
		w.queued = append(w.queued, h[:]...)
		return nil
	}
	_, err := w.ReadWriteCloser.Write(h[:])
	return err
}

// writeFrame writes the held header and body. In a batch they are two TLS
// Writes (a 12-byte record, then the body's) that leave in one system
// call: the body is not copied behind the header. Without a batch, one
// Write of both.
func (w *frameWriter) writeFrame(body []byte) error {
	if w.batch == nil {
		w.buf = append(w.buf[:headerSize], body...)
		_, err := w.ReadWriteCloser.Write(w.buf)
		return err
	}
	w.batch.begin()
	_, err := w.ReadWriteCloser.Write(w.buf[:headerSize])
	if err == nil {
		_, err = w.ReadWriteCloser.Write(body)
	}
	if ferr := w.batch.end(); err == nil {
		err = ferr
	}
	return err
}

// batchConn sits under the tunnel's TLS connection: between begin and end
// it gathers what TLS writes (the records of one frame) and sends it in one
// Write at end. Outside a batch, writes (alerts, key updates, control
// frames) go through at once, in order with the batches.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	out      []byte
}

func (c *batchConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		c.out = append(c.out, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// end sends what was gathered since begin.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

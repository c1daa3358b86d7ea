package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
)

type relayResult struct {
	n        int64
	err      error // the copy failed: the data is incomplete
	closeErr error // the copy succeeded but ending it did not; dst is closed already
	// peerClosed: the destination closed its end before the source was
	// done (a client that had the bytes it expected, a backend that gave
	// up). The copy stopped there; the backend's final reply tells how the
	// transfer went.
	peerClosed bool
	// gone is closed once nothing reads dst any more (see relay).
	gone <-chan struct{}
}

// cut reports whether the data stopped flowing before the source's end.
func (r relayResult) cut() bool { return r.err != nil || r.peerClosed }

// handedOff reports whether dst is still open and now belongs to
// drainAndClose.
func (r relayResult) handedOff() bool { return r.err == nil && r.closeErr == nil && !r.peerClosed }

// relayBufSize is the copy buffer: large reads become few, full TLS records,
// gathered into one write (recordConn). 512 KiB: a 1 GiB curl download
// through FTPS->plain cost 0.76-0.84 GB per gateway CPU-second in six runs,
// against 0.67-0.74 in four with 256 KiB; 1 MiB was not better beyond the
// noise (0.72-0.91) and doubles a running transfer's memory.
const relayBufSize = 512 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// relay copies src to dst until EOF, then ends what it sent on dst (TLS
// close_notify, TCP FIN) so that the reader sees the end of the data before
// the final reply is sent; dst is then drained and closed by drainAndClose.
// Plain TCP on both sides goes through io.Copy, which lets Linux splice.
//
// All the while dst is read too (FTP peers send nothing on a data
// connection they receive on): a peer that closes its end stops the copy at
// once instead of leaving it waiting for a source that may never end (vsftpd
// over TLS keeps a 0-byte download open until the client closes, and curl
// closes at once when it expects 0 bytes). Reading also takes in what the
// peer sends after its handshake (TLS 1.3 tickets), so that closing later
// does not reset the connection.
//
// With a throttle, every write waits for its bandwidth share (streaming:
// nothing is buffered beyond one copy buffer).
func relay(ctx context.Context, dst, src net.Conn, th *policy.Throttle) relayResult {
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, dst)
		close(gone)
	}()
	copied := make(chan struct{})
	var peerClosed atomic.Bool
	_, srcTLS := src.(*tls.Conn)
	go func() {
		select {
		case <-gone:
			peerClosed.Store(true)
			if srcTLS {
				// End the source politely: ProFTPD (mod_tls) drops the whole
				// session when its TLS data connection dies under it. The
				// close_notify also ends what vsftpd holds open; what the
				// source still sends is read and dropped, for a bounded time.
				_ = closeWrite(src)
				_ = src.SetReadDeadline(time.Now().Add(lingerTimeout))
				return
			}
			_ = src.Close() // stops the copy
		case <-copied:
		}
	}()

	var n int64
	var err error
	_, dstTLS := dst.(*tls.Conn)
	if !srcTLS && !dstTLS && th == nil {
		n, err = io.Copy(dst, src)
	} else {
		bp := relayBufs.Get().(*[]byte)
		w := policy.ThrottledWriter(ctx, struct{ io.Writer }{dst}, th)
		n, err = copyRecords(w, dst, src, *bp)
		relayBufs.Put(bp)
	}
	close(copied)

	r := relayResult{n: n, gone: gone}
	switch {
	case peerClosed.Load():
		r.peerClosed = true
		_ = dst.Close()
		if srcTLS {
			_, _ = io.Copy(io.Discard, src) // until its close_notify, or the deadline set above
		}
	case err != nil:
		r.err = err
		_ = dst.Close()
	default:
		// Every byte was written. A peer that already closed (curl knows the
		// size from the 150 and closes at once: ENOTCONN) has had them all.
		if cerr := closeWrite(dst); cerr != nil {
			r.closeErr = cerr
			_ = dst.Close()
		}
	}
	_ = src.Close()
	if !r.handedOff() {
		<-gone // dst is closed: the reader is done
	}
	return r
}

// closeWrite ends the data sent on c: a TLS close_notify, then a TCP FIN.
func closeWrite(c net.Conn) error {
	type closeWriter interface{ CloseWrite() error }
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		c = tc.NetConn()
	}
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// lingerTimeout bounds how long drainAndClose waits for the peer to close.
const lingerTimeout = 5 * time.Second

// drainAndClose waits until the peer has closed its end too (relay's reader
// of c sees EOF and closes gone), or lingerTimeout, then closes c. Closing a
// socket with unread input (a TLS 1.3 session ticket the peer sent, say)
// makes Linux reset the connection, and the peer may then lose the end of
// the data still in flight: vsftpd truncates uploads so.
func drainAndClose(c net.Conn, gone <-chan struct{}) {
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
	}
	_ = c.Close()
	<-gone
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

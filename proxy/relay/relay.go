package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
)

// Opts are a relay's settings.
// Opts are a relay's settings.
type Opts struct {
	Idle time.Duration // timeouts.data_idle; 0: none
	// FromBackend: src is the backend's data connection (a download). A
	// TLS source that ends without close_notify before its first byte
	// ends the copy cleanly then (see copyRecords).
	FromBackend bool
	// Filter sees the bytes as they pass, the bandwidth throttle first
	// (nil: none; plain-to-plain copies then keep splice).
	Filter filter.Chain
}

// Result is how a relay ended.
type Result struct {
	N        int64
	Err      error // the copy failed: the data is incomplete
	CloseErr error // the copy succeeded but ending it did not; dst is closed already
	// PeerClosed: the destination closed its end before the source was
	// done (a client that had the bytes it expected, a backend that gave
	// up). The copy stopped there; the backend's final reply tells how the
	// transfer went.
	PeerClosed bool
	// Gone is closed once nothing reads dst any more (see Run).
	Gone <-chan struct{}
}

// Cut reports whether the data stopped flowing before the source's end.
func (r Result) Cut() bool { return r.Err != nil || r.PeerClosed }

// GatewayCut reports whether the relay itself ended the transfer: no data
// for data_idle, or a TLS source that ended without close_notify.
func (r Result) GatewayCut() bool {
	return errors.Is(r.Err, ErrDataIdle) || errors.Is(r.Err, ErrTruncated)
}

// HandedOff reports whether dst is still open and now belongs to
// DrainAndClose.
func (r Result) HandedOff() bool { return r.Err == nil && r.CloseErr == nil && !r.PeerClosed }

// relayBufSize is the copy buffer: large reads become few, full TLS records,
// gathered into one write (recordConn). 512 KiB: a 1 GiB curl download
// through FTPS->plain cost 0.76-0.84 GB per gateway CPU-second in six runs,
// against 0.67-0.74 in four with 256 KiB; 1 MiB was not better beyond the
// noise (0.72-0.91) and doubles a running transfer's memory.
const relayBufSize = 512 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// Run copies src to dst until EOF, then ends what it sent on dst (TLS
// close_notify, TCP FIN) so that the reader sees the end of the data before
// the final reply is sent; dst is then drained and closed by DrainAndClose.
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
// o.Filter sees every byte before it is written: the bandwidth throttle
// (filter.Throttle) waits there for each buffer's share (streaming: nothing
// is buffered beyond one copy buffer), the SHA-256 filter hashes.
//
// o.Idle (timeouts.data_idle; 0: none) cuts a relay in which no byte moved
// for that long (see idleWatch). A copy that fails (a source cut short, an
// idle cut, an I/O error) resets dst: its peer must see an error, never the
// clean end of a truncated stream.
func Run(dst, src net.Conn, o Opts) Result {
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
				_ = CloseWrite(src)
				_ = src.SetReadDeadline(time.Now().Add(LingerTimeout))
				return
			}
			_ = src.Close() // stops the copy
		case <-copied:
		}
	}()

	var n int64
	var err error
	iw := newIdleWatch(o.Idle, dst, src)
	_, dstTLS := dst.(*tls.Conn)
	switch {
	case !srcTLS && !dstTLS && o.Filter == nil && iw == nil:
		n, err = io.Copy(dst, src)
	case !srcTLS && !dstTLS && o.Filter == nil:
		n, err = copyPlain(dst, src, iw)
	default:
		n, err = copyRecords(dst, src, iw, o.FromBackend, o.Filter)
	}
	close(copied)

	r := Result{N: n, Gone: gone}
	switch {
	case peerClosed.Load():
		r.PeerClosed = true
		_ = dst.Close()
		if srcTLS {
			// The copy's idle deadlines may have replaced the one set above.
			drainSource(src)
		}
	case err != nil:
		r.Err = err
		ResetConn(dst)
		var se sinkError
		if srcTLS && o.FromBackend && errors.As(err, &se) {
			// The destination (or a filter) stopped the download, not the
			// backend: a client that closed its end while the write was
			// under way, before the reader above saw it go. The backend's
			// side is sound and is ended politely, as above; closed under
			// it, it would take ProFTPD's whole session along.
			_ = CloseWrite(src)
			drainSource(src)
		}
	default:
		// Every byte was written. A peer that already closed (curl knows the
		// size from the 150 and closes at once: ENOTCONN) has had them all.
		if cerr := CloseWrite(dst); cerr != nil {
			r.CloseErr = cerr
			_ = dst.Close()
		}
	}
	_ = src.Close()
	if !r.HandedOff() {
		<-gone // dst is closed: the reader is done
	}
	return r
}

// drainSource reads and drops what a source whose copy stopped still
// sends, until its close_notify or EOF, or LingerTimeout.
func drainSource(src net.Conn) {
	_ = src.SetReadDeadline(time.Now().Add(LingerTimeout))
	_, _ = io.Copy(io.Discard, src)
}

// ResetConn closes the socket under c (under its TLS, if any: no
// close_notify) with a TCP reset: the peer reads an error, not the end of
// the data, and what c still had to send is dropped. A connection with no
// socket under it (a tunnel's stream) is reset by its own Reset.
func ResetConn(c net.Conn) {
	if tc := tcpConnOf(c); tc != nil {
		_ = tc.SetLinger(0)
	}
	for u := c; ; {
		if r, ok := u.(interface{ Reset() error }); ok {
			_ = r.Reset()
			break
		}
		w, ok := u.(Wrapper)
		if !ok {
			break
		}
		u = w.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	_ = c.Close()
}

// Wrapper is a connection over another one (TLS, recordConn, the proxy's
// PROXY header reader): NetConn returns the one under it.
type Wrapper interface {
	NetConn() net.Conn
}

// tcpConnOf is the TCP connection under c's wrappers, or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case Wrapper:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// CloseWrite ends the data sent on c: a TLS close_notify, then a TCP FIN.
func CloseWrite(c net.Conn) error {
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

// LingerTimeout bounds how long DrainAndClose waits for the peer to close.
const LingerTimeout = 5 * time.Second

// DrainAndClose waits until the peer has closed its end too (relay's reader
// of c sees EOF and closes gone), or LingerTimeout, then closes c. Closing a
// socket with unread input (a TLS 1.3 session ticket the peer sent, say)
// makes Linux reset the connection, and the peer may then lose the end of
// the data still in flight: vsftpd truncates uploads so.
func DrainAndClose(c net.Conn, gone <-chan struct{}) {
	t := time.NewTimer(LingerTimeout)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
	}
	_ = c.Close()
	<-gone
}

// sinkError is how copyRecords returns a failure of the destination or of
// a filter: the copy stopped, but not because of its source.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }
func (e sinkError) Unwrap() error { return e.err }

// copyRecords is the relay's copy loop when TLS is on either side or a
// throttle paces it. Reads from a TLS source are gathered while complete
// records wait in its buffer, and writes to a TLS destination leave in one
// system call per buffer.
//
// A TLS source that ends without close_notify is cut short: ErrTruncated.
// crypto/tls reports such an end as io.EOF when it falls on a record
// boundary, so the recordConn under it tells whether the socket ended
// first. (A plain source cannot tell: in FTP's stream mode the end of the
// connection is the end of the file, and a cut looks the same.) One
// exception, fromBackend: a backend whose TLS data connection ends with a
// FIN before a single byte of data sent nothing before it either (TCP keeps
// the order), and pyftpdlib ends empty listings so; its final reply says
// how the transfer went. A client's empty upload gets no such benefit of
// the doubt: a client killed right after its handshake looks the same.
//
// f, when set, sees every byte read, in order, before it is written.
//
// The copy buffer comes from relayBufs. With an idle watch, a copy blocked
// for its park time hands the buffers it does not need back until bytes
// move again: a stalled transfer keeps only what is in flight.
func copyRecords(dst, src net.Conn, iw *idleWatch, fromBackend bool, f filter.Chain) (int64, error) {
	srcRC, dstRC := recordConnOf(src), recordConnOf(dst)
	_, dstTLS := dst.(*tls.Conn)
	// A write timeout on a tls.Conn is final; under it, on recordConn's
	// socket, the write goes on where it stopped.
	retryWrites := dstRC != nil || !dstTLS
	var out io.Writer = dst
	if iw != nil {
		out = stepWriter{dst, iw}
	}
	w := out
	var bp *[]byte
	defer func() {
		if bp != nil {
			relayBufs.Put(bp)
		}
	}()
	// park hands the idle buffers back; keep: buf holds data still to send.
	park := func(keep bool) {
		if bp != nil && !keep {
			relayBufs.Put(bp)
			bp = nil
		}
		srcRC.releaseRead()
	}
	var written int64
	moved := false
	for {
		if bp == nil {
			bp = relayBufs.Get().(*[]byte)
		}
		buf := *bp
		iw.step(moved)
		moved = false
		n, rerr := src.Read(buf)
		for srcRC != nil && rerr == nil && n < len(buf)-maxRecord && srcRC.buffered() > 0 {
			var m int
			m, rerr = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			// The filters see the bytes before they leave: a write that
			// fails ends the transfer as incomplete anyway.
			if f != nil {
				if ferr := f.Write(buf[:n]); ferr != nil {
					return written, sinkError{ferr}
				}
			}
			var werr error
			if dstRC != nil {
				dstRC.batching.Store(true)
				_, werr = w.Write(buf[:n])
				dstRC.batching.Store(false)
				if werr == nil {
					iw.step(true) // the throttle's waits are not idleness
				}
				for werr == nil {
					var sent int
					if sent, werr = dstRC.flush(); werr == nil {
						break
					}
					var parked bool
					if parked, werr = iw.after(werr, sent > 0); parked {
						park(false) // buf is in dstRC's batch now, encrypted
						dstRC.releaseBatch()
					}
				}
			} else {
				for off := 0; ; {
					var m int
					m, werr = w.Write(buf[off:n])
					off += m
					if werr == nil || !retryWrites {
						break
					}
					var parked bool
					if parked, werr = iw.after(werr, m > 0); parked {
						park(true)
					}
					if werr != nil {
						break
					}
				}
			}
			written += int64(n)
			if werr != nil {
				return written, sinkError{werr}
			}
			moved = true
		}
		switch {
		case rerr == nil:
		case rerr == io.EOF:
			if srcRC != nil && srcRC.ended() && (written > 0 || !fromBackend) {
				return written, ErrTruncated
			}
			return written, nil
		default:
			parked, err := iw.after(rerr, false)
			if err != nil {
				return written, err
			}
			if parked {
				park(false)
				dstRC.releaseBatch()
				if err := waitReadable(src); err != nil {
					if _, err := iw.after(err, false); err != nil {
						return written, err
					}
				}
			}
		}
	}
}

// copyPlain is io.Copy (splice on Linux) between two plain connections,
// cut by the idle watch. The copy runs in slices: the source's read
// deadline ends one every quarter of idle, and the progress of a slice is
// known when it returns. A read deadline stops the splice with its pipe
// empty, so the copy goes on; a write deadline may stop it with data in
// the pipe, which is then lost, so it ends the copy: a destination that has
// not taken one pipe's worth (up to 1 MiB) in idle counts as stalled here.
func copyPlain(dst, src net.Conn, iw *idleWatch) (int64, error) {
	var written int64
	for {
		now := time.Now()
		writeBy := now.Add(iw.idle)
		_ = src.SetReadDeadline(earlier(now.Add(iw.idle/4), iw.last.Add(iw.idle)))
		_ = dst.SetWriteDeadline(writeBy)
		n, err := io.Copy(dst, src)
		written += n
		now = time.Now()
		if n > 0 {
			iw.last = now
		}
		switch {
		case err == nil:
			return written, nil
		case !isTimeout(err):
			return written, err
		case !now.Before(writeBy) || now.Sub(iw.last) >= iw.idle:
			return written, iw.idleErr()
		}
	}
}

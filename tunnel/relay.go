package tunnel

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// requestTimeout bounds the wait for a stream's request line.
const requestTimeout = 10 * time.Second

// errHalfCloseTimeout: the other end of a stream this end had half-closed
// did not end its side within closeTimeout; yamux ended the stream.
var errHalfCloseTimeout = errors.New("tunnel: the stream's other end did not end its side within the close timeout after a half-close")

// handle serves one stream: request, allow list, local dial, reply, relay.
// Every stream is logged once: destination, verdict, bytes, duration.
func (a *Agent) handle(st *yamux.Stream, fw *frameWriter) {
	defer a.wg.Done()
	defer st.Close()
	a.open.Add(1)
	defer a.open.Add(-1)
	a.metrics.streamOpen(1)
	defer a.metrics.streamOpen(-1)
	start := time.Now()
	log := a.log.With().Uint32("stream", st.StreamID()).Logger()
	// A refusal is logged and counted before the gateway hears it: what
	// the gateway reports, the agent's log already holds.
	refuse := func(code, text string, ev *zerolog.Event) {
		ev.Str("verdict", "refused").Str("code", code).Dur("duration", time.Since(start)).Msg("stream refused: " + text)
		a.metrics.verdict(verdictOf(code))
		_ = st.SetWriteDeadline(time.Now().Add(requestTimeout))
		_ = WriteLine(st, Reply{Code: code, Text: text}.String())
	}
	cfg := a.conf() // max_streams, dial_timeout and source_address in force now
	if n := a.relaying.Add(1); n > int64(cfg.maxStreams()) {
		a.relaying.Add(-1)
		refuse(CodeBusy, "too many streams", log.Warn().Int("max_streams", cfg.maxStreams()))
		return
	}
	defer a.relaying.Add(-1)
	_ = st.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := ReadLine(st)
	if err != nil {
		refuse(CodeBadRequest, "no request line", log.Warn().Err(err))
		return
	}
	req, err := ParseRequest(line)
	if err != nil {
		refuse(CodeBadRequest, "malformed request", log.Warn().Err(err))
		return
	}
	log = log.With().Str("destination", req.Address).Logger()
	// Shutting down: only the data connections of the sessions whose
	// control connection it carries (FROM is one of its connections'
	// addresses); the server would refuse them from another agent's host.
	if a.draining.Load() && !(req.From.IsValid() && a.locals.has(req.From)) {
		refuse(CodeDraining, "the agent is shutting down", log.Info())
		return
	}
	// The list in force now: a reload judges the streams that follow it.
	rule, ok := a.Allow().Match(req.Address)
	if !ok {
		refuse(CodeRefused, "destination not in the agent's allow list", log.Warn())
		return
	}
	log = log.With().Str("rule", rule.String()).Logger()
	d := net.Dialer{Timeout: cfg.dialTimeout()}
	var source *net.TCPAddr // the configured source_address, if any
	if cfg.Source.IsValid() {
		source = &net.TCPAddr{IP: cfg.Source.AsSlice()}
		d.LocalAddr = source
	}
	dialStart := time.Now()
	if req.From.IsValid() && a.locals.has(req.From) {
		d.LocalAddr = &net.TCPAddr{IP: req.From.AsSlice()}
	} else if req.From.IsValid() {
		log.Debug().Str("from", req.From.String()).Msg("FROM ignored: no open connection of the agent comes from it")
	}
	c, err := d.Dial("tcp", req.Address)
	if err != nil && d.LocalAddr != nil && d.LocalAddr != source {
		// FROM is a hint (the control connection's local address);
		// without it the connection still comes from this host.
		d.LocalAddr = source
		c, err = d.Dial("tcp", req.Address)
	}
	a.metrics.ruleDial(rule, err)
	if err != nil {
		refuse(CodeDial, "cannot connect to the destination", log.Warn().Err(err))
		return
	}
	a.metrics.dialed(time.Since(dialStart))
	conn := c.(*net.TCPConn)
	defer conn.Close()
	remote, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	a.locals.add(local.Addr())
	defer a.locals.remove(local.Addr())
	_ = st.SetWriteDeadline(time.Now().Add(requestTimeout))
	a.metrics.verdict(VerdictAllowed)
	if err := WriteLine(st, Reply{Remote: remote, Local: local}.String()); err != nil {
		// The gateway may have read the reply all the same (yamux reports
		// the tunnel's end to a write it had sent): it may already count
		// on the stream. A reset, not a FIN, ends the destination's side:
		// a plain-FTP server stores an empty upload cut there as complete.
		log.Warn().Err(err).Str("verdict", "allowed").Msg("stream lost before its reply")
		_ = conn.SetLinger(0)
		return
	}
	_ = st.SetDeadline(time.Time{})
	up, down, err := relay(st, conn, fw)
	a.metrics.relayed(up, down, time.Since(start))
	a.metrics.ruleRelayed(rule, up, down)
	ev := log.Info()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Str("verdict", "allowed").Str("local", local.String()).Int64("bytes_to_destination", up).
		Int64("bytes_from_destination", down).Dur("duration", time.Since(start)).Msg("stream ended")
}

// verdictOf is the streams_total verdict of a refusal's code.
func verdictOf(code string) string {
	switch code {
	case CodeRefused:
		return VerdictRefusedAllow
	case CodeBusy, CodeDraining:
		return VerdictRefusedBusy
	case CodeDial:
		return VerdictDialFailed
	}
	return VerdictBadRequest
}

// relay copies both ways, half-closing each side at the other's EOF, and
// returns the bytes each way once both are done. A failure on one side
// ends the other.
func relay(st *yamux.Stream, conn *net.TCPConn, fw *frameWriter) (up, down int64, err error) {
	var wg sync.WaitGroup
	var upErr error
	var halfClosed atomic.Int64 // when fromDestination half-closed st (UnixNano)
	wg.Add(1)
	go func() {
		defer wg.Done()
		up, upErr = toDestination(conn, st, &halfClosed)
	}()
	down, err = fromDestination(st, conn, &halfClosed, fw)
	if err != nil {
		_ = conn.Close()
		_ = st.SetReadDeadline(time.Now())
	}
	wg.Wait()
	return up, down, errors.Join(err, upErr)
}

// toDestination copies the gateway's bytes to the destination; at their
// end it half-closes the destination connection. When the stream was cut
// (reset, or its tunnel ended: yamux then reads as at EOF) the destination
// is reset, not half-closed: a plain-FTP server would take the end of a cut
// upload for the end of the file. So is it when the stream was half-closed
// closeTimeout ago or more: yamux then ends it, and it reads as at EOF too.
func toDestination(conn *net.TCPConn, st *yamux.Stream, halfClosed *atomic.Int64) (int64, error) {
	n, err := copyBuf(conn, st)
	if err == nil && st.Session().IsClosed() { // the stream's end was its tunnel's
		err = ErrTunnelLost
	}
	if t := halfClosed.Load(); err == nil && t != 0 && time.Since(time.Unix(0, t)) >= closeTimeout {
		err = errHalfCloseTimeout
	}
	if err != nil {
		_ = conn.SetLinger(0) // close with RST
		_ = conn.Close()
		return n, err
	}
	return n, conn.CloseWrite()
}

// fromDestination copies the destination's bytes to the gateway; at their
// end it half-closes the stream (yamux FIN). When the destination's
// connection failed (it reset it) the stream is reset first: the gateway
// must not read the end of a cut download as its end.
func fromDestination(st *yamux.Stream, conn *net.TCPConn, halfClosed *atomic.Int64, fw *frameWriter) (int64, error) {
	n, err := copyBuf(st, conn)
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "read" && !errors.Is(err, net.ErrClosed) { // not the stream's failure
		_ = fw.reset(st.StreamID())
		fw.lingers()
	}
	halfClosed.Store(time.Now().UnixNano()) // before Close starts yamux's timer
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// A stream's copy starts with a small buffer (a control connection stays
// small) and takes a large one once a read fills the small one (a
// transfer): larger reads make larger yamux frames, fewer of them. 1 MiB
// (the stream window) against 256 KiB: a download through the agent took
// about 0.15 CPU-s/GiB less in the agent and in the gateway each, and ran
// about 10 % faster (docs/performance.md); it costs 1 MiB per direction of
// each transfer in flight. Both come from pools: every session opens
// streams, and two fresh 16 KiB buffers per stream were most of what a
// stream allocated.
const (
	relaySmall = 16 << 10
	relayLarge = 1 << 20
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, relaySmall); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, relayLarge); return &b }}
)

// copyBuf copies src to dst until EOF (nil) or an error, through its own
// buffers: io.Copy would use the TCP connection's WriteTo/ReadFrom, with
// 32 KiB.
func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	small := smallBufs.Get().(*[]byte)
	buf := *small
	var big *[]byte
	defer func() {
		smallBufs.Put(small)
		if big != nil {
			largeBufs.Put(big)
		}
	}()
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m < n {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		if n == len(buf) && big == nil {
			big = largeBufs.Get().(*[]byte)
			buf = *big
		}
	}
}

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// backend is a session's control connection to the legacy server.
type backend struct {
	raw     net.Conn
	conn    net.Conn // raw, or TLS over it
	r       *ftp.Reader
	tlsConf *tls.Config // per-session config (own session cache); nil when plain
	host    netip.Addr  // the backend's address: data connections go there
	local   netip.Addr  // our side of the control connection: data connections come from there
	replies *puller[ftp.Reply]
	noEPSV  bool // the backend refused EPSV once: use PASV
}

// dialBackend connects to the backend, consumes its banner and secures the
// connection as configured (RFC 4217 AUTH TLS, PBSZ 0, PROT P). Everything
// is bounded by the connect timeout.
func (s *session) dialBackend() (*backend, error) {
	cfg := s.srv.cfg
	deadline := time.Now().Add(cfg.Timeouts.connect())
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()

	raw, err := s.srv.dialer.DialBackend(ctx, cfg.Backend.Address, netip.Addr{})
	if err != nil {
		return nil, s.errorf("%w: dial %s: %w", errBackendDown, cfg.Backend.Address, err)
	}
	be := &backend{raw: raw, conn: raw, replies: newPuller[ftp.Reply](&s.wg)}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		be.host = ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(raw.LocalAddr().String()); err == nil {
		be.local = ap.Addr().Unmap()
	}
	_ = raw.SetDeadline(deadline)
	if v := cfg.Backend.ProxyProtocol; v != 0 {
		if err := writeProxyHeader(raw, v, s.raw.RemoteAddr(), s.raw.LocalAddr()); err != nil {
			_ = raw.Close()
			return nil, s.errorf("%w: PROXY header: %w", errBackendDown, err)
		}
	}
	if err := s.secureBackend(ctx, be); err != nil {
		_ = raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	s.log.Debug().Str(fieldRemote, raw.RemoteAddr().String()).Str("tls", cfg.Backend.TLS.String()).Msg("backend connected")
	return be, nil
}

func (s *session) secureBackend(ctx context.Context, be *backend) error {
	mode := s.srv.cfg.Backend.TLS
	if mode != TLSNone {
		be.tlsConf = policy.SessionConfig(s.srv.backendTLS)
	}
	if mode == TLSImplicit {
		if err := be.startTLS(ctx); err != nil {
			return s.errorf("%w: %w", errBackendDown, err)
		}
	}
	be.r = ftp.NewReader(be.conn)
	banner, err := be.readFinal()
	if err != nil {
		return s.errorf("%w: banner: %w", errBackendDown, err)
	}
	if banner.Code != ftp.StatusReady {
		return s.errorf("%w: banner %d %q", errBackendDown, banner.Code, banner.Text())
	}
	if mode == TLSExplicit {
		rep, err := be.exchange(ftp.Command{Verb: "AUTH", Arg: "TLS"})
		if err != nil {
			return s.errorf("%w: AUTH TLS: %w", errBackendDown, err)
		}
		if rep.Code != ftp.StatusAuthOK {
			return s.errorf("%w: backend refused AUTH TLS: %d %s", errBackendDown, rep.Code, rep.Text())
		}
		if err := be.startTLS(ctx); err != nil {
			return s.errorf("%w: %w", errBackendDown, err)
		}
		be.r = ftp.NewReader(be.conn)
	}
	if mode != TLSNone {
		for _, c := range []ftp.Command{{Verb: "PBSZ", Arg: "0"}, {Verb: "PROT", Arg: "P"}} {
			rep, err := be.exchange(c)
			if err != nil {
				return s.errorf("%w: %s: %w", errBackendDown, c.Verb, err)
			}
			if !rep.Positive() {
				return s.errorf("%w: backend refused %s: %d %s", errBackendDown, c, rep.Code, rep.Text())
			}
		}
	}
	return nil
}

func (be *backend) startTLS(ctx context.Context) error {
	tc := tls.Client(be.raw, be.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("backend TLS handshake: %w", err)
	}
	be.conn = tc
	return nil
}

// readFinal reads replies synchronously until a non-preliminary one. Only
// for use before the reader goroutine runs.
func (be *backend) readFinal() (ftp.Reply, error) {
	for {
		rep, err := be.r.ReadReply()
		if err != nil || !rep.Preliminary() {
			return rep, err
		}
	}
}

// exchange writes cmd and reads its final reply synchronously. Only for use
// before the reader goroutine runs.
func (be *backend) exchange(cmd ftp.Command) (ftp.Reply, error) {
	if err := ftp.WriteCommand(be.conn, cmd); err != nil {
		return ftp.Reply{}, err
	}
	return be.readFinal()
}

func (be *backend) readReplyFunc() func() (ftp.Reply, error) {
	r := be.r
	return r.ReadReply
}

func (be *backend) write(cmd ftp.Command) error {
	_ = be.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return ftp.WriteCommand(be.conn, cmd)
}

// quit says goodbye without waiting for the answer.
func (be *backend) quit() {
	_ = be.write(ftp.Command{Verb: "QUIT"})
}

func (be *backend) close() {
	_ = be.conn.Close()
	_ = be.raw.Close()
}

// errReplyTimeout: the backend said nothing in time; the session ends.
var errReplyTimeout = errors.New("no reply")

// readReply waits for the backend's next reply, bounded by timeout and the
// session's context.
func (s *session) readReply(timeout time.Duration) (ftp.Reply, error) {
	if !s.be.replies.busy {
		// The usual case: nothing else to wait for, read here.
		rep, err := readNow(s.ctx, s.be.conn, timeout, s.be.r.ReadReply)
		switch {
		case err == nil:
			return rep, nil
		case errors.Is(err, os.ErrDeadlineExceeded) && s.ctx.Err() != nil:
			return ftp.Reply{}, s.errorf("%w", s.stopped())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The session ends on it (errBackendLost).
			return ftp.Reply{}, s.errorf("%w: %w within %s", errBackendLost, errReplyTimeout, timeout)
		}
		return ftp.Reply{}, s.errorf("%w: %w", errBackendLost, err)
	}
	// A read started during a transfer is still out: take its reply.
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-s.be.replies.res:
		s.be.replies.got()
		if res.err != nil {
			return ftp.Reply{}, s.errorf("%w: %w", errBackendLost, res.err)
		}
		return res.v, nil
	case <-t.C:
		return ftp.Reply{}, s.errorf("%w: %w within %s", errBackendLost, errReplyTimeout, timeout)
	case <-s.ctx.Done():
		return ftp.Reply{}, s.errorf("%w", s.stopped())
	}
}

// roundTrip sends cmd to the backend and returns its final reply;
// preliminary replies in between are passed to the client.
func (s *session) roundTrip(cmd ftp.Command) (ftp.Reply, error) {
	if err := s.be.write(cmd); err != nil {
		return ftp.Reply{}, s.errorf("%w: write %s: %w", errBackendLost, cmd.LogVerb(), err)
	}
	for {
		rep, err := s.readReply(s.srv.cfg.Timeouts.idle())
		if err != nil {
			return rep, err
		}
		if !rep.Preliminary() {
			return rep, nil
		}
		if err := s.send(rep); err != nil {
			return rep, err
		}
	}
}

// relay passes a command the gateway does not handle to the backend and its
// reply back.
func (s *session) relay(cmd ftp.Command) error {
	if s.be == nil {
		return s.reply(ftp.StatusNotLoggedIn, "Please login with USER and PASS.")
	}
	rep, err := s.roundTrip(cmd)
	if err != nil {
		return s.backendFailed(err)
	}
	return s.send(rep)
}

// backendFailed tells the client that the backend is gone and ends the session.
func (s *session) backendFailed(err error) error {
	if errors.Is(err, errBanned) && s.banned() {
		return s.leaveBanned()
	}
	if errors.Is(err, errShuttingDown) {
		_ = s.reply(ftp.StatusNotAvailable, "Service shutting down, closing control connection.")
		return err
	}
	s.log.Error().Err(err).Msg("backend failed")
	_ = s.reply(ftp.StatusNotAvailable, "Service not available: lost the connection to the server behind the gateway.")
	return err
}

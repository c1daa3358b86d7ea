package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/proxy/relay"
)

// Accepting (passive) or dialling (active) the client's data connection,
// checking where it comes from, and securing both data connections.

// maxDataHandshakes caps the TLS handshakes one leased port runs at once:
// connections from the client's address beyond it are closed unanswered.
const maxDataHandshakes = 4

// acceptData waits on the leased port for the client's data connection,
// from the control connection's address only, until the accept deadline.
// With PROT P the TLS handshake (server side, resuming the control session
// when the client offers it) starts at once: clients differ in whether they
// start it before or after the transfer command.
//
// A connection that is refused (wrong address, bad PROXY header, failed TLS
// handshake, no resumption of this session) is logged and closed, and the
// port stays open for the rightful one until the deadline: another process
// on the client's address that connects first cannot fail the transfer.
// Handshakes run concurrently, at most maxDataHandshakes at once, each under
// its own deadline (timeouts.handshake), so that a slow one holds nobody up.
// The first connection that passes is the transfer's.
func (s *session) acceptData(d *dataSetup) {
	ln := d.lease.Listener()
	deadline := time.Now().Add(s.env.cfg.Timeouts.dataAccept())
	_ = ln.SetDeadline(deadline)
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxDataHandshakes)
		won   atomic.Bool
	)
	var acceptErr error
	for {
		tcp, err := ln.AcceptTCP()
		if err != nil {
			acceptErr = err // deadline passed, the transfer is over or the setup was dropped
			break
		}
		conn, ok := s.dataFromClient(d, tcp)
		if !ok {
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.emit(events.DataRefused{Session: s.ev(), Reason: events.DataRefusedBusy, Remote: conn.RemoteAddr().String(), Port: d.lease.Port()})
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r := s.secureClientData(d, conn, time.Now().Add(s.env.cfg.Timeouts.handshake()))
			if r.err != nil {
				reason := events.DataRefusedTLSHandshake
				if errors.Is(r.err, errNotResumed) {
					reason = events.DataRefusedTLSResumption
				}
				s.emit(events.DataRefused{Session: s.ev(), Reason: reason, Err: r.err, Remote: conn.RemoteAddr().String(), Port: d.lease.Port()})
				d.mu.Lock()
				d.refusal = r.err
				d.mu.Unlock()
				return
			}
			if !won.CompareAndSwap(false, true) {
				_ = r.v.Close() // a second one that passed: the first has the transfer
				return
			}
			d.lease.StopListening() // ends the accept loop; the port stays leased
			d.client <- r
		}()
	}
	wg.Wait()
	if won.Load() {
		return
	}
	d.lease.Release()
	err := fmt.Errorf("%w: %w", errDataAccept, acceptErr)
	if refused := d.noClient(); refused != errDataAccept {
		err = refused // the client hears why its connections were refused (431)
	}
	d.client <- result[net.Conn]{err: err}
}

// dataFromClient checks where an accepted data connection comes from: the
// PROXY header first if the listener has one, then the control
// connection's address. A refused connection is logged and closed.
func (s *session) dataFromClient(d *dataSetup, tcp *net.TCPConn) (net.Conn, bool) {
	var conn net.Conn = tcp
	if s.lst.ProxyProtocol.Enabled {
		// The balancer forwards data connections too: the client is the
		// one its header names.
		var err error
		if conn, err = readProxyHeader(tcp, s.lst.ProxyProtocol, s.env.cfg.Timeouts.handshake()); err != nil {
			s.emit(events.DataRefused{Session: s.ev(), Reason: events.DataRefusedProxyHeader, Err: err, Port: d.lease.Port()})
			_ = tcp.Close()
			return nil, false
		}
	}
	from, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	if from.Addr().Unmap() != s.clientIP {
		s.emit(events.DataRefused{Session: s.ev(), Reason: events.DataRefusedSourceAddress, Remote: from.String(), Port: d.lease.Port()})
		_ = conn.Close()
		return nil, false
	}
	return conn, true
}

// dialClient connects to the client's active-mode address.
func (s *session) dialClient(d *dataSetup) {
	dl := net.Dialer{Timeout: s.env.cfg.Timeouts.connect(), LocalAddr: &net.TCPAddr{IP: s.localIP.AsSlice()}}
	conn, err := dl.DialContext(d.ctx, "tcp", d.active.String())
	if err != nil {
		d.client <- result[net.Conn]{err: fmt.Errorf("%w: dial %s: %w", errDataAccept, d.active, err)}
		return
	}
	d.client <- s.secureClientData(d, conn, time.Now().Add(s.env.cfg.Timeouts.dataAccept()))
}

func (s *session) secureClientData(d *dataSetup, conn net.Conn, deadline time.Time) result[net.Conn] {
	if !d.protect {
		return result[net.Conn]{v: conn}
	}
	tc := tls.Server(relay.NewRecordConn(conn), s.tlsConf)
	ctx, cancel := context.WithDeadline(d.ctx, deadline)
	defer cancel()
	s.foreign.take() // forget what an earlier handshake was offered
	if err := tc.HandshakeContext(ctx); err != nil {
		err = fmt.Errorf("%w: %w", errDataTLS, err)
		if d.ctx.Err() == nil {
			// Logged before the close: a client that gives up on its
			// reset may leave the session before the transfer hears why.
			s.log.Warn().Err(err).Str(fieldRemote, conn.RemoteAddr().String()).Msg("client data connection closed")
		}
		_ = conn.Close()
		return result[net.Conn]{err: err}
	}
	resumed := tc.ConnectionState().DidResume
	owner, why := s.foreign.take()
	if mode := s.env.cfg.TLS.DataSessionReuse; !resumed && mode.Required() {
		ev := s.log.Warn().Str(fieldRemote, conn.RemoteAddr().String())
		if why != nil {
			ev = ev.Str(fieldTicketSession, owner).AnErr("ticket", why)
		}
		ev.Msgf("data connection refused: its TLS handshake did not resume this session's control connection, nor a sibling's it may (data_session_reuse: %s)", mode)
		_ = tc.Close()
		return result[net.Conn]{err: errNotResumed}
	}
	ev := s.log.Debug().Bool("resumed", resumed)
	if resumed && owner != "" && why == nil {
		ev = ev.Str(fieldTicketSession, owner) // a sibling's: same user, same address
	}
	ev.Msg("client data TLS established")
	return result[net.Conn]{v: tc}
}

// secureBackendData runs the backend data connection's TLS handshake, which
// resumes the backend control session (vsftpd's require_ssl_reuse).
func (s *session) secureBackendData(d *dataSetup, out chan<- result[net.Conn]) {
	if s.be.tlsConf == nil {
		out <- result[net.Conn]{v: d.backend}
		return
	}
	tc := tls.Client(relay.NewRecordConn(d.backend), s.be.tlsConf)
	ctx, cancel := context.WithTimeout(d.ctx, s.env.cfg.Timeouts.dataAccept())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		out <- result[net.Conn]{err: fmt.Errorf("backend %w: %w", errDataTLS, err)}
		return
	}
	s.log.Debug().Bool("resumed", tc.ConnectionState().DidResume).Msg("backend data TLS established")
	out <- result[net.Conn]{v: tc}
}

// dataEndLinger bounds how long endDataConn reads what the peer still sends.
const dataEndLinger = 3 * time.Second

// endDataConn ends a data connection the way FTP servers accept: a TLS
// close_notify, then a TCP FIN, then what the peer still sends is read and
// dropped until it closes too or linger passes (closing with unread input
// would reset the connection), then the socket is closed.
func endDataConn(c net.Conn, linger time.Duration) {
	type closeWriter interface{ CloseWrite() error }
	_ = c.SetDeadline(time.Now().Add(linger))
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
		raw = tc.NetConn()
	}
	if cw, ok := raw.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
	_ = raw.Close()
}

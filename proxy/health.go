package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Health checks: every backend with health.interval set is checked from
// Start until the grace period ends, each check an FTP conversation
// (probe) bounded by health.timeout. Package upstream turns the results
// into up and down (rise and fall counts). Each check is an event
// (metrics: backend_up, backend_checks_total, check latency); each change
// of state is one log line and an event. Sessions only start on backends
// that are up; a running session never moves.

// startHealthChecks starts the checks and waits for each backend's first
// result (at most its timeout), so that the first sessions already see
// the backends' state.
func (s *Server) startHealthChecks() {
	var first sync.WaitGroup
	for _, b := range s.ups.list {
		if b.health == nil {
			continue
		}
		first.Add(1)
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			s.healthLoop(b, first.Done)
		}()
	}
	first.Wait()
}

func (s *Server) healthLoop(b *upBackend, firstDone func()) {
	t := time.NewTicker(b.cfg.Health.Interval)
	defer t.Stop()
	for {
		s.checkBackend(b)
		if firstDone != nil {
			firstDone()
			firstDone = nil
		}
		select {
		case <-s.hardCtx.Done():
			return
		case <-t.C:
		}
	}
}

// checkBackend runs one check of b and records it.
func (s *Server) checkBackend(b *upBackend) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.hardCtx, b.cfg.Health.TimeoutOrDefault())
	err := s.probe(ctx, b, true)
	cancel()
	if s.hardCtx.Err() != nil {
		return // shutting down: not the backend's fault
	}
	up, changed := b.health.Observe(err)
	if err != nil && !changed {
		s.log.Debug().Str("backend", b.cfg.Name).Err(err).Msg("backend health check failed")
	}
	s.env.emit(events.BackendCheck{Backend: b.cfg.Name, Duration: time.Since(start), Err: err, Up: up})
	if changed {
		s.env.emit(events.BackendHealth{Backend: b.cfg.Name, Address: b.cfg.Address, Up: up, Err: err})
	}
}

// probe talks to b the way a session would, within ctx: the connection
// (through b's dialer: its tunnel too), the PROXY header if b expects one
// (naming the gateway itself), the TLS handshake for an implicit backend,
// and the 220 banner. With health, as b's health check says: AUTH TLS and
// its handshake (explicit backends; always before a probe login, whose
// password never crosses in clear to a TLS backend), and the probe
// account's login (230). Then QUIT.
func (s *Server) probe(ctx context.Context, b *upBackend, health bool) error {
	name := probeAddr(b)
	raw, err := b.dialer.DialBackend(ctx, b.cfg.Address, netip.Addr{})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	if v := b.cfg.ProxyProtocol; v != 0 {
		if err := writeProxyHeader(raw, v, raw.LocalAddr(), raw.RemoteAddr()); err != nil {
			return fmt.Errorf("%s: PROXY header: %w", name, err)
		}
	}
	var conn net.Conn = raw
	if b.cfg.TLS == TLSImplicit {
		tc := tls.Client(raw, b.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%s: TLS handshake: %w", name, err)
		}
		conn = tc
	}
	r := ftp.NewReader(conn)
	rep, err := r.ReadReply()
	for err == nil && rep.Preliminary() { // "120 ready in n minutes", then 220
		rep, err = r.ReadReply()
	}
	if err != nil {
		return fmt.Errorf("%s: banner: %w", name, err)
	}
	if rep.Code != ftp.StatusReady {
		return fmt.Errorf("%s: banner %d %s", name, rep.Code, rep.Text())
	}
	if health {
		h := b.cfg.Health
		if b.cfg.TLS == TLSExplicit && (h.TLS || h.User != "") {
			if rep, err = ask(conn, r, ftp.Command{Verb: "AUTH", Arg: "TLS"}); err != nil {
				return fmt.Errorf("%s: AUTH TLS: %w", name, err)
			}
			if rep.Code != ftp.StatusAuthOK {
				return fmt.Errorf("%s: AUTH TLS refused: %d %s", name, rep.Code, rep.Text())
			}
			tc := tls.Client(raw, b.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				return fmt.Errorf("%s: TLS handshake: %w", name, err)
			}
			conn = tc
			r = ftp.NewReader(conn)
		}
		if h.User != "" {
			if err := probeLogin(conn, r, h.User, h.Password); err != nil {
				return fmt.Errorf("%s: probe login as %s: %w", name, h.User, err)
			}
		}
	}
	_ = ftp.WriteCommand(conn, ftp.Command{Verb: "QUIT"})
	return nil
}

// probeLogin logs in as user; the password never appears in an error.
func probeLogin(conn net.Conn, r *ftp.Reader, user, password string) error {
	rep, err := ask(conn, r, ftp.Command{Verb: "USER", Arg: user})
	if err != nil {
		return err
	}
	if rep.Code == ftp.StatusNeedPassword {
		if rep, err = ask(conn, r, ftp.Command{Verb: "PASS", Arg: password}); err != nil {
			return fmt.Errorf("PASS: %w", err)
		}
	}
	if rep.Code != ftp.StatusLoggedIn {
		return fmt.Errorf("refused: %d %s", rep.Code, rep.Text())
	}
	return nil
}

// ask sends cmd and reads its final reply.
func ask(conn net.Conn, r *ftp.Reader, cmd ftp.Command) (ftp.Reply, error) {
	if err := ftp.WriteCommand(conn, cmd); err != nil {
		return ftp.Reply{}, err
	}
	rep, err := r.ReadReply()
	for err == nil && rep.Preliminary() {
		rep, err = r.ReadReply()
	}
	return rep, err
}

package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// Health checks: every backend with health.interval set is checked from
// Start (or the reload that added it) until the grace period ends (or a
// reload removes or changes it: upstreamsreload.go), each check an FTP conversation
// (probe) bounded by health.timeout. Package upstream turns the results
// into up and down (rise and fall counts). Each check is an event
// (metrics: backend_up, backend_checks_total, check latency); each change
// of state is one log line and an event. Sessions only start on backends
// that are up; a running session never moves.

// startHealthChecks starts the checks of list's checked backends that
// have none running and waits for each one's first result (at most its
// timeout), so that the first sessions already see their state. The
// caller holds reloadMu.
func (s *Server) startHealthChecks(list []*upBackend) {
	var first sync.WaitGroup
	for _, b := range list {
		if b.health == nil || b.checker != nil {
			continue
		}
		ctx, stop := context.WithCancel(s.hardCtx)
		b.checker = stop
		first.Add(1)
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			s.healthLoop(ctx, b, first.Done)
		}()
	}
	first.Wait()
}

// stopHealthCheck stops b's checks (a reload removed or changed it); its
// state stays as it was for the sessions that still hold it.
func stopHealthCheck(b *upBackend) {
	if b.checker != nil {
		b.checker()
	}
}

func (s *Server) healthLoop(ctx context.Context, b *upBackend, firstDone func()) {
	defer func() {
		if firstDone != nil {
			firstDone()
		}
	}()
	interval := b.cfg.Health.Interval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		began := time.Now()
		s.checkBackend(ctx, b)
		if firstDone != nil {
			firstDone()
			firstDone = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.recheck:
			// A session's dial failed: check now rather than at the
			// interval's end, but not closer to the last check than
			// recheckGap. A dead backend goes down after its fall
			// count of checks, not of intervals; a session's failure
			// alone never takes it down.
			wait := time.NewTimer(recheckGap(interval) - time.Since(began))
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
			}
			t.Reset(interval)
		}
	}
}

// recheckGap is the shortest time between the start of a check and one a
// failed session dial brings forward: a fifth of the interval, at least
// upstream.MinInterval, so that sessions failing on a dead backend do
// not make its checks a loop against it.
func recheckGap(interval time.Duration) time.Duration {
	return max(interval/5, upstream.MinInterval)
}

// checkSoon asks b's health checks, when it has them, to check now (a
// session's dial to it failed); a request already waiting stands for this
// one.
func (b *upBackend) checkSoon() {
	if b.recheck == nil {
		return
	}
	select {
	case b.recheck <- struct{}{}:
	default:
	}
}

// checkBackend runs one check of b and records it, unless ctx ended
// meanwhile (shutdown, or a reload stopped the checker).
func (s *Server) checkBackend(ctx context.Context, b *upBackend) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, b.cfg.Health.TimeoutOrDefault())
	err := s.probe(cctx, b, true)
	cancel()
	if ctx.Err() != nil {
		return // stopped: not the backend's fault
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

// probe talks to b the way a session would, within ctx (see
// upstream.Probe): through b's dialer (its tunnel too), with the PROXY
// header b expects (naming the gateway itself), the TLS handshake for an
// implicit backend and the 220 banner. With health, as b's health check
// says: AUTH TLS and its handshake (explicit backends; always before a
// probe login, whose password never crosses in clear to a TLS backend),
// and the probe account's login. Errors start with the backend's name.
func (s *Server) probe(ctx context.Context, b *upBackend, health bool) error {
	p := upstream.Probe{Address: b.cfg.Address, Dialer: b.dialer, TLS: b.tlsConfig(), Implicit: b.cfg.TLS == TLSImplicit}
	if v := b.cfg.ProxyProtocol; v != 0 {
		p.Header = func(c net.Conn) error { return writeProxyHeader(c, v, c.LocalAddr(), c.RemoteAddr()) }
	}
	if h := b.cfg.Health; health {
		p.AuthTLS = b.cfg.TLS == TLSExplicit && (h.TLS || h.User != "")
		p.User, p.Password = h.User, h.Password
	}
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("%s: %w", probeAddr(b), err)
	}
	return nil
}

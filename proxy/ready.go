package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Readiness: a gateway is ready to take clients while it is not shutting
// down, its listeners are bound, and its backend answers. The backend is
// probed the way FTP clients meet it: a TCP connection (and the TLS
// handshake, for an implicit backend) and a 220 banner, then QUIT. A
// probe's result is kept for readyCache, so that a balancer asking every
// second costs the backend one connection every few seconds.

// readyCache is how long a backend probe's result stands.
const readyCache = 2 * time.Second

// Errors of Ready.
var (
	ErrNotStarted = errors.New("proxy: listeners are not bound")
	ErrDraining   = errors.New("proxy: shutting down")
)

// readiness caches the backend probe.
type readiness struct {
	mu   sync.Mutex // held during a probe: concurrent askers share it
	at   time.Time
	err  error
	seen bool
}

// Ready reports whether the gateway can serve a client now: nil, or why
// not (ErrNotStarted, ErrDraining, or the backend probe's failure). It is
// for load balancers' readiness checks (the admin API's /readyz).
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	closing, bound := s.closing, len(s.listeners) == len(s.cfg.Listeners)
	s.mu.Unlock()
	switch {
	case closing:
		return ErrDraining
	case !bound:
		return ErrNotStarted
	}
	r := &s.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen && time.Since(r.at) < readyCache {
		return r.err
	}
	r.err = s.probeBackend(ctx)
	r.at, r.seen = time.Now(), true
	return r.err
}

// probeBackend connects to the backend, reads its banner (after the TLS
// handshake for an implicit backend), and says QUIT, all within
// timeouts.connect.
func (s *Server) probeBackend(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeouts.connect())
	defer cancel()
	raw, err := dialerFor(s.dialer, s.tunnels, &s.cfg.Backend).DialBackend(ctx, s.cfg.Backend.Address, netip.Addr{})
	if err != nil {
		return fmt.Errorf("backend %s: %w", s.cfg.Backend.Address, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := raw
	if s.cfg.Backend.TLS == TLSImplicit {
		tc := tls.Client(raw, s.backendTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("backend %s: TLS handshake: %w", s.cfg.Backend.Address, err)
		}
		conn = tc
	}
	r := ftp.NewReader(conn)
	rep, err := r.ReadReply()
	for err == nil && rep.Preliminary() { // "120 ready in n minutes", then 220
		rep, err = r.ReadReply()
	}
	if err != nil {
		return fmt.Errorf("backend %s: banner: %w", s.cfg.Backend.Address, err)
	}
	if rep.Code != ftp.StatusReady {
		return fmt.Errorf("backend %s: banner %d %s", s.cfg.Backend.Address, rep.Code, rep.Text())
	}
	_ = ftp.WriteCommand(conn, ftp.Command{Verb: "QUIT"})
	return nil
}

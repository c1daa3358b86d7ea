package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Readiness: a gateway is ready to take clients while it is not shutting
// down, its listeners are bound, and the default routing target (the
// single backend, or routing.default) has a member that is up. A
// health-checked backend is up as its checks say (health.go); one without
// checks is probed the way FTP clients meet it: a TCP connection (and the
// TLS handshake, for an implicit backend) and a 220 banner, then QUIT. A
// probe's result is kept for readyCache, so that a balancer asking every
// second costs the backend one connection every few seconds. Targets other
// than the default do not count: a gateway whose partner backend is down
// still serves everyone else (their state is in the metrics and the log).

// readyCache is how long a backend probe's result stands.
const readyCache = 2 * time.Second

// Errors of Ready.
var (
	ErrNotStarted = errors.New("proxy: listeners are not bound")
	ErrDraining   = errors.New("proxy: shutting down")
)

// readiness caches one backend's on-demand probe.
type readiness struct {
	mu   sync.Mutex // held during a probe: concurrent askers share it
	at   time.Time
	err  error
	seen bool
}

// Ready reports whether the gateway can serve a client now: nil, or why
// not (ErrNotStarted, ErrDraining, or why no backend of the default target
// is up). It is for load balancers' readiness checks (the admin API's
// /readyz).
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
	ups := s.ups.Load()
	bs, _ := ups.members(ups.routing.Default)
	// Checked members first (no I/O), then the others' probes at once: a
	// member that hangs must not hide one that greets.
	var errs, probed []error
	var unchecked []*upBackend
	for _, b := range bs {
		if b.health == nil {
			unchecked = append(unchecked, b)
			continue
		}
		err := s.backendReady(ctx, b)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(unchecked) > 0 {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		res := make(chan error, len(unchecked))
		for _, b := range unchecked {
			go func() { res <- s.backendReady(ctx, b) }()
		}
		for range unchecked {
			err := <-res
			if err == nil {
				return nil
			}
			probed = append(probed, err)
		}
	}
	return errors.Join(append(errs, probed...)...)
}

// backendReady reports whether b can take a session now.
func (s *Server) backendReady(ctx context.Context, b *upBackend) error {
	if b.health != nil {
		if b.health.Up() {
			return nil
		}
		err := b.health.LastErr()
		if err == nil {
			err = errors.New("failing its health checks")
		}
		return fmt.Errorf("down: %w", err)
	}
	r := &b.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen && time.Since(r.at) < readyCache {
		return r.err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeouts.connect())
	defer cancel()
	err := s.probe(pctx, b, false)
	if err != nil && ctx.Err() != nil {
		return err // the asker gave up (or another member answered): says nothing of b
	}
	r.err = err
	r.at, r.seen = time.Now(), true
	return r.err
}

// probeAddr is the error prefix of b's probe failures.
func probeAddr(b *upBackend) string {
	if b.cfg.Name == DefaultBackendName {
		return "backend " + b.cfg.Address
	}
	return "backend " + b.cfg.Name + " (" + b.cfg.Address + ")"
}

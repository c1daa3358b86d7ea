package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/eventlog"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
)

// Server is a running gateway: its listeners and their sessions.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	tlsConfs  map[string]*tls.Config    // per listener: client side, control and data
	ups       atomic.Pointer[upstreams] // the backends, their health and the routing (swapped by ReloadBackends)
	reloadMu  sync.Mutex                // serialises Start's and ReloadBackends' work on the backends
	started   bool                      // Start has run: health checks run (under reloadMu)
	certs     Certificates
	tickets   policy.TicketKeys
	pool      *nat.Pool
	data      policy.DataPolicy
	bans      Bans
	admission Admission
	bandwidth *rate.Limiter           // the whole gateway's; nil: unlimited
	book      *policy.SessionRegistry // live sessions, for data connections resuming a sibling's TLS session
	events    events.Sink             // nil: none
	logEvents *eventlog.Sink          // writes the log lines of events
	env       *sessionEnv             // what sessions see of the server

	auth auth.Authenticator // decides logins
	// clientChain checks a client certificate against the client CA when
	// the handshake does not (tls pins mode); nil otherwise.
	clientChain func([]*x509.Certificate) bool
	dialer      Dialer            // opens connections to the backend
	tunnels     map[string]Dialer // Backend.Via names one of them
	access      AccessResolver    // confines users; nil: none
	gate        Gate              // asked at admission; nil: none

	mu        sync.Mutex
	listeners map[string]net.Listener
	sessions  map[*session]struct{}
	closing   bool

	acceptWG  sync.WaitGroup
	sessionWG sync.WaitGroup
	drainCtx  context.Context    // cancelled when shutdown starts (and with hardCtx): sessions finish their transfer and leave
	drainStop context.CancelFunc //
	drain     <-chan struct{}    // drainCtx.Done()
	hardCtx   context.Context    // cancelled when the grace period is over
	hardStop  context.CancelFunc //
	bgWG      sync.WaitGroup     // certificate reloader, ticket rotation
}

// New checks cfg and prepares a server with the collaborators opts give
// (the defaults otherwise: see Option). It opens no socket.
func New(cfg Config, log zerolog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: invalid configuration:\n%w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		pool:      nat.NewPool(cfg.Passive.Ports, cfg.Limits.MaxPassivePerIP),
		data:      policy.DataPolicy{RequireProtected: cfg.TLS.RequireProtectedData, ActiveEnabled: cfg.ActiveEnabled},
		listeners: map[string]net.Listener{},
		sessions:  map[*session]struct{}{},
		tlsConfs:  map[string]*tls.Config{},
		auth:      auth.Passthrough{},
		dialer:    tcpDialer{},
		book:      policy.NewSessionRegistry(cfg.Limits.MaxSessions),
		logEvents: eventlog.New(log),
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.defaults(); err != nil {
		return nil, err
	}
	ups, err := newUpstreams(s.cfg, s.dialer, s.tunnels, nil)
	if err != nil {
		return nil, err
	}
	s.ups.Store(ups)
	for _, l := range cfg.Listeners {
		tc, err := cfg.TLS.With(l.TLSOverride).ServerConfig(s.certs)
		if err != nil {
			return nil, fmt.Errorf("proxy: listener %s: %w", l.Name, err)
		}
		s.tickets.Register(tc)
		s.tlsConfs[l.Name] = tc
	}
	s.hardCtx, s.hardStop = context.WithCancel(context.Background())
	s.drainCtx, s.drainStop = context.WithCancel(s.hardCtx)
	s.drain = s.drainCtx.Done()
	s.bandwidth = cfg.Limits.NewGlobalLimiter()
	for i, b := range cfg.backendList() {
		if b.TLS != TLSNone && b.Trust.InsecureSkipVerify {
			log.Warn().Msgf("%s.insecure_skip_verify is on: the backend's certificate is NOT verified (lab use only)", cfg.backendKey(i))
		}
	}
	if cfg.TLS.ClientCertPins {
		var err error
		if s.clientChain, err = cfg.TLS.ClientChainVerifier(); err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
	}
	s.env = s.newEnv()
	return s, nil
}

// defaults builds the collaborators no Option gave, as the gateway always
// has, and subscribes to the events of those that have them.
func (s *Server) defaults() error {
	if s.certs == nil {
		src, err := NewCertificates(s.cfg, s.log)
		if err != nil {
			return err
		}
		s.certs = src
	}
	if s.bans == nil {
		d, err := policy.NewDefender(s.cfg.Bans, nil)
		if err != nil {
			return fmt.Errorf("proxy: bans: %w", err)
		}
		s.bans = d
	}
	if s.admission == nil {
		d, _ := s.bans.(*policy.Defender)
		s.admission = policy.NewAdmission(s.cfg.Limits, d)
	}
	s.bans.Subscribe(s.logBanEvent)
	if c, ok := s.certs.(interface{ Subscribe(func(policy.CertEvent)) }); ok {
		c.Subscribe(s.logCertEvent)
	}
	return nil
}

func listenerHosts(ls []Listener) []string {
	var hosts []string
	for _, l := range ls {
		if h, _, err := net.SplitHostPort(l.Address); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// Start binds every listener and starts accepting. When it returns without
// error, every listener accepts connections.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	for _, l := range s.cfg.Listeners {
		ln, err := lc.Listen(ctx, "tcp", l.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("proxy: listener %s: %w", l.Name, err)
		}
		s.mu.Lock()
		s.listeners[l.Name] = ln
		s.mu.Unlock()
		s.log.Info().Str(fieldListener, l.Name).Str("address", ln.Addr().String()).Str("tls", l.TLS.String()).Msg("listening")
	}
	s.reloadMu.Lock()
	for _, b := range s.ups.Load().list {
		b.data = s.backendDataPorts(b.cfg)
	}
	s.startHealthChecks(s.ups.Load().list)
	s.started = true
	s.reloadMu.Unlock()
	for _, l := range s.cfg.Listeners {
		s.acceptWG.Add(1)
		go s.acceptLoop(s.listeners[l.Name], l)
	}
	if w, ok := s.certs.(interface{ Run(context.Context) }); ok {
		s.bgWG.Add(1)
		go func() { defer s.bgWG.Done(); w.Run(s.hardCtx) }()
	}
	s.bgWG.Add(1)
	go func() { defer s.bgWG.Done(); s.tickets.Run(s.hardCtx, s.cfg.TLS.TicketRotationInterval()) }()
	return nil
}

// backendDataPorts is the policy for the data ports a backend names: what
// backend.data_ports pins, and never the gateway's own listening ports.
// Through a tunnel (via) the gateway's own ports are out of the question:
// the agent connects to the backend's host in the LAN, whose address (its
// loopback, when the agent runs beside the server) names no port of the
// gateway's host, and a port number the gateway happens to use there too
// is the backend's own.
func (s *Server) backendDataPorts(b Backend) policy.BackendDataPorts {
	if b.Via != "" {
		return policy.BackendDataPorts{Low: b.DataPorts.Low, High: b.DataPorts.High}
	}
	p := policy.BackendDataPorts{
		Low: b.DataPorts.Low, High: b.DataPorts.High,
		PassiveLow: s.cfg.Passive.Ports.Low, PassiveHigh: s.cfg.Passive.Ports.High,
		PassiveLeased: s.pool.Leased,
		Own:           slices.Clone(s.cfg.OwnAddrs),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
			p.Own = append(p.Own, ap)
		}
	}
	return p
}

// Reload re-reads the certificate now (SIGHUP) and returns why it failed
// (the current certificate then stays). Without configured files it does
// nothing.
func (s *Server) Reload() error { return s.certs.Reload() }

// CertificateDaysLeft returns the days until the served certificate
// expires, for monitoring.
func (s *Server) CertificateDaysLeft() int {
	return int(time.Until(s.certs.NotAfter()).Hours() / 24)
}

// CertificateNotAfter returns when the served certificate expires.
func (s *Server) CertificateNotAfter() time.Time { return s.certs.NotAfter() }

// Defender returns the ban list, for the admin API, when it is a
// *policy.Defender (the default); nil otherwise.
func (s *Server) Defender() *policy.Defender { d, _ := s.bans.(*policy.Defender); return d }

// PassiveInUse returns how many passive ports are leased.
func (s *Server) PassiveInUse() int { return s.pool.InUse() }

// Admission returns the connection limits' state, for the admin API, when
// it is a *policy.Admission (the default); nil otherwise.
func (s *Server) Admission() *policy.Admission { a, _ := s.admission.(*policy.Admission); return a }

func (s *Server) logBanEvent(e policy.BanEvent) {
	switch e.Kind {
	case policy.EventBan:
		s.emit(events.Ban{IP: e.IP.String(), Added: true, Reason: e.Reason, Until: e.Until, Duration: e.Duration, Offences: e.Offences})
		s.log.Warn().Str(fieldClient, e.IP.String()).Time("until", e.Until).Float64("ban_seconds", e.Duration.Seconds()).
			Int("offences", e.Offences).Str(fieldReason, e.Reason).Msg("address banned")
		s.endBanned(e)
	case policy.EventUnban:
		s.emit(events.Ban{IP: e.IP.String(), Reason: e.Reason})
		s.log.Info().Str(fieldClient, e.IP.String()).Str(fieldReason, e.Reason).Msg("address unbanned")
	default:
		s.log.Error().Str("event", e.Kind).Str(fieldClient, e.IP.String()).Str(fieldReason, e.Reason).Msg("ban state")
	}
}

func (s *Server) logCertEvent(e policy.CertEvent) {
	s.emit(events.Certificate{Kind: e.Kind, NotAfter: e.NotAfter, Err: e.Err})
	switch e.Kind {
	case "reloaded":
		s.log.Info().Time("not_after", e.NotAfter).Int("days_left", e.DaysLeft).Msg("certificate reloaded")
	case "reload_failed":
		s.log.Error().Err(e.Err).Msg("certificate reload failed")
	case "expiring":
		s.log.Warn().Time("not_after", e.NotAfter).Int("days_left", e.DaysLeft).Msg("certificate expires soon")
	case "expired":
		s.log.Error().Time("not_after", e.NotAfter).Int("days_left", e.DaysLeft).Msg("certificate has expired")
	}
}

// Addr returns the bound address of the named listener, or nil.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ln, ok := s.listeners[name]; ok {
		return ln.Addr()
	}
	return nil
}

func (s *Server) acceptLoop(ln net.Listener, l Listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary errors (EMFILE, ECONNABORTED...): back off, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error().Err(err).Str(fieldListener, l.Name).Float64("retry_in_seconds", backoff.Seconds()).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// Nothing that can block happens here: the PROXY header, admission
		// and TLS are the session goroutine's.
		sess := newSession(s.env, conn, l)
		if !s.track(sess) {
			_ = conn.Close()
			return
		}
		go func() {
			defer s.sessionWG.Done()
			defer s.untrack(sess)
			sess.serve()
		}()
	}
}

func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.sessionWG.Add(1)
	return true
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// SessionCount returns the number of live sessions.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// SessionInfo describes a live session.
type SessionInfo struct {
	ID, Client, User, Listener string
	Backend                    string // the backend the session holds now ("" before login, or without one)
	Started                    time.Time
	BytesUp, BytesDown         int64
}

// Sessions lists the live sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	out := make([]SessionInfo, 0, len(list))
	for _, sess := range list {
		out = append(out, sess.info())
	}
	return out
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
}

// Shutdown stops accepting, tells idle sessions to leave (421), lets running
// transfers finish until ctx is done, then aborts what is left (426, 421) and
// waits for every session to end. It returns ctx.Err() if transfers had to
// be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if !already {
		s.closeListeners()
		s.drainStop()
		s.log.Info().Int("sessions", s.SessionCount()).Msg("shutting down: no new connections, running transfers may finish")
	}
	s.acceptWG.Wait()
	done := make(chan struct{})
	go func() {
		s.sessionWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.log.Warn().Int("sessions", s.SessionCount()).Msg("grace period over: aborting remaining transfers")
		s.hardStop()
		<-done
	}
	s.hardStop()
	s.bgWG.Wait()
	if cerr := s.bans.Close(); cerr != nil {
		s.log.Error().Err(cerr).Msg("saving the ban state")
	}
	s.log.Info().Msg("shutdown complete")
	return err
}

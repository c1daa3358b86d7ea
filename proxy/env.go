package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
)

// sessionEnv is all a session may use of the gateway: the configuration,
// the collaborators and the server's shutdown signals. The Server builds it
// once (New, and Start for what needs the bound listeners) and keeps
// ownership of everything it points to; sessions only read it, and never
// see the Server itself.
type sessionEnv struct {
	cfg      *Config                    // read-only
	log      zerolog.Logger             // the server's; a session adds its fields
	tlsConfs map[string]*tls.Config     // per listener: client side, control and data
	ups      *atomic.Pointer[upstreams] // the backends and the routing; Load once per decision
	auth     auth.Authenticator
	// clientChain checks a client certificate against the client CA when
	// the handshake does not (tls pins mode); nil otherwise.
	clientChain func([]*x509.Certificate) bool
	dialer      Dialer
	tunnels     map[string]Dialer // by name, for Backend.Via
	access      AccessResolver    // nil: no session is confined
	gate        Gate              // nil: none
	admission   Admission
	bans        Bans
	pool        *nat.Pool
	data        policy.DataPolicy
	bandwidth   *rate.Limiter // the whole gateway's; nil: unlimited
	book        sessionBook   // live sessions; nil: none
	events      events.Sink   // nil: none
	logEvents   events.Sink   // the log consumer: first to see each event

	hardCtx  context.Context // cancelled when the grace period is over
	drainCtx context.Context // cancelled when shutdown starts
	drain    <-chan struct{} // drainCtx.Done()
}

// newEnv builds the sessions' environment from the server's parts.
func (s *Server) newEnv() *sessionEnv {
	e := &sessionEnv{
		cfg: &s.cfg, log: s.log, tlsConfs: s.tlsConfs, ups: &s.ups,
		auth: s.auth, clientChain: s.clientChain, dialer: s.dialer, tunnels: s.tunnels, access: s.access, gate: s.gate, admission: s.admission, bans: s.bans,
		pool: s.pool, data: s.data, bandwidth: s.bandwidth, events: s.events, logEvents: s.logEvents,
		hardCtx: s.hardCtx, drainCtx: s.drainCtx, drain: s.drain,
	}
	if s.book != nil {
		e.book = s.book
	}
	return e
}

// emit sends one event to the log consumer and the sink.
func (e *sessionEnv) emit(ev events.Event) {
	e.logEvents.Emit(ev)
	if e.events != nil {
		e.events.Emit(ev)
	}
}

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// Several backends: Config.Backends names them, Config.Pools groups
// equivalent ones, Config.Routing chooses one per session (package
// upstream decides; this file holds the live state). The single
// Config.Backend is the backend "default" when Backends is empty.

// DefaultBackendName is the name of the backend the backend section
// configures (Config.Backend).
const DefaultBackendName = "default"

// HealthCheck is one backend's FTP-aware health check: a connection and
// the 220 banner (after the TLS handshake for an implicit backend), and
// optionally AUTH TLS with its handshake (explicit backends) and a login
// with a probe account. Interval 0: no checks, the backend is taken as up
// at session start (readiness then probes it on demand, as before).
type HealthCheck struct {
	upstream.HealthConfig
	// TLS: for an explicit backend, AUTH TLS and the handshake too.
	TLS bool
	// User and Password: log in with this account (230 expected), then
	// QUIT. The password is never logged.
	User     string
	Password string
}

// Routing chooses a backend or pool per session (see upstream.Rule).
type Routing struct {
	Rules []upstream.Rule
	// Default is taken when no rule matches; it may be left empty when
	// there is one backend.
	Default string
}

// backendList is the configured backends: Backends, or Backend as
// "default".
func (c Config) backendList() []Backend {
	if len(c.Backends) > 0 {
		return c.Backends
	}
	b := c.Backend
	if b.Name == "" {
		b.Name = DefaultBackendName
	}
	return []Backend{b}
}

// routing is the routing as package upstream takes it.
func (c Config) routing() upstream.Config {
	list := c.backendList()
	r := upstream.Config{Pools: c.Pools, Rules: c.Routing.Rules, Default: c.Routing.Default}
	for _, b := range list {
		r.Backends = append(r.Backends, b.Name)
	}
	if r.Default == "" && len(list) == 1 {
		r.Default = list[0].Name
	}
	return r
}

// backendKey is the configuration key of backend i.
func (c Config) backendKey(i int) string {
	if len(c.Backends) == 0 {
		return "backend"
	}
	return fmt.Sprintf("backends[%d]", i)
}

// validateBackends checks the backends, the pools and the routing.
func (c Config) validateBackends() []error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, confkey.Under(key, err))
		}
	}
	if len(c.Backends) > 0 && c.Backend.Address != "" {
		add("backends", errors.New("set either backend (one backend) or backends (several), not both"))
	}
	names := map[string]bool{}
	for i, b := range c.backendList() {
		key := c.backendKey(i)
		if len(c.Backends) > 0 {
			switch {
			case b.Name == "":
				add(key+".name", errors.New("must be set"))
			case names[b.Name]:
				add(key+".name", fmt.Errorf("duplicate backend name %q", b.Name))
			}
			names[b.Name] = true
		}
		add(key+".address", checkHostPort(b.Address))
		if v := b.ProxyProtocol; v > 2 {
			add(key+".proxy_protocol", fmt.Errorf("version %d (want off, v1 or v2)", v))
		}
		if b.TLS != TLSNone {
			add(key, b.Trust.Validate())
		}
		if dp := b.DataPorts; dp.Low != 0 || dp.High != 0 {
			if err := dp.Validate(); err != nil {
				add(key+".data_ports", err)
			} else if dp.High < 1024 {
				add(key+".data_ports", fmt.Errorf("%s: ports below 1024 are always refused", dp))
			}
		}
		h := b.Health
		switch {
		case h.Interval < 0:
			add(key+".health.interval", fmt.Errorf("%s is negative", h.Interval))
		case h.Interval > 0 && h.Interval < upstream.MinInterval:
			add(key+".health.interval", fmt.Errorf("%s is shorter than %s", h.Interval, upstream.MinInterval))
		case h.Timeout < 0:
			add(key+".health.timeout", fmt.Errorf("%s is negative", h.Timeout))
		case h.Timeout > 0 && h.Timeout < upstream.MinTimeout:
			add(key+".health.timeout", fmt.Errorf("%s is shorter than %s", h.Timeout, upstream.MinTimeout))
		case h.Rise < 0:
			add(key+".health.rise", errors.New("is negative"))
		case h.Fall < 0:
			add(key+".health.fall", errors.New("is negative"))
		}
		if h.Enabled() && h.TimeoutOrDefault() > h.Interval {
			add(key+".health.timeout", fmt.Errorf("%s is longer than the interval %s", h.Timeout, h.Interval))
		}
		if h.User != "" && h.Password == "" {
			add(key+".health.password_file", errors.New("the probe account needs a password (password_file or password_env)"))
		}
		if h.TLS && b.TLS == TLSNone {
			add(key+".health.tls", errors.New("the backend is plain (tls: none): there is no handshake to check"))
		}
	}
	if len(c.Backends) == 0 && (len(c.Pools) > 0 || len(c.Routing.Rules) > 0) {
		add("routing", errors.New("pools and routing rules need backends (a named list)"))
	}
	for i, r := range c.Routing.Rules {
		for _, l := range r.Listeners {
			if !slices.ContainsFunc(c.Listeners, func(x Listener) bool { return x.Name == l }) {
				add(fmt.Sprintf("routing.rules[%d].listeners", i), fmt.Errorf("%q is not a listener", l))
			}
		}
	}
	if err := c.routing().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// upBackend is one backend's live state. A reload that leaves a
// backend's settings as they were keeps its upBackend (its health, its
// checker, its session count); a changed or new backend gets a new one.
type upBackend struct {
	cfg      Backend
	dialer   Dialer                     // default, or the tunnel Via names
	tls      atomic.Pointer[tls.Config] // base for its sessions; nil when plain (a reload re-reads its files)
	data     policy.BackendDataPorts    // set by Start, or by the reload that made it
	health   *upstream.Health           // nil: not checked
	ready    readiness                  // on-demand probe (readiness) when not checked
	sessions atomic.Int64               // sessions holding (or dialling) a connection to it
	checker  context.CancelFunc         // stops its health checks; nil: none running (upstreamsreload.go)
	recheck  chan struct{}              // a session's dial failed: check now (health.go); nil: not checked
	created  time.Time                  // for an unchecked backend's "since"
}

// up reports whether sessions may start on b.
func (b *upBackend) up() bool { return b.health == nil || b.health.Up() }

// tlsConfig is the base TLS configuration of b's sessions; nil when plain.
func (b *upBackend) tlsConfig() *tls.Config { return b.tls.Load() }

// upstreams is every backend and the routing: one immutable set, swapped
// whole by a reload (the Server holds the current one in an atomic
// pointer). A session routes with the set current at its login and keeps
// the upBackend it chose until it ends.
type upstreams struct {
	list    []*upBackend
	byName  map[string]*upBackend
	routing upstream.Config
	pickers map[string]*upstream.Picker // per target
	// pickMu makes a pick and the count it adds one step: logins routed
	// at the same time see each other's sessions (least_sessions).
	pickMu sync.Mutex
	// freshTLS: the TLS configurations, read again from their files, of
	// the kept backends; stored in them when the set goes live.
	freshTLS map[*upBackend]*tls.Config
}

// newUpstreams builds the backends' state: their dialers (checking that
// each Via names a tunnel) and TLS configurations. keep, when set, gives
// the live backend to keep for a name whose settings are unchanged
// (upstreamsreload.go).
func newUpstreams(cfg Config, def Dialer, tunnels map[string]Dialer, keep func(Backend) *upBackend) (*upstreams, error) {
	u := &upstreams{byName: map[string]*upBackend{}, routing: cfg.routing(), pickers: map[string]*upstream.Picker{}, freshTLS: map[*upBackend]*tls.Config{}}
	for _, b := range cfg.backendList() {
		if err := checkTunnels(tunnels, &b); err != nil {
			return nil, err
		}
		tc, err := backendTLS(b)
		if err != nil {
			return nil, err
		}
		ub := (*upBackend)(nil)
		if keep != nil {
			ub = keep(b)
		}
		if ub != nil {
			u.freshTLS[ub] = tc // stored when the set goes live
		} else {
			ub = &upBackend{cfg: b, dialer: dialerFor(def, tunnels, &b), created: time.Now()}
			ub.tls.Store(tc)
			if b.Health.Enabled() {
				ub.health = upstream.NewHealth(b.Health.HealthConfig)
				ub.recheck = make(chan struct{}, 1)
			}
		}
		u.list = append(u.list, ub)
		u.byName[b.Name] = ub
	}
	for _, t := range append(append([]string{}, u.routing.Backends...), poolNames(cfg)...) {
		u.pickers[t] = &upstream.Picker{}
	}
	return u, nil
}

// backendTLS is b's base TLS client configuration (nil when plain), from
// its files as they are now.
func backendTLS(b Backend) (*tls.Config, error) {
	if b.TLS == TLSNone {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(b.Address)
	c, err := b.Trust.ClientConfig(host)
	if err != nil {
		return nil, fmt.Errorf("proxy: backend %s: %w", b.Name, err)
	}
	return c, nil
}

func poolNames(cfg Config) []string {
	var out []string
	for _, p := range cfg.Pools {
		out = append(out, p.Name)
	}
	return out
}

// members returns target's backends as the picker sees them now.
func (u *upstreams) members(target string) ([]*upBackend, []upstream.Member) {
	var bs []*upBackend
	var ms []upstream.Member
	for _, name := range u.routing.Members(target) {
		b := u.byName[name]
		if b == nil {
			continue
		}
		bs = append(bs, b)
		ms = append(ms, upstream.Member{Name: name, Up: b.up(), Sessions: b.sessions.Load()})
	}
	return bs, ms
}

// choose routes req to a target and picks its member, counting a session
// on it (dialRouted takes it back if the dial fails). The error wraps
// upstream.ErrNoHealthy and names the target.
func (u *upstreams) choose(req upstream.Request) (*upBackend, string, error) {
	target := u.routing.Route(req)
	u.pickMu.Lock()
	defer u.pickMu.Unlock()
	bs, ms := u.members(target)
	p := u.pickers[target]
	if p == nil {
		p = &upstream.Picker{} // cannot happen: Validate checked every target
	}
	i, err := p.Pick(u.routing.BalanceOf(target), ms)
	if err != nil {
		return nil, target, fmt.Errorf("target %s: %w", target, err)
	}
	bs[i].sessions.Add(1)
	return bs[i], target, nil
}

// holds reports whether target may keep the backend b (a session that
// chose b before a failed login and now logs in again): b is still in
// this set, unchanged, a member of target, and up.
func (u *upstreams) holds(target string, b *upBackend) bool {
	for _, name := range u.routing.Members(target) {
		if name == b.cfg.Name {
			return u.byName[name] == b && b.up()
		}
	}
	return false
}

// route chooses the backend for the login res completes (see
// upstream.Request for what the rules see). A backend this session holds
// from a failed login stays when the rules still allow it; otherwise it is
// let go. No member up: 421 and the session ends.
func (s *session) route(res auth.Result) (*upBackend, string, error) {
	ups := s.env.ups.Load()
	req := upstream.Request{User: res.User, Groups: res.Groups, Host: s.host, Listener: s.lst.Name, Client: s.clientIP}
	if target := ups.routing.Route(req); s.be != nil && s.be.up != nil && ups.holds(target, s.be.up) {
		return s.be.up, target, nil
	}
	if s.be != nil {
		s.be.quit()
		s.releaseBackend()
		s.be.close()
		s.be = nil
	}
	up, target, err := ups.choose(req)
	if err != nil {
		s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginBackendFailed, Reason: events.LoginReasonBackendDown, Code: ftp.StatusNotAvailable, Err: err})
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: no server behind the gateway can take the session now.")
		return nil, target, s.errorf("%w: %w", errBackendDown, err)
	}
	s.log.Debug().Str("backend", up.cfg.Name).Str("target", target).Msg("backend chosen")
	return up, target, nil
}

// dialRouted dials up (chosen, and counted, by choose), and when that
// fails, the other members of target that are up, each once (a backend
// that died since its last health check costs the client a delay, not the
// session). The last error is returned.
func (s *session) dialRouted(up *upBackend, target string) (*backend, error) {
	tried := map[*upBackend]bool{}
	for {
		dialed := time.Now()
		// up was counted when it was picked (choose, next), not at the end
		// of the dial: logins dialled at the same time see each other.
		be, err := s.dialBackend(up)
		s.emit(events.BackendDial{Session: s.ev(), Backend: up.cfg.Name, Duration: time.Since(dialed), Err: err})
		if err == nil {
			s.updateInfo(func(i *SessionInfo) { i.Backend = up.cfg.Name })
			return be, nil
		}
		up.sessions.Add(-1)
		up.checkSoon()
		tried[up] = true
		if s.ctx.Err() != nil {
			return nil, err
		}
		next := s.env.ups.Load().next(target, tried) // after a reload: the new set's members
		if next == nil {
			return nil, err
		}
		s.log.Warn().Err(err).Str("backend", up.cfg.Name).Str("next", next.cfg.Name).Msg("backend dial failed: trying another member of the pool")
		up = next
	}
}

// next picks another member of target that is up and not in tried,
// counting a session on it as choose does; nil when there is none.
func (u *upstreams) next(target string, tried map[*upBackend]bool) *upBackend {
	u.pickMu.Lock()
	defer u.pickMu.Unlock()
	bs, ms := u.members(target)
	for i := range ms {
		if tried[bs[i]] {
			ms[i].Up = false
		}
	}
	p := u.pickers[target]
	if p == nil {
		return nil // a reload removed the target
	}
	i, err := p.Pick(u.routing.BalanceOf(target), ms)
	if err != nil {
		return nil
	}
	bs[i].sessions.Add(1)
	return bs[i]
}

// releaseBackend counts a session's backend connection as gone.
func (s *session) releaseBackend() {
	if s.be == nil || s.be.up == nil {
		return
	}
	s.be.up.sessions.Add(-1)
	s.emit(events.BackendReleased{Session: s.ev(), Backend: s.be.up.cfg.Name})
	s.updateInfo(func(i *SessionInfo) { i.Backend = "" })
	s.be.up = nil
}

package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// Agent is the LAN's end: it keeps a tunnel to a gateway and connects the
// gateway's streams to the destinations its allow list names.
type Agent struct {
	cfg      atomic.Pointer[AgentConfig] // in force: SetConfig swaps it
	log      zerolog.Logger
	wg       sync.WaitGroup // stream handlers
	allow    atomic.Pointer[AllowList]
	open     atomic.Int64 // streams being handled
	relaying atomic.Int64 // streams admitted under max_streams
	live     liveTunnel   // the tunnels up, for SetConfig's check of their gateways
	draining atomic.Bool  // shutdown began: new streams are refused
	metrics  *AgentMetrics
	states   *gatewayStates
	locals   localAddrs // of the connections relaying now: the FROM hints taken
}

// localAddrs counts the agent's open connections per local address. A
// request's FROM (the control connection's local address, for its data
// connections) is taken only when it is one of them: the gateway cannot
// make the agent connect from any other of its host's addresses.
type localAddrs struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

func (l *localAddrs) add(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[netip.Addr]int{}
	}
	l.n[a]++
}

func (l *localAddrs) remove(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[a]--; l.n[a] <= 0 {
		delete(l.n, a)
	}
}

func (l *localAddrs) has(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[a.Unmap()] > 0
}

// AgentOption configures an Agent.
type AgentOption func(*Agent)

// WithAgentMetrics counts the agent's tunnels and streams on m.
func WithAgentMetrics(m *AgentMetrics) AgentOption { return func(a *Agent) { a.metrics = m } }

// NewAgent returns an agent for cfg (validated by the caller).
func NewAgent(cfg AgentConfig, log zerolog.Logger, opts ...AgentOption) *Agent {
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	a := &Agent{log: log.With().Str("agent_group", cfg.Group).Str("agent", cfg.Name).Logger(), states: newGatewayStates(cfg.Gateways)}
	for _, o := range opts {
		o(a)
	}
	a.cfg.Store(&cfg)
	a.SetAllow(cfg.Allow)
	return a
}

// conf is the configuration in force (its Allow is the one at start or at
// the last SetConfig: Allow() is the list in force).
func (a *Agent) conf() *AgentConfig { return a.cfg.Load() }

// Allow returns the allow list in force.
func (a *Agent) Allow() AllowList { return *a.allow.Load() }

// SetAllow replaces the allow list (a reload): each stream is judged by the
// list in force when its request arrives; streams already relaying go on.
func (a *Agent) SetAllow(al AllowList) {
	al = append(AllowList(nil), al...)
	a.allow.Store(&al)
	a.metrics.rules(al)
}

// Run keeps a tunnel up to each gateway, reconnecting with exponential
// backoff and jitter, until ctx ends; it returns once every stream has
// ended. Every gateway of a fleet (several gateways behind one balancer,
// each with its own agent listener) needs the group's agents: one that
// has none answers its sessions 421.
func (a *Agent) Run(ctx context.Context) error {
	defer a.wg.Wait()
	if len(a.Allow()) == 0 {
		a.log.Warn().Msg("the allow list is empty: every stream will be refused")
	}
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, gw := range a.conf().Gateways { // not reloaded
		if seen[gw] {
			continue
		}
		seen[gw] = true
		wg.Add(1)
		go func() { defer wg.Done(); a.keep(ctx, gw) }()
	}
	wg.Wait()
	return nil
}

// keep keeps a tunnel to gw up until ctx ends.
func (a *Agent) keep(ctx context.Context, gw string) {
	failures := 0
	for ctx.Err() == nil {
		l, err := a.connect(ctx, gw)
		if err == nil {
			err = a.live.set(a, l) // checked again against a reload since the handshake
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			a.metrics.connectFailed(gw)
			c := a.conf()
			d := backoff(c.backoffMin(), c.backoffMax(), failures)
			a.log.Warn().Err(err).Str("gateway", gw).Dur("retry_in", d).Msg("cannot reach the gateway")
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		now := time.Now()
		a.states.set(gw, StateUp, now)
		a.metrics.tunnelUp(gw, now)
		a.log.Info().Str("gateway", gw).Msg("tunnel up")
		a.serve(ctx, l.sess, l.fw)
		a.live.clear(l)
		a.states.set(gw, StateDown, time.Now())
		a.metrics.tunnelDown(gw)
		if ctx.Err() != nil {
			a.log.Info().Str("gateway", gw).Msg("tunnel closed: the agent is stopping")
			break
		}
		a.log.Warn().Str("gateway", gw).Msg("tunnel down")
		// A tunnel that went down waits too, so that a gateway that
		// accepts and drops cannot make the agent spin.
		c := a.conf()
		d := backoff(c.backoffMin(), c.backoffMax(), 1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

// backoff is min·2^(n-1) capped at max, with full jitter in its upper half.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// link is a tunnel just connected: its session and what its gateway
// showed (SetConfig checks it again when the gateway checks change).
type link struct {
	sess *yamux.Session
	fw   *frameWriter
	cs   tls.ConnectionState
	gw   string // the address dialled
	host string // its host: the default server name
}

// connect dials gw, checks its certificate, says hello and starts the
// yamux session (the agent is yamux's server: it accepts the streams),
// with the configuration in force when it starts.
func (a *Agent) connect(ctx context.Context, gw string) (*link, error) {
	cfg := a.conf()
	dctx, cancel := context.WithTimeout(ctx, cfg.handshake())
	defer cancel()
	host, _, err := net.SplitHostPort(gw)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         host, // SNI (an IP address is not sent)
		Certificates:       []tls.Certificate{cfg.Certificate},
		InsecureSkipVerify: true, // verified in VerifyConnection: pins and/or CA
		VerifyConnection:   func(cs tls.ConnectionState) error { return verifyGateway(cfg, cs, host) },
	}
	nd := net.Dialer{KeepAlive: cfg.keepAlive()}
	raw, err := nd.DialContext(dctx, "tcp", gw)
	if err != nil {
		return nil, err
	}
	bc := &batchConn{Conn: raw}
	c := tls.Client(bc, conf)
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	if err := c.HandshakeContext(dctx); err != nil {
		return nil, err
	}
	dl, _ := dctx.Deadline()
	_ = c.SetDeadline(dl)
	if err := WriteLine(c, helloLine(cfg.Group, cfg.Name)); err != nil {
		return nil, err
	}
	line, err := ReadLine(c)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if line != "OK" {
		rep, err := ParseReply(line)
		if err != nil {
			return nil, fmt.Errorf("hello: %w", err)
		}
		return nil, fmt.Errorf("the gateway refused the agent: %s: %s", rep.Code, rep.Text)
	}
	_ = c.SetDeadline(time.Time{})
	fw := &frameWriter{ReadWriteCloser: guardPings(c, a.log.With().Str("gateway", gw).Logger()), batch: bc}
	sess, err := yamux.Server(fw, muxConfig(cfg.keepAlive(), cfg.maxStreams()))
	if err != nil {
		return nil, err
	}
	ok = true
	return &link{sess: sess, fw: fw, cs: c.ConnectionState(), gw: gw, host: host}, nil
}

// verifyGateway checks the gateway's certificate against cfg's pins
// and/or CA (with its server name, or host).
func verifyGateway(cfg *AgentConfig, cs tls.ConnectionState, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the gateway sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(cfg.GatewayPins) > 0 {
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		ok := 0
		for _, p := range cfg.GatewayPins {
			ok |= subtle.ConstantTimeCompare(sum[:], p[:])
		}
		if ok != 1 {
			return errors.New("the gateway's certificate matches none of gateway_pins")
		}
	}
	if cfg.GatewayCA != nil {
		name := cfg.ServerName
		if name == "" {
			name = host
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: cfg.GatewayCA, Intermediates: inter}); err != nil {
			return fmt.Errorf("the gateway's certificate: %w", err)
		}
	}
	return nil
}

// serve accepts the gateway's streams until the session ends or ctx does;
// then it drains.
func (a *Agent) serve(ctx context.Context, sess *yamux.Session, fw *frameWriter) {
	drained := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { defer close(drained); a.drain(sess) })
	defer func() {
		if !stop() {
			<-drained
		}
	}()
	defer sess.Close()
	peak := a.conf().maxStreams() // the largest max_streams since the tunnel is up
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		peak = max(peak, a.conf().maxStreams())
		// A stream stays in the tunnel until both ends closed it (yamux
		// cannot reset one); a refused one can hold a receive window of
		// the gateway's bytes. A gateway that keeps far more streams open
		// than the agent serves is cut, so that it cannot make the agent
		// hold any number of them. (Streams the agent reset stay until
		// yamux's close timeout, whatever the gateway does: not counted.)
		// (A max_streams lowered by a reload: the streams the earlier one
		// let in stay, so the bound is the largest since the tunnel is up.)
		if n, limit := sess.NumStreams()-int(fw.lingering.Load()), tunnelStreams(peak); n > limit {
			a.log.Error().Int("streams", n).Int("limit", limit).Int("max_streams", peak).
				Msg("tunnel dropped: the gateway keeps more streams open on the tunnel than 2×(max_streams + 256)")
			_ = st.Close()
			return
		}
		a.wg.Add(1)
		go a.handle(st, fw)
	}
}

// tunnelStreams bounds the streams a tunnel holds: at most maxStreams the
// agent relays, and those the gateway still holds after the agent's end or
// refusal, at most the gateway's agents.max_streams (256 by default); twice
// that leaves room for what is in flight.
func tunnelStreams(maxStreams int) int { return 2 * (maxStreams + DefaultMaxStreams) }

// drainPoll is how often a draining agent looks whether its streams ended.
const drainPoll = 20 * time.Millisecond

// drain is the agent's shutdown: it refuses every new stream (draining:
// the gateway sends the group's new sessions to other agents) but the data
// connections of the sessions it carries, lets them run up to
// shutdown_grace, then closes the tunnel (ending what is left). It sends
// no yamux GoAway: that would stop the gateway from opening those data
// connections, and another agent's host would not do for them.
func (a *Agent) drain(sess *yamux.Session) {
	a.draining.Store(true)
	a.states.drain()
	grace := a.conf().shutdownGrace()
	n := a.open.Load()
	if n > 0 {
		a.log.Info().Int64("streams", n).Dur("grace", grace).Msg("shutting down: waiting for the streams relaying now")
	}
	deadline := time.Now().Add(grace)
	for a.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
	if n := a.open.Load(); n > 0 {
		a.log.Warn().Int64("streams", n).Dur("grace", grace).Msg("shutdown_grace is over: cutting the streams still open")
	}
	_ = sess.Close()
}

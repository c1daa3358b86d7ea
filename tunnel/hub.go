package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// Hub is the gateway's end: it accepts agents on a listener, keeps their
// sessions per group and opens streams through them (Dialer).
type Hub struct {
	cfg     atomic.Pointer[HubConfig] // the settings in force (SetConfig swaps them); Groups unset: pins
	log     zerolog.Logger
	metrics *Metrics

	mu     sync.Mutex
	groups map[string]*group
	pins   map[string][][32]byte // each group's pins (SetGroups replaces them)
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{} // handshakes in progress and live agents
	// pending counts connections not yet authenticated (TLS and hello):
	// beyond maxPending, new ones are closed at once, so that strangers
	// cannot hold the listener with slow handshakes.
	pending atomic.Int32
	closed  bool
	wg      sync.WaitGroup
}

// maxPending bounds the connections in their TLS handshake or hello.
const maxPending = 64

// group is the live agents of one group.
type group struct {
	agents  []*agent
	next    int           // round robin start among equals
	changed chan struct{} // closed (and replaced) when an agent joins
}

// agent is one connected agent, as the Hub sees it.
type agent struct {
	group, name, remote string
	pin                 [32]byte  // its certificate's SPKI SHA-256
	since               time.Time // when it joined
	sess                *yamux.Session
	fw                  *frameWriter // under sess: resets streams
	open                atomic.Int32 // streams open through it
	goneAway            atomic.Bool  // it is shutting down: no new sessions' streams (data connections of its own go on)
	silentSince         atomic.Int64 // UnixNano of a stream request it left unanswered in silence (dialer.go); 0: none
}

// setAside reports whether a left a stream request unanswered in silence
// (dialer.go) and has not been heard from since: it takes no new session.
// Heard from again, it is back.
func (a *agent) setAside() bool {
	t := a.silentSince.Load()
	if t == 0 {
		return false
	}
	if a.fw.heardSince(time.Unix(0, t)) {
		a.silentSince.CompareAndSwap(t, 0)
		return false
	}
	return true
}

// NewHub returns a Hub for cfg (validated by the caller); m may be nil.
func NewHub(cfg HubConfig, log zerolog.Logger, m *Metrics) *Hub {
	h := &Hub{log: log, metrics: m, groups: map[string]*group{}, pins: clonePins(cfg.Groups), lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
	cfg.Groups = nil
	h.cfg.Store(&cfg)
	for name := range h.pins {
		h.groups[name] = &group{changed: make(chan struct{})}
	}
	m.watch(h.groupStats)
	return h
}

// groupStats is each configured group's agents and the streams open
// through them, for the metrics.
func (h *Hub) groupStats() []groupStat {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]groupStat, 0, len(h.groups))
	for name, g := range h.groups {
		st := groupStat{name: name, agents: len(g.agents)}
		for _, a := range g.agents {
			st.streams += int(a.open.Load())
		}
		out = append(out, st)
	}
	return out
}

// Serve accepts agents on ln until Close. It returns nil after Close.
func (h *Hub) Serve(ln net.Listener) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	h.lns[ln] = struct{}{}
	h.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			h.mu.Lock()
			closed := h.closed
			h.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			h.log.Warn().Err(err).Dur("retry_in", delay).Msg("agent listener: accept failed")
			time.Sleep(delay)
			continue
		}
		delay = 0
		if h.pending.Load() >= maxPending {
			_ = c.Close()
			h.metrics.refusedAgent()
			h.log.Warn().Str("agent_addr", c.RemoteAddr().String()).Int("pending", maxPending).Msg("agent refused: too many unauthenticated connections")
			continue
		}
		if !h.track(c) {
			_ = c.Close()
			return nil
		}
		h.pending.Add(1)
		h.wg.Add(1)
		go h.serveAgent(c)
	}
}

func (h *Hub) track(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Hub) untrack(c net.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// Close stops accepting, ends every agent's session and waits for them.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	for ln := range h.lns {
		_ = ln.Close()
	}
	for c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// serveAgent authenticates an agent (pinned certificate and the group it
// claims) and keeps its session until it ends.
func (h *Hub) serveAgent(raw net.Conn) {
	defer h.wg.Done()
	defer h.untrack(raw)
	defer raw.Close()
	log := h.log.With().Str("agent_addr", raw.RemoteAddr().String()).Logger()
	authenticated := sync.OnceFunc(func() { h.pending.Add(-1) })
	defer authenticated()
	var pinGroups []string
	var pin [32]byte
	cfg := h.conf() // the settings in force when the agent connected
	conf := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequireAnyClientCert,
		GetCertificate: cfg.GetCertificate,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			pin = sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			pinGroups = h.groupsOf(pin)
			if len(pinGroups) == 0 {
				return errors.New("agent certificate matches no group's pins")
			}
			return nil
		},
	}
	_ = raw.SetDeadline(time.Now().Add(cfg.handshake()))
	bc := &batchConn{Conn: raw}
	tc := tls.Server(bc, conf)
	if err := tc.Handshake(); err != nil {
		log.Warn().Err(err).Msg("agent refused: TLS handshake failed")
		h.metrics.refusedAgent()
		return
	}
	line, err := ReadLine(tc)
	if err != nil {
		log.Warn().Err(err).Msg("agent refused: no hello")
		h.metrics.refusedAgent()
		return
	}
	f := strings.Split(line, " ")
	if len(f) != 3 || f[0] != "AGENT" || !isToken(f[1]) || !isToken(f[2]) {
		_ = WriteLine(tc, Reply{Code: CodeBadRequest, Text: "want AGENT group name"}.String())
		log.Warn().Str("hello", sanitize(line)).Msg("agent refused: malformed hello")
		h.metrics.refusedAgent()
		return
	}
	groupName, name := f[1], f[2]
	log = log.With().Str("agent_group", groupName).Str("agent", name).Logger()
	if !contains(pinGroups, groupName) {
		_ = WriteLine(tc, Reply{Code: CodeForbidden, Text: "certificate not pinned for group " + groupName}.String())
		log.Warn().Strs("pinned_groups", pinGroups).Msg("agent refused: its certificate is not pinned for the group it claims")
		h.metrics.refusedAgent()
		return
	}
	authenticated()
	if err := WriteLine(tc, "OK"); err != nil {
		log.Warn().Err(err).Msg("agent lost after hello")
		return
	}
	_ = raw.SetDeadline(time.Time{})
	fw := &frameWriter{ReadWriteCloser: guardPings(tc, log), batch: bc}
	sess, err := yamux.Client(fw, muxConfig(cfg.keepAlive(), cfg.maxStreams()))
	if err != nil {
		log.Error().Err(err).Msg("agent session failed")
		return
	}
	a := &agent{group: groupName, name: name, remote: raw.RemoteAddr().String(), pin: pin, since: time.Now(), sess: sess, fw: fw}
	if !h.add(a) {
		_ = sess.Close()
		log.Warn().Msg("agent refused: its pin or group was removed while it connected")
		return
	}
	log.Info().Msg("agent connected")
	refused := make(chan struct{})
	go func() { defer close(refused); refuseAgentStreams(sess, log) }()
	<-sess.CloseChan()
	<-refused
	h.remove(a)
	log.Info().Msg("agent disconnected")
}

// refuseAgentStreams ends sess if the agent opens a stream: the gateway
// opens them all. Left unaccepted, each would wait in yamux's backlog with
// up to a receive window of the agent's bytes. It returns when sess ends.
func refuseAgentStreams(sess *yamux.Session, log zerolog.Logger) {
	st, err := sess.AcceptStream()
	if err != nil {
		return // the session ended
	}
	log.Warn().Uint32("stream", st.StreamID()).Msg("agent dropped: it opened a stream toward the gateway")
	_ = sess.Close()
}

// groupsOf is the groups whose pins include pin.
func (h *Hub) groupsOf(pin [32]byte) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, pins := range h.pins {
		if pinned(pins, pin) {
			out = append(out, name)
		}
	}
	return out
}

// pinned reports whether pin is in pins (in constant time per pin).
func pinned(pins [][32]byte, pin [32]byte) bool {
	ok := 0
	for _, p := range pins {
		ok |= subtle.ConstantTimeCompare(pin[:], p[:])
	}
	return ok == 1
}

// add makes a live: unless the Hub is closed, or a reload removed its
// group or its pin since its handshake.
func (h *Hub) add(a *agent) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[a.group]
	if h.closed || g == nil || !pinned(h.pins[a.group], a.pin) {
		return false
	}
	g.agents = append(g.agents, a)
	close(g.changed)
	g.changed = make(chan struct{})
	return true
}

func (h *Hub) remove(a *agent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[a.group]
	if g == nil {
		return // its group was removed (SetGroups)
	}
	for i, b := range g.agents {
		if b == a {
			g.agents = append(g.agents[:i], g.agents[i+1:]...)
			break
		}
	}
}

// Agents is the number of agents connected in group.
func (h *Hub) Agents(group string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.groups[group]; g != nil {
		return len(g.agents)
	}
	return 0
}

// pick chooses the live agent of g with the fewest open streams (round
// robin among equals) that has room for one more, leaving out those in
// skip (tried already), those shutting down (goneAway: their own
// sessions' data connections go through DialData) and those set aside
// (silent). With no agent left to try at all it returns no channel; with
// candidates but none with room, a channel closed when the group changes.
func (h *Hub) pick(name string, skip []*agent) (*agent, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[name]
	if g == nil {
		return nil, nil, fmt.Errorf("tunnel: no agent group %q", name)
	}
	n := len(g.agents)
	candidates := 0
	var best *agent
	maxStreams := h.conf().maxStreams()
	for i := range n {
		a := g.agents[(g.next+i)%n]
		if a.sess.IsClosed() || a.goneAway.Load() || a.setAside() || slices.Contains(skip, a) {
			continue
		}
		candidates++
		if int(a.open.Load()) >= maxStreams {
			continue
		}
		if best == nil || a.open.Load() < best.open.Load() {
			best = a
		}
	}
	if best != nil {
		g.next = (g.next + 1) % max(n, 1)
		best.open.Add(1)
		return best, nil, nil
	}
	if candidates == 0 && len(skip) > 0 {
		return nil, nil, nil
	}
	return nil, g.changed, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ctxDeadline is ctx's deadline, or d from now.
func ctxDeadline(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}

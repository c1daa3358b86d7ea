package tunnel

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// sourcedAgents runs a Hub and two agents of group lan, a connecting from
// 127.0.0.1 and b from 127.0.0.2 (source_address: two hosts as the
// destination sees them); edit changes each agent's configuration.
func sourcedAgents(t *testing.T, dst string, edit func(name string, c *AgentConfig)) *Hub {
	t.Helper()
	p := newPKI(t)
	la, lb := p.client(t, "a"), p.client(t, "b")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}}, zerolog.Nop())
	for _, ag := range []struct{ name, source string }{{"a", "127.0.0.1"}, {"b", "127.0.0.2"}} {
		leaf := la
		if ag.name == "b" {
			leaf = lb
		}
		cfg := agentConfig(p, leaf, gw, "lan", ag.name, dst)
		cfg.Source = netip.MustParseAddr(ag.source)
		if edit != nil {
			edit(ag.name, &cfg)
		}
		startAgent(t, cfg)
	}
	waitAgents(t, h, "lan", 2)
	return h
}

func localIP(c net.Conn) netip.Addr {
	return c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
}

// TestDataFollowsControl: with agents on two hosts (source_address), every
// data connection of a session goes through the agent that carries its
// control connection (it comes from the same address, as vsftpd
// requires), whichever agent has fewer streams open.
func TestDataFollowsControl(t *testing.T) {
	dst := echoServer(t)
	h := sourcedAgents(t, dst, nil)
	d := h.Dialer("lan")
	var ctrls []net.Conn
	froms := map[netip.Addr]int{}
	for range 4 {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctrls = append(ctrls, c)
		froms[localIP(c)]++
	}
	if froms[netip.MustParseAddr("127.0.0.1")] != 2 || froms[netip.MustParseAddr("127.0.0.2")] != 2 {
		t.Fatalf("control connections by source %v, want two from each agent", froms)
	}
	// Load one agent more than the other: data connections still follow
	// their control connection.
	for i, ctrl := range ctrls {
		from := localIP(ctrl)
		for range 3 + i {
			c, err := d.DialData(dialCtx(t), dst, ctrl)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := localIP(c); got != from {
				t.Fatalf("a data connection for a control connection from %s came from %s", from, got)
			}
			echoOnce(t, c)
		}
	}
}

// TestRefusalTriesAnotherAgent: a stream an agent refuses (busy, not in its
// allow list) is tried on the group's other agent, and a dial every agent
// refuses fails with the last refusal; a data connection is not tried
// elsewhere (it must come from its control connection's host).
func TestRefusalTriesAnotherAgent(t *testing.T) {
	dst := echoServer(t)
	other := echoServer(t)
	h := sourcedAgents(t, dst, func(name string, c *AgentConfig) {
		if name == "a" {
			c.MaxStreams = 1
			al, err := ParseAllowList([]string{dst, other})
			if err != nil {
				t.Fatal(err)
			}
			c.Allow = al // b allows only dst
		}
	})
	d := h.Dialer("lan")
	b := netip.MustParseAddr("127.0.0.2")
	var onB net.Conn
	for range 4 {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatalf("a's max_streams is 1, b has room: %v", err)
		}
		defer c.Close()
		if localIP(c) == b {
			onB = c
		}
	}
	// a holds one stream (its max), b three: the next goes to a by count,
	// is refused busy, and lands on b.
	c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatalf("a busy: %v", err)
	}
	defer c.Close()
	if got := localIP(c); got != b {
		t.Fatalf("the stream a refused came from %s, want b's %s", got, b)
	}
	// other: a allows it but is busy, b does not allow it.
	start := time.Now()
	_, err = d.DialBackend(dialCtx(t), other, netip.Addr{})
	var re *RefusedError
	if !errors.As(err, &re) || time.Since(start) > 3*time.Second {
		t.Fatalf("a destination every agent refuses: %v after %v", err, time.Since(start))
	}
	// A data connection of a session on b that b refuses is not tried on a.
	_, err = d.DialData(dialCtx(t), other, onB)
	if !errors.As(err, &re) || re.Agent != "b" || re.Code != CodeRefused {
		t.Fatalf("a data dial b refuses: %v, want b's refusal", err)
	}
}

// TestDialDataSameAgent: DialData opens a session's data connections
// through the agent that carries its control connection even when both
// agents connect from the same local address (two hosts' containers), and
// fails with ErrTunnelLost once that agent is gone; a control connection
// that is not one of the Hub's streams dials as DialBackend does.
func TestDialDataSameAgent(t *testing.T) {
	h, a, b, dst := twoAgents(t) // both connect from 127.0.0.1
	d := h.Dialer("lan")
	ctrl, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	carrier := ctrl.(*streamConn).agent
	for range 6 {
		c, err := d.DialData(dialCtx(t), dst, ctrl)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.(*streamConn).agent; got != carrier {
			t.Fatalf("a data connection went through agent %s, its control connection through %s", got.name, carrier.name)
		}
		echoOnce(t, c) // open and closed: the other agent has fewer streams each time
	}
	plain, err := net.Dial("tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	c, err := d.DialData(dialCtx(t), dst, plain)
	if err != nil {
		t.Fatalf("DialData with a control connection of no tunnel: %v", err)
	}
	echoOnce(t, c)
	ctrl.Close() // or the agent's shutdown waits for it
	map[string]*runningAgent{"a": a, "b": b}[carrier.name].stop()
	waitAgents(t, h, "lan", 1)
	if _, err := d.DialData(dialCtx(t), dst, ctrl); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("DialData after the control connection's agent left: %v, want ErrTunnelLost", err)
	}
}

// TestDrainingAgentTakesItsData: an agent that drains still connects the
// data connections of the sessions whose control connection it carries
// (through another agent's host the server would refuse them), and
// refuses every other stream (draining): the Hub then sends new sessions
// to the group's other agents, without asking the draining one again.
func TestDrainingAgentTakesItsData(t *testing.T) {
	h, a, b, dst := twoAgents(t)
	d := h.Dialer("lan")
	ctrl, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	carrier := ctrl.(*streamConn).agent
	draining, other := a, b
	if carrier.name == "b" {
		draining, other = b, a
	}
	draining.cancel()
	waitHealth(t, draining.agent, http.StatusServiceUnavailable, "draining")
	// Held open: the other agent soon has more streams than the draining
	// one, which would be picked by its count.
	for i := range 5 {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatalf("a new session while an agent drains: %v", err)
		}
		defer c.Close()
		if got := c.(*streamConn).agent.name; got != other.agent.conf().Name {
			t.Fatalf("new session %d went through the draining agent %s", i, got)
		}
	}
	if n := strings.Count(draining.log.String(), `"code":"draining"`); n != 1 {
		t.Errorf("the draining agent refused %d streams, want 1 (the Hub asks it once)\n%s", n, draining.log.String())
	}
	for range 3 {
		c, err := d.DialData(dialCtx(t), dst, ctrl)
		if err != nil {
			t.Fatalf("a data connection of a session the draining agent carries: %v", err)
		}
		if got := c.(*streamConn).agent; got != carrier {
			t.Fatalf("the data connection went through %s", got.name)
		}
		echoOnce(t, c)
	}
	echoOnce(t, ctrl)
}

// TestAgentJoinsEveryGateway: an agent keeps a tunnel to each gateway it
// lists: in a fleet (gateways behind one balancer, each with its own agent
// listener) a gateway the group's agents did not join answers every
// session 421. It used to join the first that answered, only.
func TestAgentJoinsEveryGateway(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	groups := map[string][][32]byte{"lan": {pinOf(leaf)}}
	h1, gw1 := startHub(t, p, "127.0.0.1:0", groups, zerolog.Nop())
	h2, gw2 := startHub(t, p, "127.0.0.1:0", groups, zerolog.Nop())
	dst := echoServer(t)
	cfg := agentConfig(p, leaf, gw1, "lan", "a", dst)
	cfg.Gateways = []string{gw1, gw2, gw1}
	r := startAgent(t, cfg)
	waitAgents(t, h1, "lan", 1)
	waitAgents(t, h2, "lan", 1)
	for _, h := range []*Hub{h1, h2} {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		echoOnce(t, c)
	}
	if up := r.agent.Health(); up.Status != StateUp || len(up.Gateways) != 2 || up.Gateways[0].State != StateUp || up.Gateways[1].State != StateUp {
		t.Fatalf("health with both tunnels up: %+v", up)
	}
	h1.Close() // one gateway goes: the other keeps its tunnel
	waitAgents(t, h2, "lan", 1)
	c, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c)
}

// blackHole relays TCP to target until freeze; from then on it forwards
// nothing and closes nothing: a host that lost power or its network, as
// its peer sees it (no FIN, no RST). thaw forwards again, what was held
// first: a host that was only slow.
func blackHole(t *testing.T, target string) (addr string, freeze, thaw func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var gate atomic.Pointer[chan struct{}] // not nil: frozen until closed
	var mu sync.Mutex
	var conns []net.Conn
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if g := gate.Load(); g != nil {
				<-*g // held, not lost
			}
			if n > 0 {
				_, _ = dst.Write(buf[:n])
			}
			if err != nil {
				_ = dst.Close()
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			go pipe(d, c)
			go pipe(c, d)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	freeze = func() { g := make(chan struct{}); gate.Store(&g) }
	thaw = func() {
		if g := gate.Swap(nil); g != nil {
			close(*g)
		}
	}
	t.Cleanup(thaw)
	return ln.Addr().String(), freeze, thaw
}

// silentPair runs a Hub (with a keepalive too long to notice a dead
// tunnel) and agents a and b of group lan, a through a blackHole; b holds
// two streams, a none, so that a is the next dial's first choice.
func silentPair(t *testing.T) (d *Dialer, h *Hub, dst string, freeze, thaw func()) {
	t.Helper()
	p := newPKI(t)
	la, lb := p.client(t, "a"), p.client(t, "b")
	cfg := hubConfig(p.gateway.TLS, map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}})
	cfg.KeepAlive = time.Minute // the keepalive would notice late
	h, gw := serveHub(t, cfg, "127.0.0.1:0", zerolog.Nop(), nil)
	dst = echoServer(t)
	hole, freeze, thaw := blackHole(t, gw)
	startAgent(t, agentConfig(p, la, hole, "lan", "a", dst))
	startAgent(t, agentConfig(p, lb, gw, "lan", "b", dst))
	waitAgents(t, h, "lan", 2)
	d = h.Dialer("lan")
	// b holds two streams, a none: a is the next dial's first choice.
	var onA []net.Conn
	for onB := 0; onB < 2; {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if c.(*streamConn).agent.name == "b" {
			t.Cleanup(func() { c.Close() })
			onB++
		} else {
			onA = append(onA, c)
		}
	}
	for _, c := range onA {
		echoOnce(t, c)
	}
	waitValue(t, "a's streams", func() float64 {
		for _, ag := range h.AgentsOf("lan") {
			if ag.Name == "a" {
				return float64(ag.Streams)
			}
		}
		return -1
	}, 0)
	time.Sleep(100 * time.Millisecond) // the ends of a's streams come back
	return d, h, dst, freeze, thaw
}

// TestSilentAgentLeft: an agent whose host goes silent (power or network
// lost: no FIN) is set aside once it leaves a stream request unanswered
// and sends nothing at all for silentAgent, and the dial goes on with
// another agent of the group; the next dials skip it at once, until it is
// heard from again (it was only slow). Its few open streams made it every new session's
// first choice, each of which waited for the whole connect timeout and
// failed (421) until yamux's keepalive noticed, twice agents.keepalive
// later.
func TestSilentAgentLeft(t *testing.T) {
	d, h, dst, freeze, thaw := silentPair(t)
	freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := d.DialBackend(ctx, dst, netip.Addr{})
	if err != nil {
		t.Fatalf("a dial while one agent's host is silent: %v after %v", err, time.Since(start))
	}
	if got := c.(*streamConn).agent.name; got != "b" {
		t.Fatalf("the dial went through %s", got)
	}
	echoOnce(t, c)
	// Set aside, not dropped: its tunnel is left to the keepalive (a slow
	// agent loses nothing), but the next dials go elsewhere at once.
	if n := h.Agents("lan"); n != 2 {
		t.Errorf("%d agents after the silence, want 2 (the silent one set aside, not dropped)", n)
	}
	states := func() map[string]string {
		m := map[string]string{}
		for _, ai := range h.AgentsOf("lan") {
			m[ai.Name] = ai.State
		}
		return m
	}
	if got := states(); got["a"] != AgentSilent || got["b"] != AgentUp {
		t.Errorf("AgentsOf states after the silence: %v, want a silent, b up", got)
	}
	for i := range 3 {
		start := time.Now()
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.(*streamConn).agent.name; got != "b" || time.Since(start) > silentMin {
			t.Fatalf("dial %d after the silence: through %s in %v", i, got, time.Since(start))
		}
		defer c.Close() // b busier than a: a is the first choice once back
	}
	// Only slow: heard from again, a takes new sessions again.
	thaw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		got := c.(*streamConn).agent.name
		echoOnce(t, c)
		if got == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent set aside was heard from again but takes no new session")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := states(); got["a"] != AgentUp {
		t.Errorf("AgentsOf states once a was heard from again: %v, want a up", got)
	}
}

// TestSilentAgentShortDeadline: a dial whose deadline comes before
// silentAgent (a health check's timeout) fails, but sets the silent agent aside
// (nothing heard for silentMin or more): the next check goes to another
// agent, instead of every check failing and the backend going down.
func TestSilentAgentShortDeadline(t *testing.T) {
	d, _, dst, freeze, _ := silentPair(t)
	freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	if _, err := d.DialBackend(ctx, dst, netip.Addr{}); err == nil {
		t.Fatal("a dial through the silent agent, deadline before silentAgent: no error")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel2()
	c, err := d.DialBackend(ctx2, dst, netip.Addr{})
	if err != nil {
		t.Fatalf("the next dial: %v", err)
	}
	echoOnce(t, c)
}

package tunnel

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
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

// TestDataFollowsControl: with agents on two hosts, every data connection
// of a session goes through the agent that carries its control connection
// (it comes from the same address, as vsftpd requires), whichever agent
// has fewer streams open.
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
			c, err := d.DialBackend(dialCtx(t), dst, from)
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
	// Once no stream comes from an address (its agent gone), any agent.
	c, err := d.DialBackend(dialCtx(t), dst, netip.MustParseAddr("127.0.0.9"))
	if err != nil {
		t.Fatalf("a data dial from an address no agent carries: %v", err)
	}
	c.Close()
}

// TestRefusalTriesAnotherAgent: a stream an agent refuses (busy, not in its
// allow list) is tried on the group's other agent; a data connection is
// not (it must come from its control connection's host), and a dial every
// agent refuses fails with the last refusal.
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
	for range 4 {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatalf("a's max_streams is 1, b has room: %v", err)
		}
		defer c.Close()
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
	// A data connection from b's address that b refuses is not tried on a.
	_, err = d.DialBackend(dialCtx(t), other, b)
	if !errors.As(err, &re) || re.Agent != "b" || re.Code != CodeRefused {
		t.Fatalf("a data dial b refuses: %v, want b's refusal", err)
	}
}

// TestDrainingAgentKeepsItsSessions: an agent shutting down takes no new
// session (the first one it refuses `draining` goes to the other agent,
// and the Hub sends it no more), but it still connects the data
// connections of the sessions it carries: they must come from its host.
func TestDrainingAgentKeepsItsSessions(t *testing.T) {
	dst := echoServer(t)
	var agents = map[string]*runningAgent{}
	p := newPKI(t)
	la, lb := p.client(t, "a"), p.client(t, "b")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}}, zerolog.Nop())
	for name, leaf := range map[string]*testpki.Leaf{"a": la, "b": lb} {
		cfg := agentConfig(p, leaf, gw, "lan", name, dst)
		cfg.Source = netip.MustParseAddr(map[string]string{"a": "127.0.0.1", "b": "127.0.0.2"}[name])
		cfg.ShutdownGrace = 10 * time.Second
		agents[name] = startAgent(t, cfg)
	}
	waitAgents(t, h, "lan", 2)
	d := h.Dialer("lan")
	aIP, bIP := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	var ctrl net.Conn
	for ctrl == nil {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if localIP(c) == aIP {
			ctrl = c
		} else {
			defer c.Close()
		}
	}
	defer ctrl.Close()
	agents["a"].cancel()
	waitHealth(t, agents["a"].agent, http.StatusServiceUnavailable, "draining")
	for i := range 3 {
		c, err := d.DialBackend(dialCtx(t), dst, aIP)
		if err != nil {
			t.Fatalf("data connection %d of a session on the draining agent: %v", i, err)
		}
		if got := localIP(c); got != aIP {
			t.Fatalf("a data connection of a's session came from %s", got)
		}
		echoOnce(t, c)
	}
	for i := range 3 {
		c, err := d.DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatalf("new session %d while a drains: %v", i, err)
		}
		if got := localIP(c); got != bIP {
			t.Fatalf("new session %d went through the draining agent (%s)", i, got)
		}
		echoOnce(t, c)
	}
	echoOnce(t, ctrl)
}

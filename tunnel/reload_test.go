package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testnet"
	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// waitUp waits for r's tunnel to be up on the agent's side (the Hub may
// list it a moment before: SetConfig checks only a tunnel up).
func waitUp(t *testing.T, r *runningAgent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.agent.Health().Status != StateUp {
		if time.Now().After(deadline) {
			t.Fatal("the agent's tunnel is not up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlyAgent is the one agent of group lan.
func onlyAgent(t *testing.T, h *Hub) AgentInfo {
	t.Helper()
	as := h.AgentsOf("lan")
	if len(as) != 1 {
		t.Fatalf("%d agents in lan, want 1", len(as))
	}
	return as[0]
}

// TestHubSetConfigCertificate: the Hub's certificate replaced while an
// agent's tunnel carries a stream: the tunnel and its stream go on, the
// next handshakes show the new certificate (an agent pinning only it
// joins, one pinning only the old one is refused).
func TestHubSetConfigCertificate(t *testing.T) {
	p := newPKI(t)
	newGW, err := p.ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	la, lb, lc := p.client(t, "a"), p.client(t, "b"), p.client(t, "c")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la), pinOf(lb), pinOf(lc)}}, zerolog.Nop())
	dst := echoServer(t)
	cfg := agentConfig(p, la, gw, "lan", "a", dst)
	cfg.GatewayPins = [][32]byte{pinOf(p.gateway), pinOf(newGW)} // both: the agent was told first
	startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	before := onlyAgent(t, h)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testnet.Ping(t, c, "before")

	cert := newGW.TLS
	h.SetConfig(HubConfig{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		WaitForAgent: 300 * time.Millisecond, KeepAlive: time.Second})
	testnet.Ping(t, c, "the stream after the rotation")
	if now := onlyAgent(t, h); now.Since != before.Since {
		t.Fatal("the agent's tunnel was replaced by the rotation")
	}

	newOnly := agentConfig(p, lb, gw, "lan", "b", dst)
	newOnly.GatewayPins = [][32]byte{pinOf(newGW)}
	startAgent(t, newOnly)
	waitAgents(t, h, "lan", 2)

	oldOnly := startAgent(t, agentConfig(p, lc, gw, "lan", "c", dst)) // pins p.gateway alone
	waitLog(t, oldOnly.log, "matches none of gateway_pins")
	if n := h.Agents("lan"); n != 2 {
		t.Fatalf("%d agents: one pinning the old certificate joined", n)
	}
	testnet.Ping(t, c, "the stream at the end")
}

// TestHubSetConfigMaxStreams: max_streams lowered while a stream is open
// bounds the next dials on the agent already connected (a dial then waits
// wait_for_agent, also reloaded, and fails); the open stream goes on, and
// once it ends a dial gets through again.
func TestHubSetConfigMaxStreams(t *testing.T) {
	dst := echoServer(t)
	h, _ := lan(t, dst, nil)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	h.SetConfig(HubConfig{MaxStreams: 1, WaitForAgent: 100 * time.Millisecond, KeepAlive: time.Second})
	start := time.Now()
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{}); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("a second stream with max_streams lowered to 1: %v, want ErrNoAgent", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("the dial waited %v: the reloaded wait_for_agent (100ms) was not applied", d)
	}
	testnet.Ping(t, c, "the stream open before")
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c2, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
		if err == nil {
			testnet.Ping(t, c2, "after the first ended")
			c2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream after the first ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentSetConfigCertificate: the agent's certificate replaced while
// its tunnel carries a stream: the tunnel and the stream go on (the
// gateway still sees the old pin), and the next tunnel shows the new one:
// once the gateway drops the old pin, the agent is back with the new.
func TestAgentSetConfigCertificate(t *testing.T) {
	p := newPKI(t)
	old, next := p.client(t, "a"), p.client(t, "a2")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(old), pinOf(next)}}, zerolog.Nop())
	dst := echoServer(t)
	cfg := agentConfig(p, old, gw, "lan", "a", dst)
	r := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cfg.Certificate = next.TLS
	if err := r.agent.SetConfig(cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	testnet.Ping(t, c, "the stream after the rotation")
	if a := onlyAgent(t, h); a.Pin != ShortPin(pinOf(old)) {
		t.Fatalf("pin %s: the tunnel was replaced", a.Pin)
	}

	h.SetGroups(map[string][][32]byte{"lan": {pinOf(next)}}) // the old pin retired
	deadline := time.Now().Add(10 * time.Second)
	for {
		if as := h.AgentsOf("lan"); len(as) == 1 && as[0].Pin == ShortPin(pinOf(next)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not come back with its new certificate: %+v\n%s", h.AgentsOf("lan"), r.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentSetConfigRevokesGateway: a reload that leaves the gateway's
// certificate out of gateway_pins cuts the tunnel up, with its stream (the
// gateway reads the end as lost, not as the stream's end), and the agent
// does not come back; a reload that changes nothing of the gateway checks
// leaves the tunnel alone, and so does one whose new pins still match.
func TestAgentSetConfigRevokesGateway(t *testing.T) {
	p := newPKI(t)
	other, err := p.ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	dst := echoServer(t)
	var cfg AgentConfig
	h, r := lan(t, dst, func(c *AgentConfig) { cfg = *c })
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cfg.MaxStreams = 8
	if err := r.agent.SetConfig(cfg); err != nil {
		t.Fatalf("a reload without a change of the gateway checks: %v", err)
	}
	cfg.GatewayPins = append(cfg.GatewayPins, pinOf(other))
	if err := r.agent.SetConfig(cfg); err != nil {
		t.Fatalf("a pin added: %v", err)
	}
	testnet.Ping(t, c, "after two reloads that keep the gateway")

	cfg.GatewayPins = [][32]byte{pinOf(other)} // the gateway's pin revoked
	if err := r.agent.SetConfig(cfg); err == nil {
		t.Fatal("SetConfig without the gateway's pin: no cut reported")
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("the stream on the revoked gateway's tunnel: %v, want ErrTunnelLost", err)
	}
	waitAgents(t, h, "lan", 0)
	waitLog(t, r.log, "tunnel cut: the gateway's certificate no longer passes")
	time.Sleep(300 * time.Millisecond) // several reconnections (backoff 20-100ms)
	if n := h.Agents("lan"); n != 0 {
		t.Fatalf("the agent came back to a gateway it no longer pins (%d agents)", n)
	}
	waitLog(t, r.log, "matches none of gateway_pins")
}

// TestAgentSetConfigStreams: max_streams lowered refuses the next stream
// busy while one relays (which goes on), and source_address and
// dial_timeout apply to the next streams.
func TestAgentSetConfigStreams(t *testing.T) {
	dst := echoServer(t)
	var cfg AgentConfig
	h, r := lan(t, dst, func(c *AgentConfig) { cfg = *c })
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg.MaxStreams = 1
	_ = r.agent.SetConfig(cfg)
	_, err = h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeBusy {
		t.Fatalf("a second stream with max_streams lowered to 1: %v, want busy", err)
	}
	testnet.Ping(t, c, "the stream open before")
	c.Close()

	cfg.MaxStreams = 4
	cfg.Source = netip.MustParseAddr("127.0.0.2")
	cfg.DialTimeout = 3 * time.Second
	_ = r.agent.SetConfig(cfg)
	if got := r.agent.Config(); got.DialTimeout != 3*time.Second || got.MaxStreams != 4 {
		t.Fatalf("Config after SetConfig: %+v", got)
	}
	var conns []net.Conn
	for range 2 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
		if err != nil {
			t.Fatalf("max_streams raised to 4: %v", err)
		}
		conns = append(conns, c)
		if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
			t.Errorf("a stream after source_address 127.0.0.2 comes from %s", got)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestAgentSetConfigGatewayCA: with a gateway CA, a reload whose CA no
// longer issued the gateway's certificate, or whose server name it does
// not carry, cuts the tunnel up; the same CA loaded again (another pool,
// same certificates) does not.
func TestAgentSetConfigGatewayCA(t *testing.T) {
	p := newPKI(t)
	stranger := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	dst := echoServer(t)
	cfg := agentConfig(p, leaf, gw, "lan", "a", dst)
	cfg.GatewayPins, cfg.GatewayCA, cfg.ServerName = nil, p.ca.Pool(), "localhost"
	r := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	waitUp(t, r)
	since := onlyAgent(t, h).Since

	cfg.GatewayCA = p.ca.Pool() // a reload reads the file again
	if err := r.agent.SetConfig(cfg); err != nil {
		t.Fatalf("the same CA again: %v", err)
	}
	cfg.ServerName = "gateway.example" // not in the gateway's certificate
	if err := r.agent.SetConfig(cfg); err == nil {
		t.Fatal("a server name the gateway's certificate does not carry: no cut")
	}
	waitLog(t, r.log, "tunnel cut")
	cfg.ServerName = "localhost"
	_ = r.agent.SetConfig(cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if as := h.AgentsOf("lan"); len(as) == 1 && as[0].Since.After(since) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not come back once the server name matched again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitUp(t, r)
	cfg.GatewayCA = stranger.ca.Pool()
	if err := r.agent.SetConfig(cfg); err == nil {
		t.Fatal("a CA that did not issue the gateway's certificate: no cut")
	}
	waitAgents(t, h, "lan", 0)
}

// TestAgentLiveSetChecksReload: a tunnel whose handshake passed the gateway
// checks of before a reload, but that comes up after it (the reload found
// no tunnel to check), is checked again as it comes up and closed when its
// gateway no longer passes them.
func TestAgentLiveSetChecksReload(t *testing.T) {
	p := newPKI(t)
	other, err := p.ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	cfg := agentConfig(p, p.client(t, "a"), "127.0.0.1:1", "lan", "a")
	a := NewAgent(cfg, zerolog.Nop())
	link := func() *link {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		sess, err := yamux.Server(c1, muxConfig(time.Second, 1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		return &link{sess: sess, cs: tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.gateway.Cert}}, gw: "127.0.0.1:1", host: "127.0.0.1"}
	}
	before := link()
	if err := a.live.set(a, before); err != nil || before.sess.IsClosed() {
		t.Fatalf("a tunnel to the pinned gateway: %v", err)
	}
	a.live.clear(before)
	cfg.GatewayPins = [][32]byte{pinOf(other)}
	if err := a.SetConfig(cfg); err != nil {
		t.Fatalf("no tunnel up: %v", err)
	}
	after := link()
	if err := a.live.set(a, after); err == nil || !after.sess.IsClosed() {
		t.Fatalf("a tunnel to a gateway the reload no longer pins came up: %v", err)
	}
}

// TestAgentSetConfigRevokesOneGateway: with tunnels to two gateways, a
// reload that revokes one gateway's pin cuts that tunnel only; the other
// and its stream stay.
func TestAgentSetConfigRevokesOneGateway(t *testing.T) {
	p := newPKI(t)
	other, err := p.ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	leaf := p.client(t, "a")
	groups := map[string][][32]byte{"lan": {pinOf(leaf)}}
	h1, gw1 := startHub(t, p, "127.0.0.1:0", groups, zerolog.Nop())
	h2, gw2 := serveHub(t, hubConfig(other.TLS, groups), "127.0.0.1:0", zerolog.Nop(), nil)
	dst := echoServer(t)
	cfg := agentConfig(p, leaf, gw1, "lan", "a", dst)
	cfg.Gateways = []string{gw1, gw2}
	cfg.GatewayPins = append(cfg.GatewayPins, pinOf(other))
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	r := startAgent(t, cfg)
	waitAgents(t, h1, "lan", 1)
	waitAgents(t, h2, "lan", 1)
	c1, err := h1.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	cfg.GatewayPins = cfg.GatewayPins[:1] // the second gateway's pin revoked
	if err := r.agent.SetConfig(cfg); err == nil {
		t.Fatal("SetConfig without the second gateway's pin: no cut reported")
	}
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c2); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("the stream on the revoked gateway's tunnel: %v, want ErrTunnelLost", err)
	}
	waitAgents(t, h2, "lan", 0)
	testnet.Ping(t, c1, "the other gateway's stream after the reload")
	if n := h1.Agents("lan"); n != 1 {
		t.Fatalf("the gateway still pinned has %d agents", n)
	}
}

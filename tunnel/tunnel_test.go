package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/internal/testpki"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pki struct {
	ca      *testpki.CA
	gateway *testpki.Leaf
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := testpki.NewCA("tunnel test")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, gateway: gw}
}

func (p *pki) client(t testing.TB, name string) *testpki.Leaf {
	t.Helper()
	l, err := p.ca.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func pinOf(l *testpki.Leaf) [32]byte { return sha256.Sum256(l.Cert.RawSubjectPublicKeyInfo) }

// startHub serves a Hub on addr ("127.0.0.1:0" for any port).
func startHub(t testing.TB, p *pki, addr string, groups map[string][][32]byte, log zerolog.Logger) (*Hub, string) {
	t.Helper()
	return startHubMetrics(t, p, addr, groups, log, nil)
}

// startHubMetrics is startHub with the Hub's metrics m.
func startHubMetrics(t testing.TB, p *pki, addr string, groups map[string][][32]byte, log zerolog.Logger, m *Metrics) (*Hub, string) {
	t.Helper()
	return serveHub(t, hubConfig(p.gateway.TLS, groups), addr, log, m)
}

// hubConfig is the tests' Hub configuration: cert for the listener, a
// short wait for agents and keepalive.
func hubConfig(cert tls.Certificate, groups map[string][][32]byte) HubConfig {
	return HubConfig{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		Groups:         groups, WaitForAgent: 300 * time.Millisecond, KeepAlive: time.Second,
	}
}

// serveHub runs a Hub of cfg on addr until the test ends.
func serveHub(t testing.TB, cfg HubConfig, addr string, log zerolog.Logger, m *Metrics) (*Hub, string) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := NewHub(cfg, log, m)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Serve(ln) }()
	t.Cleanup(func() { h.Close(); <-done })
	return h, ln.Addr().String()
}

type runningAgent struct {
	cancel context.CancelFunc
	done   chan struct{}
	log    *testproc.SyncBuffer
	agent  *Agent
}

func (r *runningAgent) stop() { r.cancel(); <-r.done }

func startAgent(t testing.TB, cfg AgentConfig, opts ...AgentOption) *runningAgent {
	t.Helper()
	buf := &testproc.SyncBuffer{}
	r := startAgentLog(t, cfg, buf, opts...)
	r.log = buf
	return r
}

// startAgentLog is startAgent logging to w (r.log is nil).
func startAgentLog(t testing.TB, cfg AgentConfig, w io.Writer, opts ...AgentOption) *runningAgent {
	t.Helper()
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	}
	cfg.KeepAlive = time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{cancel: cancel, done: make(chan struct{})}
	a := NewAgent(cfg, zerolog.New(w), opts...)
	r.agent = a
	go func() { defer close(r.done); _ = a.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func agentConfig(p *pki, leaf *testpki.Leaf, gw, group, name string, allow ...string) AgentConfig {
	al, err := ParseAllowList(allow)
	if err != nil {
		panic(err)
	}
	return AgentConfig{Gateways: []string{gw}, Certificate: leaf.TLS, GatewayPins: [][32]byte{pinOf(p.gateway)},
		Group: group, Name: name, Allow: al}
}

// lan runs a Hub and agent "a" of group lan, allowed to reach dst, and
// waits for the agent to join: the setup most tests and benchmarks share.
// edit, when not nil, changes the agent's configuration first.
func lan(t testing.TB, dst string, edit func(*AgentConfig)) (*Hub, *runningAgent) {
	t.Helper()
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	cfg := agentConfig(p, leaf, gw, "lan", "a", dst)
	cfg.ShutdownGrace = 200 * time.Millisecond // a stream left open does not hold the test's end
	if edit != nil {
		edit(&cfg)
	}
	r := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	return h, r
}

// serveTCP listens on loopback and runs handle for each connection (and
// closes it after); at the end of the test it stops and waits for the
// handlers. It returns the address.
func serveTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// echoServer echoes each connection until EOF, then half-closes.
func echoServer(t *testing.T) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	})
}

func waitAgents(t testing.TB, h *Hub, group string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Agents(group) != n {
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %d agents, want %d", group, h.Agents(group), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRelay: bytes go both ways through an agent, a half-close reaches the
// destination and comes back as EOF, and the connection's addresses are
// the agent's connection to the destination.
func TestRelay(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "agent-a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	dst := echoServer(t)
	ag := startAgent(t, agentConfig(p, leaf, gw, "lan", "a", dst))
	waitAgents(t, h, "lan", 1)

	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != dst {
		t.Errorf("RemoteAddr %s, want the destination %s", c.RemoteAddr(), dst)
	}
	if !strings.HasPrefix(c.LocalAddr().String(), "127.0.0.1:") {
		t.Errorf("LocalAddr %s", c.LocalAddr())
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		_, _ = c.Write(payload)
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes, %v; want %d", len(got), err, len(payload))
	}
	c.Close()
	waitLog(t, ag.log, `"bytes_to_destination":1048576`)
	waitLog(t, ag.log, `"verdict":"allowed"`)

	// Deadlines work on tunnelled connections.
	c, err = h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v", err)
	}
}

// TestAllowListRefuses: a destination outside the agent's allow list is
// refused (a clear error for the gateway) and logged by the agent; an
// agent with an empty allow list refuses everything.
func TestAllowListRefuses(t *testing.T) {
	p := newPKI(t)
	la, lb := p.client(t, "agent-a"), p.client(t, "agent-b")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la)}, "empty": {pinOf(lb)}}, zerolog.Nop())
	dst := echoServer(t)
	other := echoServer(t)
	ag := startAgent(t, agentConfig(p, la, gw, "lan", "a", dst))
	startAgent(t, agentConfig(p, lb, gw, "empty", "b"))
	waitAgents(t, h, "lan", 1)
	waitAgents(t, h, "empty", 1)

	for group, addr := range map[string]string{"lan": other, "empty": dst} {
		_, err := h.Dialer(group).DialBackend(dialCtx(t), addr, netipAddr(""))
		var re *RefusedError
		if !errors.As(err, &re) || re.Code != CodeRefused || !strings.Contains(err.Error(), "allow list") {
			t.Fatalf("group %s, %s: %v, want a refusal naming the allow list", group, addr, err)
		}
	}
	waitLog(t, ag.log, `"destination":"`+other+`"`)
	waitLog(t, ag.log, `"verdict":"refused"`)
}

// TestPinsBothWays: an agent whose certificate is not pinned, or pinned
// for another group than the one it claims, is refused; an agent refuses
// a gateway whose certificate does not match its pin.
func TestPinsBothWays(t *testing.T) {
	p := newPKI(t)
	pinned, stranger, other := p.client(t, "pinned"), p.client(t, "stranger"), p.client(t, "other")
	var hubLog testproc.SyncBuffer
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(pinned)}, "dev": {pinOf(other)}}, zerolog.New(&hubLog))
	dst := echoServer(t)

	a1 := startAgent(t, agentConfig(p, stranger, gw, "lan", "stranger", dst))
	a2 := startAgent(t, agentConfig(p, other, gw, "lan", "other", dst))
	wrong := agentConfig(p, pinned, gw, "lan", "wrong-pin", dst)
	wrong.GatewayPins = [][32]byte{pinOf(other)}
	a3 := startAgent(t, wrong)

	waitLog(t, &hubLog, "agent certificate matches no group")
	waitLog(t, &hubLog, "not pinned for the group it claims")
	waitLog(t, a2.log, "forbidden")
	waitLog(t, a3.log, "matches none of gateway_pins")
	_ = a1
	time.Sleep(100 * time.Millisecond)
	if n := h.Agents("lan"); n != 0 {
		t.Fatalf("%d agents joined lan", n)
	}
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("")); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("dial without an agent: %v, want ErrNoAgent", err)
	}
}

// TestTwoAgents: new streams spread over a group's agents; when one is
// killed, new dials go to the other.
func TestTwoAgents(t *testing.T) {
	h, a, b, dst := twoAgents(t)

	var conns []net.Conn
	for range 6 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	counts := map[string]int32{}
	h.mu.Lock()
	for _, ag := range h.groups["lan"].agents {
		counts[ag.name] = ag.open.Load()
	}
	h.mu.Unlock()
	if counts["a"] != 3 || counts["b"] != 3 {
		t.Fatalf("streams per agent %v, want 3 and 3", counts)
	}
	for _, c := range conns {
		c.Close()
	}

	a.stop()
	waitAgents(t, h, "lan", 1)
	for range 3 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatalf("dial with one agent left: %v", err)
		}
		echoOnce(t, c)
	}
	_ = b
}

// TestReconnect: agents come back after the gateway restarts.
func TestReconnect(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	groups := map[string][][32]byte{"lan": {pinOf(leaf)}}
	h, gw := startHub(t, p, "127.0.0.1:0", groups, zerolog.Nop())
	dst := echoServer(t)
	ag := startAgent(t, agentConfig(p, leaf, gw, "lan", "a", dst))
	waitAgents(t, h, "lan", 1)
	h.Close()
	waitLog(t, ag.log, "tunnel down")

	h2, _ := startHub(t, p, gw, groups, zerolog.Nop())
	waitAgents(t, h2, "lan", 1)
	c, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c)
}

// TestAgentBusy: an agent's max_streams bounds its streams; the Hub does
// not open more than its own bound on one agent either.
func TestAgentBusy(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	h.SetConfig(HubConfig{MaxStreams: 2, WaitForAgent: 300 * time.Millisecond, KeepAlive: time.Second})
	dst := echoServer(t)
	cfg := agentConfig(p, leaf, gw, "lan", "a", dst)
	cfg.MaxStreams = 1
	startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	c1, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	_, err = h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeBusy {
		t.Fatalf("a second stream on an agent with max_streams 1: %v", err)
	}
	c1.Close()

	// The hub's own bound: at most MaxStreams on one agent, then a dial
	// waits for a free stream and fails with ErrNoAgent.
	leaf2 := p.client(t, "b")
	h2, gw2 := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf2)}}, zerolog.Nop())
	h2.SetConfig(HubConfig{MaxStreams: 2, WaitForAgent: 300 * time.Millisecond, KeepAlive: time.Second})
	startAgent(t, agentConfig(p, leaf2, gw2, "lan", "b", dst))
	waitAgents(t, h2, "lan", 1)
	var first net.Conn
	for i := range 2 {
		c, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i == 0 {
			first = c
		}
	}
	start := time.Now()
	if _, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("")); !errors.Is(err, ErrNoAgent) || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("a dial beyond max_streams: %v after %v, want ErrNoAgent after the wait", err, time.Since(start))
	}
	// A stream that ends frees its place for a dial that waits.
	held, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err == nil {
		held.Close()
		t.Fatal("a third stream while two are open")
	}
	h2.SetConfig(HubConfig{MaxStreams: 2, WaitForAgent: 5 * time.Second, KeepAlive: time.Second})
	go func() { time.Sleep(100 * time.Millisecond); first.Close() }()
	c, err := h2.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatalf("a dial waiting for a free stream: %v", err)
	}
	c.Close()
}

func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
}

func waitLog(t *testing.T, b interface{ String() string }, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPendingBound: strangers holding connections open without a
// handshake cannot keep agents out beyond maxPending of them: the excess is
// closed at once, and a real agent still joins once they go.
func TestPendingBound(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	var hubLog testproc.SyncBuffer
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.New(&hubLog))
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 64 {
		c, err := net.Dial("tcp", gw)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	waitPending(t, h, 64)
	extra, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a connection beyond 64 unauthenticated ones was kept: %v", err)
	}
	waitLog(t, &hubLog, "too many unauthenticated connections")
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	startAgent(t, agentConfig(p, leaf, gw, "lan", "a"))
	waitAgents(t, h, "lan", 1)
}

// waitPending waits until n connections are in their handshake.
func waitPending(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		got := len(h.conns)
		h.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections tracked, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// twoAgents is a Hub whose group "lan" has two agents, a and b, connected,
// both allowed to the echo server dst.
func twoAgents(t *testing.T) (h *Hub, a, b *runningAgent, dst string) {
	t.Helper()
	p := newPKI(t)
	la, lb := p.client(t, "a"), p.client(t, "b")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}}, zerolog.Nop())
	dst = echoServer(t)
	a = startAgent(t, agentConfig(p, la, gw, "lan", "a", dst))
	b = startAgent(t, agentConfig(p, lb, gw, "lan", "b", dst))
	waitAgents(t, h, "lan", 2)
	return h, a, b, dst
}

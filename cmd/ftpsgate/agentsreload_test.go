package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testnet"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// TestSIGHUPRevokesAgent: a SIGHUP whose file no longer pins an agent cuts
// its tunnel and it is refused when it reconnects; a file that pins it
// again but moves agents.listen applies the pins (the agent joins again)
// and reports that the address needs a restart; a backend naming a group
// the gateway does not run is refused with its key.
func TestSIGHUPRevokesAgent(t *testing.T) {
	fx := newAgentFixture(t, "reload agents")
	edge, leaf, other := fx.edge, fx.leaf(t, "agent-1"), fx.leaf(t, "agent-2")
	const listen = "127.0.0.1:0" // the hub's port: d.hubAddr
	conf := func(listen, via, pin string) string {
		return fmt.Sprintf(`listeners: [{name: a, address: "127.0.0.1:0", tls: implicit}]
tls: {cert_file: %s, key_file: %s}
backend: {address: "10.0.0.5:21", via: %s}
agents:
  listen: %q
  groups:
    lan: {pins: [%q]}
passive: {ports: "%s"}
log: {level: error}
`, edge.ChainFile, edge.KeyFile, via, listen, pin, freeRange(t, 2))
	}
	path := writeConfig(t, conf(listen, "lan", pinText(leaf)))
	d, ctx := composeFile(t, path)
	sink := &reloadEvents{}
	reloadOnHUP(ctx, d.srv, nil, d.reloaders(), zerolog.Nop(), sink)

	fx.runAgent(t, d.hubAddr.String(), leaf)
	waitFor := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for d.hub.Agents("lan") != n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d agents in lan, want %d", what, d.hub.Agents("lan"), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hup := func(text string, n int) (bool, string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e := sink.wait(t, n)
		if e.Err != nil {
			return e.OK, e.Err.Error()
		}
		return e.OK, ""
	}
	waitFor(1, "at start")
	pin := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	if bs := (backendLister{srv: d.srv, hub: d.hub}).Backends(); len(bs) != 1 || bs[0].Via != "lan" || len(bs[0].Agents) != 1 ||
		bs[0].Agents[0].Pin != tunnel.ShortPin(pin) || bs[0].Agents[0].Connected.IsZero() || bs[0].Agents[0].State != tunnel.AgentUp {
		t.Fatalf("/v1/backends: %+v, want the agent of lan with its pin", bs)
	} else {
		var buf strings.Builder
		printBackends(&buf, bs, time.Now())
		if !strings.Contains(buf.String(), "agent ") || !strings.Contains(buf.String(), "pin "+tunnel.ShortPin(pin)) ||
			!strings.Contains(buf.String(), " up ") {
			t.Errorf("table:\n%s", buf.String())
		}
	}

	// The agent's pin replaced by another: cut, and refused from then on.
	if ok, msg := hup(conf(listen, "lan", pinText(other)), 1); !ok {
		t.Fatalf("reload: %s", msg)
	}
	waitFor(0, "after its pin was removed")
	time.Sleep(300 * time.Millisecond) // several reconnection attempts
	if n := d.hub.Agents("lan"); n != 0 {
		t.Fatalf("the revoked agent is back (%d agents)", n)
	}

	// Pinned again, with a new listen address: the pins apply, the
	// address is reported.
	ok, msg := hup(conf("127.0.0.1:1", "lan", pinText(leaf)), 2)
	if ok || !strings.Contains(msg, "agents.listen changed") || !strings.Contains(msg, "needs a restart") {
		t.Fatalf("listen moved: ok=%v %q, want an error naming agents.listen", ok, msg)
	}
	waitFor(1, "pinned again")

	// A backend naming a group the gateway does not run: refused, keyed.
	ok, msg = hup(conf(listen, "nosuch", pinText(leaf)), 3)
	if ok || !strings.Contains(msg, "backend.via") {
		t.Fatalf("unknown via: ok=%v %q, want an error naming backend.via", ok, msg)
	}
}

// writeLeaf writes l's certificate and key where a cert_file and key_file
// name them (a rotation in place rewrites them).
func writeLeaf(t *testing.T, certFile, keyFile string, l *testpki.Leaf) {
	t.Helper()
	if err := testpki.WritePEM(certFile, 0o644, "CERTIFICATE", l.DER); err != nil {
		t.Fatal(err)
	}
	if err := testpki.WritePEM(keyFile, 0o600, "PRIVATE KEY", l.KeyDER); err != nil {
		t.Fatal(err)
	}
}

func dialLAN(t *testing.T, hub *tunnel.Hub, addr string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hub.Dialer("lan").DialBackend(ctx, addr, netip.Addr{})
}

// startLANAgent runs an agent of group lan with leaf, dialling listen,
// pinning gwPins and allowed to reach allow, until the end of the test.
func startLANAgent(t *testing.T, listen string, leaf *testpki.Leaf, gwPins [][32]byte, allow string) {
	t.Helper()
	al, err := tunnel.ParseAllowList([]string{allow})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{listen}, Certificate: leaf.TLS, GatewayPins: gwPins, Group: "lan",
		Allow: al, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, zerolog.Nop())
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitHubAgents(t *testing.T, hub *tunnel.Hub, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for hub.Agents("lan") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d agents in lan, want %d", what, hub.Agents("lan"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGHUPReloadsAgentListener: agents.cert_file rewritten in place and
// reloaded: the tunnel up and the session's stream on it go on, the next
// agent handshake shows the new certificate; max_streams and
// wait_for_agent lowered bound the next dials; a certificate file that no
// longer loads fails the reload naming agents.cert_file and keeps the
// certificate in force.
func TestSIGHUPReloadsAgentListener(t *testing.T) {
	fx := newAgentFixture(t, "reload listener")
	ca, err := testpki.NewCA("agent listener")
	if err != nil {
		t.Fatal(err)
	}
	gwA, errA := ca.Server()
	gwB, errB := ca.Server()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	pinA, pinB := sha256.Sum256(gwA.Cert.RawSubjectPublicKeyInfo), sha256.Sum256(gwB.Cert.RawSubjectPublicKeyInfo)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "agents.pem"), filepath.Join(dir, "agents.key")
	writeLeaf(t, certFile, keyFile, gwA)
	l1, l2, l3 := fx.leaf(t, "agent-1"), fx.leaf(t, "agent-2"), fx.leaf(t, "agent-3")
	ports := freeRange(t, 2)
	agentsCert := fmt.Sprintf("cert_file: %s\n  key_file: %s", certFile, keyFile)
	conf := func(maxStreams int, wait string) string {
		return fmt.Sprintf(`listeners: [{name: a, address: "127.0.0.1:0", tls: implicit}]
tls: {cert_file: %s, key_file: %s}
backend: {address: "10.0.0.5:21", via: lan}
agents:
  listen: "127.0.0.1:0"
  %s
  max_streams: %d
  wait_for_agent: %s
  groups:
    lan: {pins: [%q, %q, %q]}
passive: {ports: "%s"}
log: {level: error}
`, fx.edge.ChainFile, fx.edge.KeyFile, agentsCert, maxStreams, wait, pinText(l1), pinText(l2), pinText(l3), ports)
	}
	path := writeConfig(t, conf(4, "5s"))
	d, _ := composeFile(t, path)
	var reload func() error
	for _, kr := range d.reloaders() {
		if kr.key == "agents" {
			reload = kr.r.Reload
		}
	}
	rewrite := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	echo := echoListener(t)
	listen := d.hubAddr.String()
	startLANAgent(t, listen, l1, [][32]byte{pinA, pinB}, echo) // told of the new pin first
	waitHubAgents(t, d.hub, 1, "at start")
	since := d.hub.AgentsOf("lan")[0].Since
	c, err := dialLAN(t, d.hub, echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testnet.Ping(t, c, "before the rotation")

	// The certificate rotated in place: same paths, new content.
	writeLeaf(t, certFile, keyFile, gwB)
	if err := reload(); err != nil {
		t.Fatalf("reload after the rotation: %v", err)
	}
	testnet.Ping(t, c, "the stream after the rotation")
	if as := d.hub.AgentsOf("lan"); len(as) != 1 || !as[0].Since.Equal(since) {
		t.Fatalf("the tunnel up did not stay: %+v", as)
	}
	startLANAgent(t, listen, l2, [][32]byte{pinB}, echo) // pins the new certificate alone
	waitHubAgents(t, d.hub, 2, "an agent pinning the new certificate")

	// max_streams 1 and wait_for_agent 100ms: agent-1 holds c, agent-2
	// takes one more, then a dial waits 100ms (not 5s) and fails.
	rewrite(conf(1, "100ms"))
	if err := reload(); err != nil {
		t.Fatalf("reload of max_streams: %v", err)
	}
	c2, err := dialLAN(t, d.hub, echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	start := time.Now()
	if c3, err := dialLAN(t, d.hub, echo); !errors.Is(err, tunnel.ErrNoAgent) {
		if c3 != nil {
			c3.Close()
		}
		t.Fatalf("a third stream on two agents with max_streams 1: %v, want ErrNoAgent", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("the dial waited %v: the reloaded wait_for_agent was not applied", waited)
	}
	testnet.Ping(t, c, "the first stream after max_streams was lowered")

	// A certificate file that no longer loads: the reload fails, naming
	// it; the listener keeps showing the new certificate.
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reload(); err == nil || !strings.Contains(err.Error(), "agents.cert_file") {
		t.Fatalf("a certificate that does not load: %v, want an error naming agents.cert_file", err)
	}
	startLANAgent(t, listen, l3, [][32]byte{pinB}, echo)
	waitHubAgents(t, d.hub, 3, "an agent pinning the certificate in force, after a failed reload")
	testnet.Ping(t, c, "the first stream after a failed reload")

	// agents.cert_file removed: the next handshakes show the edge
	// certificate (fx.runAgent pins it).
	agentsCert = "# no cert_file: the edge certificate"
	l4 := fx.leaf(t, "agent-4")
	rewrite(strings.Replace(conf(4, "5s"), pinText(l3)+`"]`, pinText(l3)+`", "`+pinText(l4)+`"]`, 1))
	if err := reload(); err != nil {
		t.Fatalf("reload without agents.cert_file: %v", err)
	}
	fx.runAgent(t, listen, l4)
	waitHubAgents(t, d.hub, 4, "an agent pinning the edge certificate, once agents.cert_file was removed")
	testnet.Ping(t, c, "the first stream at the end")
}

// composeFile composes the gateway of the configuration file at path,
// without starting its listeners, under a context that ends with the test
// (returned); the test's end closes the authenticator and the agent
// listener.
func composeFile(t *testing.T, path string) (*composed, context.Context) {
	t.Helper()
	cfg, err := loadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := compose(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.auth.close)
	if d.hub != nil {
		t.Cleanup(func() { d.hub.Close() })
	}
	return d, ctx
}

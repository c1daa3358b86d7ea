package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testnet"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// agentReload is an agent run from an agent.yaml as ftpsgate agent runs
// it, joined to a hub of group lan that pins both its certificates
// (oldLeaf, in cert_file at start, and newLeaf), allowed to reach an echo
// server.
type agentReload struct {
	hub                    *tunnel.Hub
	gw, other              *testpki.Leaf // the hub's certificate, another
	oldLeaf, newLeaf       *testpki.Leaf
	echo, path, gateway    string
	dir, certFile, keyFile string
	ag                     *tunnel.Agent
	logBuf                 *syncBuf
	reload                 func()
}

func pinOfLeaf(l *testpki.Leaf) [32]byte { return sha256.Sum256(l.Cert.RawSubjectPublicKeyInfo) }

func newAgentReload(t *testing.T) *agentReload {
	t.Helper()
	ca, err := testpki.NewCA("agent reload")
	if err != nil {
		t.Fatal(err)
	}
	f := &agentReload{dir: t.TempDir(), logBuf: &syncBuf{}}
	for _, l := range []struct {
		p      **testpki.Leaf
		client string
	}{{&f.gw, ""}, {&f.other, ""}, {&f.oldLeaf, "a1"}, {&f.newLeaf, "a1-next"}} {
		if l.client == "" {
			*l.p, err = ca.Server()
		} else {
			*l.p, err = ca.Client(l.client)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	gwCert := f.gw.TLS
	f.hub = tunnel.NewHub(tunnel.HubConfig{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &gwCert, nil },
		Groups:         map[string][][32]byte{"lan": {pinOfLeaf(f.oldLeaf), pinOfLeaf(f.newLeaf)}}, WaitForAgent: 300 * time.Millisecond,
	}, zerolog.Nop(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = f.hub.Serve(ln) }()
	f.echo = echoListener(t)
	f.certFile, f.keyFile = filepath.Join(f.dir, "agent.pem"), filepath.Join(f.dir, "agent.key")
	writeLeaf(t, f.certFile, f.keyFile, f.oldLeaf)
	f.gateway = ln.Addr().String()
	f.path = writeConfig(t, f.text(f.gateway, pinOfLeaf(f.gw), 4, f.certFile))
	l, err := loadAgent(f.path)
	if err != nil {
		t.Fatal(err)
	}
	level := &levelGate{w: f.logBuf}
	level.set("info")
	log := level.logger()
	m := tunnel.NewAgentMetrics(prometheus.NewRegistry(), l.agent.Gateways)
	f.ag = tunnel.NewAgent(l.agent, log, tunnel.WithAgentMetrics(m))
	f.reload = func() { reloadAgent(f.path, f.ag, level, m, log) }
	ctx, cancel := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = f.ag.Run(ctx) }()
	t.Cleanup(func() { f.hub.Close(); <-hubDone; cancel(); <-agentDone })
	waitHubAgents(t, f.hub, 1, "at start")
	return f
}

// text is agent.yaml with the hub's address (gateway), gwPin, maxStreams
// and cert_file.
func (f *agentReload) text(gateway string, gwPin [32]byte, maxStreams int, cert string) string {
	return fmt.Sprintf("gateways: [%q]\ngroup: lan\nname: a1\ncert_file: %s\nkey_file: %s\ngateway_pins: [%x]\nallow: [%q]\nmax_streams: %d\nbackoff: {min: 20ms, max: 100ms}\n",
		gateway, cert, f.keyFile, gwPin[:], f.echo, maxStreams)
}

// rewrite writes agent.yaml with gwPin, maxStreams and cert and reloads it.
func (f *agentReload) rewrite(t *testing.T, gwPin [32]byte, maxStreams int, cert string) {
	t.Helper()
	if err := os.WriteFile(f.path, []byte(f.text(f.gateway, gwPin, maxStreams, cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	f.reload()
}

// TestAgentSIGHUPReloadsTunnel: the agent's reload of agent.yaml with its
// certificate rotated in place and max_streams lowered keeps the tunnel
// up and the stream on it, refuses the next stream busy, and the next
// tunnel shows the new certificate (the gateway retires the old pin: the
// agent is back with the new one at once). A file with a problem keeps
// every setting.
func TestAgentSIGHUPReloadsTunnel(t *testing.T) {
	f := newAgentReload(t)
	c, err := dialLAN(t, f.hub, f.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testnet.Ping(t, c, "before the reload")

	// The certificate rotated in place, max_streams lowered to 1.
	writeLeaf(t, f.certFile, f.keyFile, f.newLeaf)
	f.rewrite(t, pinOfLeaf(f.gw), 1, f.certFile)
	waitFor(t, f.logBuf, "agent configuration reloaded")
	testnet.Ping(t, c, "the stream after the reload")
	if as := f.hub.AgentsOf("lan"); len(as) != 1 || as[0].Pin != tunnel.ShortPin(pinOfLeaf(f.oldLeaf)) {
		t.Fatalf("the tunnel up did not stay: %+v", as)
	}
	_, err = dialLAN(t, f.hub, f.echo)
	var re *tunnel.RefusedError
	if !errors.As(err, &re) || re.Code != tunnel.CodeBusy {
		t.Fatalf("a second stream after max_streams 1: %v, want busy", err)
	}

	// A file with a problem (no such certificate file) changes nothing:
	// neither its gateway_pins (the tunnel stays) nor its max_streams.
	f.rewrite(t, pinOfLeaf(f.other), 4, filepath.Join(f.dir, "missing.pem"))
	waitFor(t, f.logBuf, "agent configuration reload failed")
	if !strings.Contains(f.logBuf.String(), `"keys":["cert_file"]`) {
		t.Errorf("the failure does not name cert_file:\n%s", f.logBuf.String())
	}
	testnet.Ping(t, c, "the stream after a failed reload")
	if _, err = dialLAN(t, f.hub, f.echo); !errors.As(err, &re) || re.Code != tunnel.CodeBusy {
		t.Fatalf("a second stream after a failed reload: %v, want busy (max_streams 1 stays)", err)
	}

	// The gateway retires the old pin: that tunnel is cut, and the agent
	// is back with its new certificate.
	f.hub.SetGroups(map[string][][32]byte{"lan": {pinOfLeaf(f.newLeaf)}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if as := f.hub.AgentsOf("lan"); len(as) == 1 && as[0].Pin == tunnel.ShortPin(pinOfLeaf(f.newLeaf)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not come back with its new certificate: %+v\n%s", f.hub.AgentsOf("lan"), f.logBuf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentSIGHUPRevokesGateway: a reload whose gateway_pins no longer
// match the gateway of the tunnel up cuts that tunnel with the stream on
// it (the gateway reads a lost stream, not its end), and the agent does not
// come back; a reload that keeps the gateway's pin leaves it alone.
func TestAgentSIGHUPRevokesGateway(t *testing.T) {
	f := newAgentReload(t)
	c, err := dialLAN(t, f.hub, f.echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.rewrite(t, pinOfLeaf(f.gw), 8, f.certFile)
	waitFor(t, f.logBuf, "agent configuration reloaded")
	testnet.Ping(t, c, "after a reload that keeps the gateway's pin")

	f.rewrite(t, pinOfLeaf(f.other), 8, f.certFile)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); !errors.Is(err, tunnel.ErrTunnelLost) {
		t.Fatalf("the stream on the revoked gateway's tunnel: %v, want ErrTunnelLost", err)
	}
	waitHubAgents(t, f.hub, 0, "after the gateway's pin was revoked")
	waitFor(t, f.logBuf, "tunnel cut: the gateway's certificate no longer passes")
	time.Sleep(300 * time.Millisecond) // several reconnections
	if n := f.hub.Agents("lan"); n != 0 {
		t.Fatalf("the agent came back to a gateway it no longer pins (%d agents)", n)
	}
}

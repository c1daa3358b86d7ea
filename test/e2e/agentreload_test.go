package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// TestAgentCertificateRotation: both ends of the tunnel rotate their
// certificates (the reloads SIGHUP does) while a client session is logged
// in through it: the session goes on (its next transfers open data
// connections through the same tunnel), and the tunnels that connect next
// show the new certificates.
func TestAgentCertificateRotation(t *testing.T) {
	ca, err := testpki.NewCA("e2e rotation")
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(server bool, name string) *testpki.Leaf {
		t.Helper()
		var l *testpki.Leaf
		if server {
			l, err = ca.Server()
		} else {
			l, err = ca.Client(name)
		}
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	pin := func(l *testpki.Leaf) [32]byte { return sha256.Sum256(l.Cert.RawSubjectPublicKeyInfo) }
	gwOld, gwNew, agOld, agNew := leaf(true, ""), leaf(true, ""), leaf(false, "agent"), leaf(false, "agent-next")
	hub := tunnel.NewHub(tunnel.HubConfig{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &gwOld.TLS, nil },
		Groups:         map[string][][32]byte{"lan": {pin(agOld), pin(agNew)}}, // the agent's next pin, added first
		WaitForAgent:   300 * time.Millisecond,
	}, zerolog.Nop(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Serve(ln) }()
	t.Cleanup(func() { hub.Close(); <-hubDone })
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", hub.Dialer("lan"))}, viaLan)
	al, err := tunnel.ParseAllowList([]string{g.backend.Addr(), "127.0.0.1:1024-65535"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tunnel.AgentConfig{Gateways: []string{ln.Addr().String()}, Certificate: agOld.TLS, Group: "lan", Allow: al,
		GatewayPins: [][32]byte{pin(gwOld), pin(gwNew)}, // the gateway's next pin, added first
		BackoffMin:  20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, ShutdownGrace: time.Second}
	ag := tunnel.NewAgent(cfg, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-agentDone })
	waitLanAgent := func(p [32]byte, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if as := hub.AgentsOf("lan"); len(as) == 1 && as[0].Pin == tunnel.ShortPin(p) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: agents %+v", what, hub.AgentsOf("lan"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLanAgent(pin(agOld), "at start")
	since := hub.AgentsOf("lan")[0].Since

	c := dial(t, g, "explicit")
	defer c.Quit()
	data := randomBytes(t, 256<<10)
	if err := c.Stor("before.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}

	// Both ends rotate.
	hub.SetConfig(tunnel.HubConfig{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &gwNew.TLS, nil },
		WaitForAgent: 300 * time.Millisecond})
	cfg.Certificate = agNew.TLS
	if err := ag.SetConfig(cfg); err != nil {
		t.Fatalf("the agent's rotation cut its tunnel: %v", err)
	}

	// The session goes on: a download and a listing, new data
	// connections through the same tunnel.
	r, err := c.Retr("before.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download after the rotation: %d bytes, %v", len(got), err)
	}
	if _, err := c.List("/"); err != nil {
		t.Fatalf("listing after the rotation: %v", err)
	}
	if as := hub.AgentsOf("lan"); len(as) != 1 || !as[0].Since.Equal(since) {
		t.Fatalf("the tunnel was replaced: %+v", as)
	}

	// The hub retires the agent's old pin: the old tunnel is cut, and the
	// next one shows both new certificates. Then the agent retires the
	// gateway's old pin: the new tunnel passes, nothing is cut.
	hub.SetGroups(map[string][][32]byte{"lan": {pin(agNew)}})
	waitLanAgent(pin(agNew), "after the agent's old pin was retired")
	cfg.GatewayPins = [][32]byte{pin(gwNew)}
	if err := ag.SetConfig(cfg); err != nil {
		t.Fatalf("the new tunnel, made with the gateway's new certificate, was cut: %v", err)
	}
	c2 := dial(t, g, "explicit")
	defer c2.Quit()
	if _, err := c2.List("/"); err != nil {
		t.Fatalf("a new session through the new tunnel: %v", err)
	}
}

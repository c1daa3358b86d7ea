package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// agentSetup is a Hub with group "lan" and what an agent needs to join it.
type agentSetup struct {
	hub     *tunnel.Hub
	addr    string // the agent listener
	gwPin   [32]byte
	agentTL tls.Certificate
}

func startHub(t *testing.T) *agentSetup {
	t.Helper()
	ca, err := testpki.NewCA("e2e agents")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	ag, err := ca.Client("agent")
	if err != nil {
		t.Fatal(err)
	}
	hub := tunnel.NewHub(tunnel.HubConfig{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &gw.TLS, nil },
		Groups:         map[string][][32]byte{"lan": {sha256.Sum256(ag.Cert.RawSubjectPublicKeyInfo)}},
		WaitForAgent:   300 * time.Millisecond,
	}, zerolog.Nop(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Serve(ln) }()
	t.Cleanup(func() { hub.Close(); <-done })
	return &agentSetup{hub: hub, addr: ln.Addr().String(), gwPin: sha256.Sum256(gw.Cert.RawSubjectPublicKeyInfo), agentTL: ag.TLS}
}

// startAgent runs an agent allowing allow until the test ends, and waits
// for it to join.
func (a *agentSetup) startAgent(t *testing.T, logs io.Writer, allow ...string) {
	t.Helper()
	al, err := tunnel.ParseAllowList(allow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{a.addr}, Certificate: a.agentTL,
		GatewayPins: [][32]byte{a.gwPin}, Group: "lan", Allow: al}, zerolog.New(logs))
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for a.hub.Agents("lan") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not join")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func viaLan(c *proxy.Config) { c.Backend.Via = "lan" }

// TestAgentTunnel: with backend.via, sessions reach the backend through a
// reverse-connect agent: login, a listing and transfers both ways, every
// connection a logged stream of the agent.
func TestAgentTunnel(t *testing.T) {
	a := startHub(t)
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a.hub.Dialer("lan"))}, viaLan)
	var agentLog testproc.SyncBuffer
	a.startAgent(t, &agentLog, g.backend.Addr(), "127.0.0.1:1024-65535")

	c := dial(t, g, "explicit")
	data := randomBytes(t, 3<<20)
	if err := c.Stor("up.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(g.root, "up.bin")); !bytes.Equal(got, data) {
		t.Fatalf("upload through the agent: %d bytes, want %d", len(got), len(data))
	}
	r, err := c.Retr("up.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download through the agent: %d bytes, %v", len(got), err)
	}
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(agentLog.String(), `"verdict":"allowed"`) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent logged %d allowed streams, want 4 (control, STOR, RETR, LIST):\n%s", strings.Count(agentLog.String(), `"verdict":"allowed"`), agentLog.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentRefusals: with no agent up, or an agent whose allow list lacks
// the backend, the client gets 421 at login and the log names the cause;
// an agent that allows the control port but not the data ports gets the
// client a 425 for the listing and the session goes on.
func TestAgentRefusals(t *testing.T) {
	a := startHub(t)
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a.hub.Dialer("lan"))}, viaLan)

	login421 := func(why string) {
		t.Helper()
		c, err := ftp.Dial(g.addr("explicit"), ftp.DialWithTimeout(10*time.Second), ftp.DialWithExplicitTLS(clientTLS()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		err = c.Login(user, password)
		if err == nil || !strings.HasPrefix(err.Error(), "421") {
			t.Fatalf("%s: login answered %v, want 421", why, err)
		}
	}
	login421("no agent")
	waitLog(t, g, "no agent connected")

	var agentLog testproc.SyncBuffer
	a.startAgent(t, &agentLog, "127.0.0.2:21")
	login421("backend not in the allow list")
	waitLog(t, g, "not in the agent's allow list")
	if !strings.Contains(agentLog.String(), `"destination":"`+g.backend.Addr()+`"`) {
		t.Fatalf("the agent did not log the refused destination:\n%s", agentLog.String())
	}

	// Control port only: the data connection is refused, the session
	// goes on.
	a2 := startHub(t)
	g2 := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a2.hub.Dialer("lan"))}, viaLan)
	a2.startAgent(t, io.Discard, g2.backend.Addr())
	c := dial(t, g2, "explicit")
	if _, err := c.List("/"); err == nil || !strings.HasPrefix(err.Error(), "425") {
		t.Fatalf("a listing whose data port the agent refuses: %v, want 425", err)
	}
	if err := c.NoOp(); err != nil {
		t.Fatalf("the session did not go on after the refused data connection: %v", err)
	}
	waitLog(t, g2, "backend data connection failed", "not in the agent's allow list")
}

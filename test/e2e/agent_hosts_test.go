package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// startNamedAgent runs an agent named name (allowing allow) until the test
// ends and waits until the group has one agent more.
func (a *agentSetup) startNamedAgent(t *testing.T, name string, logs io.Writer, allow ...string) {
	t.Helper()
	al, err := tunnel.ParseAllowList(allow)
	if err != nil {
		t.Fatal(err)
	}
	before := a.hub.Agents("lan")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{a.addr}, Certificate: a.agentTL,
		GatewayPins: [][32]byte{a.gwPin}, Group: "lan", Name: name, Allow: al}, zerolog.New(logs))
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for a.hub.Agents("lan") == before {
		if time.Now().After(deadline) {
			t.Fatalf("agent %s did not join", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentDataSameLocalAddress: two agents on two hosts may connect to the
// backend from the same local address (each in a container on its host's
// bridge, 172.17.0.2): a session's data connections still go through the
// agent that carries its control connection, never the other one, whose
// connections the backend sees coming from another host (vsftpd: 425
// Security: Bad IP connecting). Here both agents connect from 127.0.0.1,
// and the agents' logs tell which carried each stream.
func TestAgentDataSameLocalAddress(t *testing.T) {
	a := startHub(t)
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a.hub.Dialer("lan"))}, viaLan)
	logs := map[string]*testproc.SyncBuffer{"x": {}, "y": {}}
	for _, name := range []string{"x", "y"} {
		a.startNamedAgent(t, name, logs[name], g.backend.Addr(), "127.0.0.1:1024-65535")
	}
	carrying := func() string {
		for _, ag := range a.hub.AgentsOf("lan") {
			if ag.Streams == 1 {
				return ag.Name
			}
		}
		t.Fatalf("no agent carries one stream: %+v", a.hub.AgentsOf("lan"))
		return ""
	}
	idle := dial(t, g, "explicit") // its control connection on one agent...
	other := carrying()
	_ = idle
	c := dial(t, g, "explicit") // ...this one's on the other
	mine := map[string]string{"x": "y", "y": "x"}[other]
	const lists = 8
	for i := range lists {
		if _, err := c.List("/"); err != nil {
			t.Fatalf("listing %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs[mine].String(), `"stream ended"`) < lists {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs[other].String(), `"stream ended"`); n > 0 {
		t.Errorf("agent %s, which carries the other session's control connection, carried %d of this session's data connections:\n%s", other, n, logs[other].String())
	}
	if n := strings.Count(logs[mine].String(), `"stream ended"`); n != lists {
		t.Errorf("agent %s, which carries the session's control connection, carried %d data connections, want %d", mine, n, lists)
	}
}

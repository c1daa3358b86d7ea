package tunnel

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// TestSetGroupsRevokes: removing an agent's pin from its group (a reload)
// cuts its tunnel at once, the streams open on it included, and the agent
// is refused when it reconnects; the group's other agent keeps serving. A
// pin added later is accepted at the agent's next connection, and a group
// removed cuts its agents and refuses dials.
func TestSetGroupsRevokes(t *testing.T) {
	p := newPKI(t)
	la, lb := p.client(t, "agent-a"), p.client(t, "agent-b")
	var hubLog testproc.SyncBuffer
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}}, zerolog.New(&hubLog))
	dst := echoServer(t)
	startAgent(t, agentConfig(p, la, gw, "lan", "a", dst))
	waitAgents(t, h, "lan", 1)
	startAgent(t, agentConfig(p, lb, gw, "lan", "b", dst))
	waitAgents(t, h, "lan", 2)
	if got := h.AgentsOf("lan"); len(got) != 2 || got[0].Name != "a" || got[0].Pin != ShortPin(pinOf(la)) || got[0].Since.IsZero() {
		t.Fatalf("AgentsOf(lan) = %+v", got)
	}

	// Two streams open: one on each agent (the fewest open streams).
	for range 2 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for _, a := range h.AgentsOf("lan") {
		if a.Streams != 1 {
			t.Fatalf("streams: %+v, want one on each agent", h.AgentsOf("lan"))
		}
	}

	if n := h.SetGroups(map[string][][32]byte{"lan": {pinOf(lb)}}); n != 1 {
		t.Fatalf("SetGroups cut %d agents, want 1 (a)", n)
	}
	if got := h.AgentsOf("lan"); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("after revoking a: %+v, want only b", got)
	}
	waitLog(t, &hubLog, `"agent":"a"`)
	waitLog(t, &hubLog, "agent cut: its pin or group was removed by a reload")
	// a's reconnections are refused; b still carries new streams.
	waitLog(t, &hubLog, "agent certificate matches no group")
	for range 4 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatal(err)
		}
		echoOnce(t, c)
		c.Close()
	}
	if h.Agents("lan") != 1 {
		t.Fatalf("%d agents in lan, want b alone", h.Agents("lan"))
	}

	// Pinned again: a joins at its next try.
	h.SetGroups(map[string][][32]byte{"lan": {pinOf(la), pinOf(lb)}})
	waitAgents(t, h, "lan", 2)

	// The group removed: its agents are cut, dials fail.
	h.SetGroups(map[string][][32]byte{"other": {pinOf(la)}})
	waitAgents(t, h, "lan", 0)
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("")); err == nil {
		t.Fatal("a dial through a removed group worked")
	}
}

// TestSetGroupsCutsOpenStreams: a stream open through a revoked agent ends
// (the client sees the connection fail), it does not go on.
func TestSetGroupsCutsOpenStreams(t *testing.T) {
	p := newPKI(t)
	la := p.client(t, "agent-a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la)}}, zerolog.Nop())
	dst := echoServer(t)
	startAgent(t, agentConfig(p, la, gw, "lan", "a", dst))
	waitAgents(t, h, "lan", 1)
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c)
	h.SetGroups(map[string][][32]byte{"lan": {pinOf(p.client(t, "someone-else"))}})
	// A live stream would echo and wait for more until the deadline; a cut
	// one ends at once.
	start := time.Now()
	_ = c.SetDeadline(start.Add(3 * time.Second))
	_, _ = c.Write([]byte("x"))
	_, err = io.ReadAll(c)
	if isTimeout(err) || time.Since(start) > 2*time.Second {
		t.Fatalf("the stream on the revoked agent still runs (%v)", err)
	}
}

// TestGroupMetrics: the gauges follow the Hub (agents, open streams), and
// a group a reload removed leaves the metrics, its counters too.
func TestGroupMetrics(t *testing.T) {
	p := newPKI(t)
	la := p.client(t, "agent-a")
	reg := prometheus.NewRegistry()
	h, gw := startHubMetrics(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(la)}}, zerolog.Nop(), NewMetrics(reg))
	dst := echoServer(t)
	startAgent(t, agentConfig(p, la, gw, "lan", "a", dst))
	waitAgents(t, h, "lan", 1)
	gather := func() string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				fmt.Fprintf(&b, "%s", mf.GetName())
				for _, l := range m.GetLabel() {
					fmt.Fprintf(&b, " %s=%s", l.GetName(), l.GetValue())
				}
				fmt.Fprintf(&b, " %g\n", m.GetGauge().GetValue()+m.GetCounter().GetValue())
			}
		}
		return b.String()
	}
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), "127.0.0.1:1", netipAddr("")); err == nil {
		t.Fatal("a destination outside the allow list was dialled")
	}
	got := gather()
	for _, want := range []string{"ftpsgate_tunnel_agents group=lan 1\n", "ftpsgate_tunnel_streams_open group=lan 1\n", "ftpsgate_tunnel_streams_refused_total code=refused group=lan 1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	c.Close()
	h.SetGroups(map[string][][32]byte{"wan": {pinOf(la)}})
	got = gather()
	if strings.Contains(got, "group=lan") {
		t.Errorf("the removed group's series stay:\n%s", got)
	}
	if !strings.Contains(got, "ftpsgate_tunnel_agents group=wan 0\n") {
		t.Errorf("no series for the added group:\n%s", got)
	}
}
